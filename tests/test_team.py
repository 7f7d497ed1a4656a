"""One frame shared by helper processes of one machine (the default on more than one core):
the same answers as one process, the caller's own errors, and no lost frame when a helper
dies."""

import os
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import pytest

from icemon import Frame, Pipeline
from icemon.execution.team import MIN_ATOMS_PER_PROCESS, PipeComm
from icemon.geometry.frame import FrameError
from icemon.lattices.references import reference

from .conftest import gcicenet_frame

ROOT = Path(__file__).resolve().parents[1]


def _ready(pipe: Pipeline, size: int) -> Pipeline:
    """``pipe`` with its helpers up (frames run alone while they start)."""
    assert pipe.start_helpers(size * MIN_ATOMS_PER_PROCESS) == size
    return pipe


def _comms(size: int) -> list[PipeComm]:
    """``size`` ranks of one star, each to be driven by its own thread."""
    pairs = [socket.socketpair() for _ in range(size - 1)]
    root = PipeComm(0, size, [Connection(a.detach()) for a, _ in pairs])
    return [root] + [PipeComm(r, size, [Connection(b.detach())])
                     for r, (_, b) in enumerate(pairs, start=1)]


def _run_all(comms: list[PipeComm], fn) -> list:
    out: list = [None] * len(comms)

    def go(k: int) -> None:
        out[k] = fn(comms[k])

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(comms))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return out


def test_pipe_collectives_give_every_rank_the_same_answer():
    comms = _comms(3)
    assert _run_all(comms, lambda c: c.allgather(("rank", c.rank))) == \
        [[("rank", 0), ("rank", 1), ("rank", 2)]] * 3
    assert _run_all(comms, lambda c: c.allreduce(float(c.rank) * 1.5, op=c.MAX)) == [3.0] * 3
    assert _run_all(comms, lambda c: c.bcast("frame" if c.rank == 0 else None)) == ["frame"] * 3

    def rows(c: PipeComm) -> np.ndarray:
        mine = np.full((c.rank + 1, 2), c.rank, dtype=np.float32)  # 1, 2 and 3 rows
        out = np.empty((6, 2), dtype=np.float32)
        c.Allgatherv(mine, (out, np.array([2, 4, 6])))
        return out

    want = np.repeat([0.0, 1.0, 1.0, 2.0, 2.0, 2.0], 2).reshape(6, 2)
    for got in _run_all(comms, rows):
        np.testing.assert_array_equal(got, want)


def test_frames_below_the_share_size_stay_in_one_process(model):
    pipe = Pipeline(model, processes=2)
    assert pipe.team_size(2 * MIN_ATOMS_PER_PROCESS - 1) == 1
    assert pipe.team_size(2 * MIN_ATOMS_PER_PROCESS) == 2
    assert pipe.team_size(10**6) == 2
    assert Pipeline(model, processes=1).team_size(10**6) == 1


def test_processes_must_be_positive(model):
    from icemon.errors import ConfigError

    with pytest.raises(ConfigError, match="processes must be at least 1"):
        Pipeline(model, processes=0)


@pytest.mark.slow
def test_a_shared_frame_has_the_labels_of_one_process(model, gcicenet):
    """GCIceNet ice Ih, VII and liquid: labels identical, scores and denoised positions
    equal to float32 rounding, whether one, two or three processes share the frame.
    (Scores: measured within 3e-6, the atoms' own scores within 2e-5; with a SOAP halo
    of r_cut instead of the descriptor's reach they were 2e-4 and 2e-3 apart.)"""
    frames = [gcicenet_frame(gcicenet, tag) for tag in ("1h", "7", "w")]
    alone = Pipeline(model, processes=1)
    with Pipeline(model, processes=2) as two, Pipeline(model, processes=3) as three:
        _ready(two, 2), _ready(three, 3)
        for frame in frames:
            assert three.team_size(len(frame.positions)) >= 2
            want = alone.process(frame)
            for pipe in (two, three):
                got = pipe.process(frame)
                np.testing.assert_array_equal(got.labels, want.labels)
                np.testing.assert_allclose(got.scores, want.scores, rtol=0, atol=3e-5)
                np.testing.assert_allclose(got.atom_scores, want.atom_scores, rtol=0,
                                           atol=2e-4)
                np.testing.assert_allclose(got.denoised, want.denoised, atol=2e-5)
            assert two.sharing.team is not None and len(two.sharing.team.procs) == 1  # really shared


@pytest.mark.slow
def test_a_bad_frame_raises_the_callers_own_error(model):
    """Overlapping oxygens in a frame large enough to share: the same FrameError (type and
    message) as in one process, and the helper still serves the next frame."""
    ice = reference("Ih", 32.0)
    pos = ice.positions.copy()
    assert len(pos) >= 2 * MIN_ATOMS_PER_PROCESS
    pos[7] = pos[3] + 0.2
    bad = Frame(pos, np.asarray(ice.cell[:]))
    good = Frame(ice.positions + np.random.default_rng(0).normal(0, 0.1, pos.shape),
                 np.asarray(ice.cell[:]))
    with pytest.raises(FrameError) as alone:
        Pipeline(model, processes=1).process(bad)
    with _ready(Pipeline(model, processes=2), 2) as pipe:
        with pytest.raises(FrameError) as shared:
            pipe.process(bad)
        assert str(shared.value) == str(alone.value)
        helper = pipe.sharing.team.procs[0]
        result = pipe.process(good)
        assert pipe.sharing.team is not None and pipe.sharing.team.procs[0] is helper  # same helper
        assert result.ice.mean() == 1.0


@pytest.mark.slow
def test_a_dead_helper_costs_one_warning_and_no_frame(model, gcicenet):
    frame = gcicenet_frame(gcicenet, "1h")
    want = Pipeline(model, processes=1).process(frame).labels
    with _ready(Pipeline(model, processes=2), 2) as pipe:
        np.testing.assert_array_equal(pipe.process(frame).labels, want)
        helper = pipe.sharing.team.procs[0]
        os.kill(helper.pid, signal.SIGKILL)
        helper.wait()
        with pytest.warns(RuntimeWarning, match="frame-sharing process stopped"):
            got = pipe.process(frame)
        np.testing.assert_array_equal(got.labels, want)
        assert pipe.team_size(len(frame.positions)) == 1  # one process from now on
        np.testing.assert_array_equal(pipe.process(frame).labels, want)


@pytest.mark.slow
def test_a_script_without_a_main_guard_shares_frames(tmp_path, gcicenet):
    """Helpers are fresh interpreters that never import the user's script (multiprocessing's
    spawn would re-run a script without ``if __name__ == "__main__"`` in each helper)."""
    script = tmp_path / "plain.py"
    script.write_text(
        "import torch\n"
        "torch.set_num_threads(2)\n"
        "from icemon import Pipeline, read_frames\n"
        f"frame = next(read_frames({str(gcicenet / 'md_1h_dev.xtc')!r}, "
        f"{str(gcicenet / 'md_1h.tpr')!r}, 'name OW'))\n"
        "pipe = Pipeline()\n"
        "pipe.process(frame)  # alone, while the helper starts\n"
        "pipe.start_helpers(len(frame.positions))\n"
        "result = pipe.process(frame)\n"
        "print('shared', len(pipe.sharing.team.procs), 'ice', float(result.ice.mean()))\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=600, cwd=tmp_path, env=dict(os.environ, ICEMON_COMPILE="0"))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "shared 1 ice 1.0" in out.stdout


@pytest.mark.slow
def test_frames_never_wait_for_helpers_to_start(model, gcicenet):
    """The first frame runs alone while the helper starts (a run of one frame costs no
    helper start-up), and closing stops a helper that is still starting."""
    frame = gcicenet_frame(gcicenet, "1h")
    want = Pipeline(model, processes=1).process(frame).labels
    pipe = Pipeline(model, processes=2)
    np.testing.assert_array_equal(pipe.process(frame).labels, want)
    team = pipe.sharing.team
    assert team is not None and not all(team._ready)  # started, not waited for
    helper = team.procs[0]
    pipe.close()
    assert helper.poll() is not None and pipe.sharing.team is None


@pytest.mark.slow
def test_a_monitor_starts_helpers_when_it_attaches(tmp_path, model, gcicenet):
    """A hook's monitor starts the helpers with the engine's set-up and its first frame
    waits for them: every frame of a run is shared (the network compiled once per
    process)."""
    from icemon.hooks.monitor import Monitor
    from icemon.io.log import complete_frames, open_log

    frame = gcicenet_frame(gcicenet, "1h")
    with Pipeline(model, processes=2) as pipe:
        with Monitor(tmp_path / "m.h5", frame.atom_ids, pipeline=pipe) as mon:
            assert pipe.sharing.team is not None  # started, not yet waited for
            mon(frame)
            assert all(pipe.sharing.team._ready) and mon.n_logged == 1
    with open_log(tmp_path / "m.h5") as log:
        assert complete_frames(log) == 1


def test_helpers_leave_the_model_naming_its_own_file(model, tmp_path):
    """The copy the helpers load does not rename the model: logs keep recording the file
    the model came from (its sha256)."""
    before = (model.path, model.sha256)
    with Pipeline(model, processes=2) as pipe:
        assert pipe.start_helpers(4 * MIN_ATOMS_PER_PROCESS, wait=False) == 2
        assert (pipe.model.path, pipe.model.sha256) == before
