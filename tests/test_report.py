"""icemon report / watch / export on real HDF5 logs, and the mW melting example end to end."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from icemon.cli import main

from .test_analysis import synthetic_log

ROOT = Path(__file__).resolve().parents[1]


def _melting_log(path):
    v, times = 0.08, np.linspace(0.0, 100.0, 11)
    return synthetic_log(path, np.c_[25 + v * times, 55 - v * times], times)


def test_report_prints_fronts_and_writes_plots(tmp_path, capsys):
    log = _melting_log(tmp_path / "melt.h5")
    assert main(["report", str(log), "-o", str(tmp_path / "plots")]) == 0
    out = capsys.readouterr().out
    assert "11 frames, 4000 molecules" in out
    v1 = float(re.search(r"front 1 \(liquid→ice going \+normal\): velocity ([-+.\d]+) ±", out)[1])
    v2 = float(re.search(r"front 2 \(ice→liquid going \+normal\): velocity ([-+.\d]+) ±", out)[1])
    speed = float(re.search(r"melting speed \(fronts moving into the ice\): ([.\d]+) ±", out)[1])
    assert v1 == pytest.approx(0.08, rel=0.05) and v2 == pytest.approx(-0.08, rel=0.05)
    assert speed == pytest.approx(0.08, rel=0.05)
    for name in ("melt-fractions.png", "melt-fronts.png"):
        png = tmp_path / "plots" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_report_without_positions_still_gives_fractions(tmp_path, capsys):
    log = synthetic_log(tmp_path / "n.h5", np.c_[[20.0] * 3, [60.0] * 3], [0.0, 1.0, 2.0],
                        positions=False)
    assert main(["report", str(log)]) == 0
    out = capsys.readouterr().out
    assert "Ih" in out and "fronts: the log has no positions" in out
    assert main(["export", str(log), "--extxyz", str(tmp_path / "x.extxyz")]) == 2
    assert "export needs them" in capsys.readouterr().err


def test_export_extxyz_round_trip(tmp_path):
    log = _melting_log(tmp_path / "melt.h5")
    out = tmp_path / "last.extxyz"
    assert main(["export", str(log), "--extxyz", str(out), "--frames", "0,-1"]) == 0
    frames = read(out, index=":")
    assert len(frames) == 2
    import h5py

    with h5py.File(log, "r") as f:
        np.testing.assert_array_equal(frames[1].arrays["phase"], f["labels"][10])
        np.testing.assert_allclose(frames[1].positions, f["positions"][10], atol=1e-4)
        assert frames[1].info["step"] == f["step"][10]


@pytest.mark.parametrize("content", ["foreign", "truncated", "text", "missing"])
def test_bad_files_give_a_clear_error_not_a_traceback(tmp_path, content, capsys):
    import h5py

    path = tmp_path / "bad.h5"
    if content == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = 1
    elif content == "truncated":
        data = _melting_log(tmp_path / "good.h5").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "text":
        path.write_text("hello")
    for cmd in (["report", str(path)], ["export", str(path), "--extxyz", str(tmp_path / "o")],
                ["watch", str(path), "--idle", "0.2", "--interval", "0.05"]):
        assert main(cmd) == 2
        err = capsys.readouterr().err
        assert err.startswith("icemon: error:") and "Traceback" not in err


WRITER = """
import sys, time
import numpy as np
from icemon import Frame, LogWriter
from icemon.execution.pipeline import Result
n = 500
rng = np.random.default_rng(0)
cell = np.diag([20.0, 20.0, 40.0])
PHASES = ("Ih", "Ic", "II", "III", "VI", "VII", "sI", "sII", "sH", "V", "liquid", "unknown")
with LogWriter(sys.argv[1], np.arange(n), model_name="s", model_sha256="0" * 64,
               threshold=1.0, phases=PHASES) as w:
    for k in range(6):
        pos = rng.uniform(0, 1, (n, 3)) @ cell
        lab = np.where((pos[:, 2] > 10 + k) & (pos[:, 2] < 30 - k), 0, 10).astype(np.int8)
        w.append(Result(Frame(pos, cell, np.arange(n), step=10 * k, time=0.5 * k), lab,
                        np.zeros(n, np.float32), pos, lab, phases=PHASES))
        print(k, flush=True)
        time.sleep(0.4)
"""


def _start_writer(tmp_path, log, text):
    """A process running the writer script ``text`` on ``log``, and the environment that
    imports this checkout."""
    script = tmp_path / "writer.py"
    script.write_text(text)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen([sys.executable, str(script), str(log)], stdout=subprocess.PIPE,
                              text=True, env=env)
    return writer, env


def test_watch_follows_a_log_being_written(tmp_path):
    log = tmp_path / "live.h5"
    writer, env = _start_writer(tmp_path, log, WRITER)
    assert writer.stdout.readline().strip() == "0"  # the log exists and has a frame
    t0 = time.time()
    watch = subprocess.run([sys.executable, "-m", "icemon", "watch", str(log), "--interval",
                            "0.1", "--idle", "30"], capture_output=True, text=True, env=env,
                           timeout=120)
    writer.wait()
    assert watch.returncode == 0, watch.stderr
    lines = [ln for ln in watch.stdout.splitlines() if ln.startswith("frame")]
    assert [int(ln.split()[1]) for ln in lines] == list(range(6))
    assert "step        50" in lines[-1] and "Ih" in lines[0] and "fronts" in lines[0]
    assert "log closed by its writer after 6 frames" in watch.stdout
    assert time.time() - t0 > 1.0  # it followed the run rather than reading a finished file


KILLED_WRITER = WRITER.replace("for k in range(6):", "for k in range(3):").replace(
    "        time.sleep(0.4)\n",
    "        time.sleep(0.4)\n    import os, signal\n    os.kill(os.getpid(), signal.SIGKILL)\n")


def test_watch_ends_when_the_writer_is_killed(tmp_path):
    """A writer killed without closing (SIGKILL, node failure) left `icemon watch` waiting
    forever; the log records the writer's pid and host, and the watch ends when that
    process is gone, with every frame it wrote."""
    log = tmp_path / "killed.h5"
    writer, env = _start_writer(tmp_path, log, KILLED_WRITER)
    assert writer.stdout.readline().strip() == "0"
    watch = subprocess.Popen([sys.executable, "-m", "icemon", "watch", str(log), "--interval",
                              "0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env)
    assert writer.wait() == -9  # killed (and reaped, as a shell or mpirun reaps it)
    stdout, stderr = watch.communicate(timeout=120)
    assert watch.returncode == 0, stderr
    lines = [ln for ln in stdout.splitlines() if ln.startswith("frame")]
    assert len(lines) == 3
    assert "is gone without closing the log" in stdout


@pytest.mark.slow
def test_mw_melting_example_front_retreats_into_the_ice(tmp_path, capsys):
    log = tmp_path / "melting.h5"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "lammps_melting.py"), "--log",
                          str(log), "--steps", "6000", "--every", "500"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert main(["report", str(log), "-o", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    line = next(ln for ln in report.splitlines() if ln.startswith("melting speed"))
    speed, err = (float(x) for x in line.split(":")[1].split("Å/ps")[0].split("±"))
    assert speed > 3 * err > 0  # melting, resolved beyond its uncertainty
    assert (tmp_path / "melting-fronts.png").exists()
