"""The ASE observer: real ASE dynamics (Langevin, mW through LAMMPSlib), oxygen selection."""

import numpy as np
import pytest
from ase import Atoms, units

import icemon.hooks.ase
from icemon import FrameError
from icemon.demo import mw
from icemon.io.log import open_log
from icemon.lattices.references import reference

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)


def test_observer_on_ase_langevin(tmp_path):
    from ase.calculators.lammpslib import LAMMPSlib
    from ase.md.langevin import Langevin
    from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

    atoms = mw.ice("Ic", 15.0)
    atoms.set_chemical_symbols(["O"] * len(atoms))
    atoms.set_masses([mw.MASS] * len(atoms))
    atoms.calc = LAMMPSlib(lmpcmds=["pair_style sw",
                                    f"pair_coeff * * {mw.POTENTIAL_METAL} O"],
                           atom_types={"O": 1}, atom_type_masses={"O": mw.MASS}, log_file=None)
    dyn = Langevin(atoms, 10 * units.fs, temperature_K=250, friction=0.01 / units.fs,
                   fixcm=False, rng=np.random.default_rng(0))
    seen = []
    with icemon.hooks.ase.attach(dyn, tmp_path / "a.h5", every=20, oxygens="O",
                                 on_frame=lambda res: seen.append(res.frame.step)) as obs:
        dyn.run(40)
    assert seen == [0, 20, 40] and obs.n_frames == 3 and obs.errors == []
    assert obs.paths == [tmp_path / "a.h5"]
    with open_log(tmp_path / "a.h5") as f:
        np.testing.assert_array_equal(f["step"][()], [0, 20, 40])
        np.testing.assert_allclose(f["time"][()], [0.0, 0.2, 0.4])
        assert (f["labels"][()] == PHASES.index("Ic")).mean() >= 0.995
        np.testing.assert_allclose(f["positions"][2], atoms.positions, atol=1e-4)


def _with_hydrogens():
    ice = reference("Ih", 12.0)
    n = len(ice)
    o = ice.positions
    atoms = Atoms("O" * n + "H" * (2 * n),
                  positions=np.vstack([o, o + [0.96, 0.0, 0.0], o + [-0.24, 0.93, 0.0]]),
                  cell=ice.cell, pbc=True)
    return atoms, n


def test_oxygens_by_element_or_index(tmp_path):
    atoms, n = _with_hydrogens()
    with icemon.hooks.ase.Observer(atoms, log=tmp_path / "e.h5") as obs:
        obs()
    with icemon.hooks.ase.Observer(atoms, log=tmp_path / "i.h5", oxygens=range(n)) as obs:
        obs()
    with open_log(tmp_path / "e.h5") as a, open_log(tmp_path / "i.h5") as b:
        np.testing.assert_array_equal(a["atom_ids"][()], np.arange(n))
        np.testing.assert_array_equal(a["labels"][()], b["labels"][()])
        assert (a["labels"][()] == PHASES.index("Ih")).all()


def test_bad_input_fails_before_the_run(tmp_path):
    atoms, n = _with_hydrogens()
    with pytest.raises(FrameError, match="no atom matches element 'N'"):
        icemon.hooks.ase.Observer(atoms, log=tmp_path / "x.h5", oxygens="N")
    with pytest.raises(FrameError, match="out of range"):
        icemon.hooks.ase.Observer(atoms, log=tmp_path / "x.h5", oxygens=[0, 5 * n])
    atoms.pbc = [True, True, False]
    with pytest.raises(FrameError, match="periodic"):
        icemon.hooks.ase.Observer(atoms, log=tmp_path / "x.h5")
    atoms.pbc = True
    atoms.positions[3] = np.nan
    with pytest.raises(FrameError, match="NaN"):
        icemon.hooks.ase.Observer(atoms, log=tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
