"""A reader that opens a log while its writer is still setting it up (creating it, or
reopening it to append after a restart) must neither fail nor see a half-made file.

The writer runs in another process, as in a simulation, and is held at the moment
between setting up the file and switching it to SWMR mode (the window in which HDF5's
file lock keeps readers out and the superblock's end-of-file address runs ahead of the
bytes on disk)."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from icemon.io.log import LogError, complete_frames, open_log

HELD_WRITER = """
import sys
sys.path.insert(0, {root!r})
import numpy as np
from icemon.io import log as L
from tests.test_log import _result

def hold(setup):
    def held(self, *args, **kwargs):
        setup(self, *args, **kwargs)
        print("set up", flush=True)
        sys.stdin.readline()
    return held

L.LogWriter._create = hold(L.LogWriter._create)
L.LogWriter._open_existing = hold(L.LogWriter._open_existing)
from tests.test_log import PHASES
w = L.LogWriter(sys.argv[1], np.arange(5), model_name="m", model_sha256="a" * 64,
                threshold=3.0, phases=PHASES)
print("swmr", flush=True)
w.append(_result(step=int(sys.argv[2])))
print("appended", flush=True)
sys.stdin.readline()
w.close()
"""


def _held_writer(tmp_path: Path, log: Path, step: int) -> subprocess.Popen:
    script = tmp_path / "held_writer.py"
    script.write_text(HELD_WRITER.format(root=str(Path(__file__).resolve().parents[1])))
    proc = subprocess.Popen([sys.executable, str(script), str(log), str(step)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "set up", proc.poll()
    return proc


def _go_on(proc: subprocess.Popen, expect: str) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == expect, proc.poll()


def _first_run(tmp_path: Path, log: Path) -> None:
    """A whole run of the held writer: the log with one frame (step 0), closed."""
    proc = _held_writer(tmp_path, log, step=0)
    _go_on(proc, "swmr")
    _go_on(proc, "appended")
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0


def test_a_new_log_appears_only_once_readers_can_open_it(tmp_path):
    log = tmp_path / "new.h5"
    proc = _held_writer(tmp_path, log, step=0)
    try:
        # set up but not yet in SWMR mode: nothing at the path, so readers wait for it
        assert not log.exists()
        assert list(tmp_path.glob("*.h5")) == []
        with pytest.raises(LogError, match="no such log"):
            open_log(log, wait=0)
        _go_on(proc, "swmr")
        with open_log(log, wait=0) as f:
            assert complete_frames(f, refresh=True) in (0, 1)
        _go_on(proc, "appended")
        with open_log(log, wait=0) as f:
            assert complete_frames(f, refresh=True) == 1
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["held_writer.py", "new.h5"]


def test_a_reader_waits_while_a_restarted_writer_reopens_the_log(tmp_path):
    log = tmp_path / "restart.h5"
    _first_run(tmp_path, log)

    second = _held_writer(tmp_path, log, step=10)  # holds the file open, not yet SWMR
    try:
        opened: list = []
        reader = threading.Thread(target=lambda: opened.append(_frames(log, wait=30)))
        reader.start()
        time.sleep(1.0)
        assert reader.is_alive(), f"the reader gave up while the writer set up: {opened}"
        _go_on(second, "swmr")
        reader.join(timeout=30)
        assert opened in ([1], [2])  # the frame of the first run (+ the new one)
        _go_on(second, "appended")
    finally:
        second.stdin.close()
        second.wait(timeout=60)


def test_a_lock_that_is_never_released_is_named(tmp_path):
    log = tmp_path / "locked.h5"
    _first_run(tmp_path, log)
    second = _held_writer(tmp_path, log, step=10)
    try:
        t0 = time.monotonic()
        with pytest.raises(LogError, match="lock"):
            open_log(log, wait=0.5)
        assert 0.5 <= time.monotonic() - t0 < 10
    finally:
        _go_on(second, "swmr")
        second.stdin.close()
        second.wait(timeout=60)


def _frames(log: Path, wait: float) -> int | str:
    try:
        with open_log(log, wait=wait) as f:
            return complete_frames(f, refresh=True)
    except LogError as exc:
        return str(exc)


def test_a_cut_copy_of_a_closed_log_fails_at_once(tmp_path):
    log = tmp_path / "whole.h5"
    _first_run(tmp_path, log)
    data = log.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) - 100])
    t0 = time.monotonic()
    with pytest.raises(LogError, match="truncated"):
        open_log(cut, wait=30)
    assert time.monotonic() - t0 < 5
