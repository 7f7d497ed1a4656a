"""The i-PI hook with the real i-PI (scripting interface) and LAMMPS as force engine."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest

from icemon import FrameError
from icemon.analysis import Log
from icemon.hooks.ipi import centroid

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ipi_mw.py"
IC = PHASES.index("Ic")


def _run(*args, timeout=600):
    out = subprocess.run([sys.executable, str(EXAMPLE), *map(str, args)], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


def _read(path):
    with Log(path) as log:
        return {"step": log.steps, "labels": np.array([log.labels(k) for k in range(log.n_frames)]),
                "scores": np.array([log.scores(k) for k in range(log.n_frames)]),
                "positions": np.array([log.positions(k) for k in range(log.n_frames)]),
                "cell": log.cell(0), "source": log.file.attrs["source"], "time": log.times}


@pytest.mark.slow
def test_classical_hook_matches_offline_classify(tmp_path):
    log, traj = tmp_path / "c.h5", tmp_path / "c.extxyz"
    _run("--beads", 1, "--steps", 60, "--every", 20, "--log", log, "--trajectory", traj)
    hook = _read(log)
    np.testing.assert_array_equal(hook["step"], [0, 20, 40, 60])
    np.testing.assert_allclose(np.diff(hook["time"]), 0.1, rtol=1e-6)  # 20 × 5 fs
    assert (hook["labels"] == IC).mean() >= 0.995
    assert "classical" in hook["source"]
    # the same configurations, written by i-PI itself, classified offline
    off = tmp_path / "offline.h5"
    out = subprocess.run([sys.executable, "-m", "icemon", "classify", str(traj), "-o", str(off),
                          "-q"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    offline = _read(off)
    assert len(offline["labels"]) == 4
    d = (offline["positions"] - hook["positions"]) @ np.linalg.inv(hook["cell"])
    np.testing.assert_allclose((d - np.round(d)) @ hook["cell"], 0.0, atol=2e-3)
    np.testing.assert_array_equal(offline["labels"], hook["labels"])


@pytest.mark.slow
def test_path_integral_centroid_and_beads(tmp_path):
    _run("--beads", 4, "--steps", 40, "--every", 20, "--log", tmp_path / "pi.h5")
    _run("--beads", 4, "--steps", 40, "--every", 20, "--log", tmp_path / "pi.h5", "--mode", "all")
    cen = _read(tmp_path / "pi.h5")
    beads = [_read(tmp_path / f"pi.bead{b}.h5") for b in range(4)]
    assert "4 bead(s), centroid" in cen["source"] and "bead 3 of 4" in beads[3]["source"]
    np.testing.assert_array_equal(cen["step"], [0, 20, 40])
    for b in beads:
        np.testing.assert_array_equal(b["step"], cen["step"])
    # same seeds → same trajectory: the centroid is the bead average (minimum image)
    for k in range(3):
        expected = centroid(np.array([b["positions"][k] for b in beads], dtype=float),
                            cen["cell"])
        d = (cen["positions"][k] - expected) @ np.linalg.inv(cen["cell"])
        assert np.abs((d - np.round(d)) @ cen["cell"]).max() < 1e-3
    assert (cen["labels"] == IC).mean() >= 0.995
    # individual beads are noisier than their centroid: less ice-like than it on average
    assert (cen["labels"] == IC).mean() >= np.mean([(b["labels"] == IC).mean() for b in beads])
    assert cen["scores"].mean() < np.mean([b["scores"].mean() for b in beads])
    # one pipeline shared by the bead monitors' worker threads: the same logs as serially
    _run("--beads", 4, "--steps", 40, "--every", 20, "--log", tmp_path / "ov.h5", "--mode",
         "all", "--overlap")
    for b in range(4):
        ov = _read(tmp_path / f"ov.bead{b}.h5")
        np.testing.assert_array_equal(ov["step"], beads[b]["step"])
        np.testing.assert_array_equal(ov["labels"], beads[b]["labels"])
        np.testing.assert_allclose(ov["scores"], beads[b]["scores"], atol=1e-4)


@contextmanager
def _dummy_simulation(atoms, workdir, temperature=100.0):
    """An i-PI InteractiveSimulation of ``atoms`` on a dummy force field (NVT at
    ``temperature`` K), run in ``workdir``; stopped afterwards."""
    from ipi.scripting import (
        InteractiveSimulation,
        forcefield_xml,
        motion_nvt_xml,
        simulation_xml,
    )

    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        sim = InteractiveSimulation(simulation_xml(
            atoms, forcefield_xml("d", mode="direct", pes="dummy"), motion_nvt_xml(1.0),
            temperature=temperature))
        try:
            yield sim
        finally:
            sim.stop()
    finally:
        os.chdir(cwd)


def test_no_oxygens_is_a_clear_error(tmp_path):
    from ase import Atoms

    import icemon.hooks.ipi

    atoms = Atoms("Ar8", positions=np.random.default_rng(0).uniform(0, 10, (8, 3)),
                  cell=np.eye(3) * 10, pbc=True)
    with _dummy_simulation(atoms, tmp_path) as sim:
        with pytest.raises(FrameError, match="no oxygens to monitor in the i-PI system"):
            icemon.hooks.ipi.IpiMonitor(sim, tmp_path / "x.h5")
        assert not (tmp_path / "x.h5").exists()

ENGINE_STOPS = """
import sys, os, tempfile
from pathlib import Path
from ase import units
from ipi.scripting import InteractiveSimulation, forcefield_xml, motion_nvt_xml, simulation_xml
import icemon.hooks.ipi
from icemon.demo import mw

work = Path(tempfile.mkdtemp())
log = Path(sys.argv[1]).resolve()
os.chdir(work)  # i-PI writes RESTART files into the cwd
atoms = mw.ice("Ic", 15.0)
atoms.set_masses([mw.MASS] * len(atoms))
data = mw.write_data(atoms, work / "ice.data")
address = f"icemon-stop-{os.getpid()}"
sim = InteractiveSimulation(simulation_xml(atoms, forcefield_xml("l", mode="unix", address=address),
    motion_nvt_xml(5 * units.fs), temperature=250.0,
    output=f"<output prefix='{work / 'sim'}'><checkpoint stride='100000'/></output>"))
driver = mw.start_lammps_driver(mw.ipi_client_commands(data, address), work)
mon = icemon.hooks.ipi.IpiMonitor(sim, log, every=10, engine_timeout=3)
mon.run(20)
driver.kill()
try:
    mon.run(1000)
except icemon.hooks.ipi.IpiError as exc:
    print("IpiError:", exc, flush=True)
    mon.close()
    os._exit(3)
"""


@pytest.mark.slow
def test_force_engine_stopping_is_a_clear_error(tmp_path):
    script = tmp_path / "stop.py"
    script.write_text(ENGINE_STOPS)
    t0 = time.time()
    out = subprocess.run([sys.executable, str(script), str(tmp_path / "s.h5")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 3, out.stderr[-3000:]
    assert "IpiError: the force engine stopped: no" in out.stdout
    assert time.time() - t0 < 300
    with h5py.File(tmp_path / "s.h5", "r") as f:  # the frames before are kept
        assert f["step"][()].tolist() == [0, 10, 20]


@pytest.mark.slow
def test_icemon_ipi_runs_an_xml_input(tmp_path):
    from ase import units
    from ipi.scripting import forcefield_xml, motion_nvt_xml, simulation_xml

    from icemon.demo import mw

    atoms = mw.ice("Ic", 15.0)
    atoms.set_masses([mw.MASS] * len(atoms))
    data = mw.write_data(atoms, tmp_path / "ice.data")
    address = f"icemon-xml-{os.getpid()}"
    xml = simulation_xml(atoms, forcefield_xml("lmp", mode="unix", address=address),
                         motion_nvt_xml(5 * units.fs), temperature=250.0,
                         output="<output prefix='sim'><checkpoint stride='1000'/></output>")
    xml = xml.replace("</simulation>", "<total_steps>20</total_steps></simulation>")
    (tmp_path / "input.xml").write_text(xml)
    run = subprocess.Popen([sys.executable, "-m", "icemon", "ipi", "input.xml", "--every", "10",
                            "-o", "run.h5"], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    socket = Path(f"/tmp/ipi_{address}")
    deadline = time.time() + 120
    while not socket.exists():  # i-PI opens its socket, then the engine connects
        assert run.poll() is None and time.time() < deadline, run.stderr.read()
        time.sleep(0.1)
    driver = mw.start_lammps_driver(mw.ipi_client_commands(data, address), tmp_path)
    assert run.wait(timeout=600) == 0, run.stderr.read()
    driver.wait(timeout=60)
    with Log(tmp_path / "run.h5") as log:
        assert log.steps.tolist() == [0, 10, 20]
        assert (np.array([log.labels(k) for k in range(3)]) == IC).mean() >= 0.995


def test_closing_the_hook_stops_its_pipeline(tmp_path, monkeypatch):
    """The i-PI hook made a pipeline for its monitors and never closed it: SOAP helper
    processes (dscribe's) outlived the hook."""
    from ase import Atoms

    import icemon.hooks.ipi
    from icemon.lattices.references import reference

    monkeypatch.setenv("ICEMON_SOAP", "dscribe")  # the backend with helper processes
    a = reference("Ic", 22.0)
    atoms = Atoms("O" * len(a), positions=a.positions, cell=a.cell, pbc=True)
    with _dummy_simulation(atoms, tmp_path) as sim:
        mon = icemon.hooks.ipi.IpiMonitor(sim, tmp_path / "p.h5", every=1, denoise_steps=0)
        pipe = mon.monitors[0].pipeline
        pipe.soap.processes = 2  # helpers even where torch has one thread
        pipe.soap(a.positions, a.cell[:])
        helpers = list(pipe.soap._helpers)
        assert helpers and all(h.proc.poll() is None for h in helpers)
        mon.close()
        assert all(h.proc.wait(timeout=10) is not None for h in helpers)
