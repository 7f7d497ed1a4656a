"""The live monitor: logging, overlap, skipped frames, crash + restart, live readers."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from icemon import Frame, LogError
from icemon.hooks.monitor import Monitor, MonitorWarning
from icemon.io.log import complete_frames, open_log
from icemon.lattices.references import reference
from icemon.model.modelfile import IcemonModel

# the shipped model's vocabulary (twelve names); no relative import: the scripts below
# import this module as a top-level one
PHASES = IcemonModel.load().phases

ROOT = Path(__file__).resolve().parents[1]


def _frames(n=4, seed=0):
    """Thermal-like frames of ideal ice Ic (σ = 0.08 Å) with ids 1..N."""
    ref = reference("Ic", 12.0)
    rng = np.random.default_rng(seed)
    ids = np.arange(1, len(ref) + 1)
    return [Frame(ref.positions + rng.normal(0, 0.08, ref.positions.shape), ref.cell[:], ids,
                  step=100 * k, time=1.0 * k) for k in range(n)]


def _read(path):
    with open_log(path) as f:
        n = complete_frames(f)
        return {k: f[k][:n] for k in ("step", "labels", "scores", "fractions", "positions")}


def test_monitor_logs_every_frame(tmp_path, pipeline):
    frames = _frames()
    with Monitor(tmp_path / "a.h5", frames[0].atom_ids, pipeline=pipeline) as mon:
        results = [mon(fr) for fr in frames]
    log = _read(tmp_path / "a.h5")
    np.testing.assert_array_equal(log["step"], [0, 100, 200, 300])
    assert (log["labels"] == PHASES.index("Ic")).all()
    for k, r in enumerate(results):
        np.testing.assert_array_equal(log["labels"][k], r.labels)
        np.testing.assert_allclose(log["positions"][k], frames[k].positions, atol=1e-4)


def test_overlap_gives_the_same_log_in_order(tmp_path, pipeline):
    frames = _frames(5)
    with Monitor(tmp_path / "seq.h5", frames[0].atom_ids, pipeline=pipeline) as mon:
        for fr in frames:
            mon(fr)
    workers = []
    process = pipeline.process

    def spy(frame):
        workers.append(threading.current_thread().name)
        return process(frame)

    with Monitor(tmp_path / "ovl.h5", frames[0].atom_ids, pipeline=pipeline,
                 overlap=True, queue_size=1) as mon:
        pipeline.process = spy
        try:
            for fr in frames:
                mon(fr)
            mon.flush()
        finally:
            del pipeline.process
    # the frames were classified in the worker thread, not in the simulation's
    assert workers == ["icemon-monitor"] * len(frames)
    a, b = _read(tmp_path / "seq.h5"), _read(tmp_path / "ovl.h5")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_bad_frame_is_recorded_and_skipped(tmp_path, pipeline):
    frames = _frames(3)
    bad = Frame(frames[1].positions[:-1], frames[1].cell, frames[1].atom_ids[:-1], step=150)
    with Monitor(tmp_path / "e.h5", frames[0].atom_ids, pipeline=pipeline) as mon:
        mon(frames[0])
        with pytest.warns(MonitorWarning, match="step 150"):
            assert mon(bad) is None
        mon(frames[2])
        assert [s for s, _ in mon.errors] == [150]
    log = _read(tmp_path / "e.h5")
    np.testing.assert_array_equal(log["step"], [0, 200])
    with h5py.File(tmp_path / "e.h5", "r") as f:
        err = f["errors"][()]
        assert err["step"].tolist() == [150] and b"do not match" in err["message"][0]


def test_log_from_another_model_is_refused(tmp_path, pipeline):
    frames = _frames(1)
    path = tmp_path / "m.h5"
    with Monitor(path, frames[0].atom_ids, pipeline=pipeline) as mon:
        mon(frames[0])
    with h5py.File(path, "r+") as f:
        f.attrs["model"] = json.dumps({"name": "other", "sha256": "0" * 64})
    with pytest.raises(LogError, match="written with model 'other'"):
        Monitor(path, frames[0].atom_ids, pipeline=pipeline)
    assert _read(path)["step"].tolist() == [0]  # untouched


WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from test_monitor import _frames
from icemon import Pipeline
from icemon.hooks.monitor import Monitor
frames = _frames(2)
mon = Monitor(sys.argv[1], frames[0].atom_ids, pipeline=Pipeline())
for k in range(1000):
    f = frames[k % 2]
    mon(type(f)(f.positions, f.cell, f.atom_ids, step=k, time=float(k)))
    print(k, flush=True)
    time.sleep(0.05)
"""


@pytest.mark.slow
def test_killed_run_keeps_its_frames_and_restart_appends(tmp_path, pipeline):
    path = tmp_path / "crash.h5"
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(tests=str(ROOT / "tests")))
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        # a reader opened while the run writes sees frames as they arrive
        deadline = time.time() + 120
        while not path.exists() or "0" != proc.stdout.readline().split()[0]:
            assert time.time() < deadline and proc.poll() is None
        seen = []
        with open_log(path) as f:
            while len(seen) < 3 and time.time() < deadline:
                f["step"].refresh()
                n = f["step"].shape[0]
                if not seen or n > seen[-1]:
                    seen.append(n)
                time.sleep(0.02)
            f["labels"].refresh()
            assert f["labels"].shape[0] >= seen[-1]
        assert seen == sorted(seen) and seen[-1] > seen[0]
        for line in proc.stdout:
            if int(line.split()[0]) >= 5:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _read(path)
    n = len(before["step"])
    assert n >= 6 and before["step"].tolist() == list(range(n))
    assert (before["labels"] == PHASES.index("Ic")).all()
    # the restarted run appends after the last complete frame
    frames = _frames(1)
    with pytest.warns(UserWarning, match="stopped without closing"):
        mon = Monitor(path, frames[0].atom_ids, pipeline=pipeline)
    with mon:
        mon(Frame(frames[0].positions, frames[0].cell, frames[0].atom_ids, step=n))
    after = _read(path)
    assert after["step"].tolist() == list(range(n + 1))
    np.testing.assert_array_equal(after["labels"][:n], before["labels"])
    with h5py.File(path, "r") as f:  # a plain reader opens it again after the clean close
        assert f["step"].shape[0] == n + 1


def test_live_writer_is_not_disturbed(tmp_path, pipeline):
    frames = _frames(1)
    path = tmp_path / "live.h5"
    with Monitor(path, frames[0].atom_ids, pipeline=pipeline) as mon:
        mon(frames[0])
        with pytest.raises(LogError):
            Monitor(path, frames[0].atom_ids, pipeline=pipeline)
        mon(Frame(frames[0].positions, frames[0].cell, frames[0].atom_ids, step=1))
    assert _read(path)["step"].tolist() == [0, 1]


DYING = """
import sys
sys.path.insert(0, {tests!r})
from test_monitor import _frames
from icemon.hooks.monitor import Monitor

frames = _frames(4)
mon = Monitor(sys.argv[1], frames[0].atom_ids, overlap=True, queue_size=4)
for fr in frames:
    mon(fr)
raise RuntimeError("the user's script dies with frames still queued")
"""


def test_queued_frames_reach_the_log_when_the_script_dies(tmp_path):
    path = tmp_path / "dying.h5"
    script = tmp_path / "dying.py"
    script.write_text(DYING.format(tests=str(ROOT / "tests")))
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode != 0 and "frames still queued" in proc.stderr
    assert _read(path)["step"].tolist() == [0, 100, 200, 300]


TERMINATED = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_monitor import _frames
from icemon.hooks.monitor import Monitor

frames = _frames(6)
mon = Monitor(sys.argv[1], frames[0].atom_ids, overlap=True, queue_size=8)
for fr in frames:
    mon(fr)
os.kill(os.getpid(), signal.SIGTERM)  # a batch scheduler's time limit, frames still queued
print("survived SIGTERM", flush=True)
"""


def test_sigterm_flushes_queued_frames_then_ends_the_process(tmp_path):
    path = tmp_path / "term.h5"
    script = tmp_path / "term.py"
    script.write_text(TERMINATED.format(tests=str(ROOT / "tests")))
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True,
                          text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == -signal.SIGTERM, proc.stderr[-2000:]
    assert "survived" not in proc.stdout  # the process still ends as SIGTERM says
    assert _read(path)["step"].tolist() == [0, 100, 200, 300, 400, 500]


def test_close_waits_for_the_worker_at_most_close_timeout(tmp_path, pipeline):
    frames = _frames(3)
    release = threading.Event()
    process = pipeline.process

    def stuck(frame):  # a frame that never finishes (a hung device, a dead file system)
        if frame.step == 100:
            release.wait(60)
        return process(frame)

    mon = Monitor(tmp_path / "slow.h5", frames[0].atom_ids, pipeline=pipeline, overlap=True,
                  queue_size=4, close_timeout=1.0)
    pipeline.process = stuck
    try:
        for fr in frames:
            mon(fr)
        t0 = time.monotonic()
        with pytest.warns(MonitorWarning, match="did not finish within 1 s"):
            mon.close()
        assert time.monotonic() - t0 < 10
    finally:
        release.set()
        del pipeline.process
    time.sleep(0.5)  # the released worker drops what was queued, writes nothing more
    assert _read(tmp_path / "slow.h5")["step"].tolist() == [0]


def test_failing_monitor_restores_torch_threads(tmp_path, pipeline):
    import torch

    before = torch.get_num_threads()
    with pytest.raises(LogError):  # the log path is a directory
        Monitor(tmp_path, np.arange(3), pipeline=pipeline, threads=before + 1)
    assert torch.get_num_threads() == before


def test_pipeline_shared_by_threads_gives_serial_results(pipeline):
    """Two threads on one pipeline (as i-PI bead monitors with overlap): no swapped labels,
    even with SOAP helper processes sharing a frame."""
    import torch

    frames = [_frames(1, seed=s)[0] for s in range(3)]
    frames.append(gcicenet_liquid())
    serial = [pipeline.process(f).scores for f in frames]
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # SOAP helpers on
    out: dict[int, list] = {0: [], 1: []}
    try:
        def work(t):
            for _ in range(3):
                for k in range(len(frames)):
                    k = (k + t) % len(frames)
                    out[t].append((k, pipeline.process(frames[k]).scores))

        threads = [threading.Thread(target=work, args=(t,)) for t in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        torch.set_num_threads(before)
    for t in (0, 1):
        for k, scores in out[t]:
            np.testing.assert_allclose(scores, serial[k], atol=1e-4)


def gcicenet_liquid():
    from .conftest import GCICENET, gcicenet_frame

    return gcicenet_frame(GCICENET, "w")
