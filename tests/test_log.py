"""The icemon/1 HDF5 log: schema, appends, refusal to mix runs, foreign files."""

import json

import h5py
import numpy as np
import pytest

from icemon import Frame, LogError, LogWriter
from icemon.execution.pipeline import Result
from icemon.io.log import SCHEMA, check_schema

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)


def _result(n=5, step=0, seed=0, ids=None):
    rng = np.random.default_rng(seed)
    time = 0.1 * step if step >= 0 else float("nan")  # unknown step: unknown time
    frame = Frame(rng.uniform(0, 10, (n, 3)), np.eye(3) * 10, ids, step=step, time=time)
    labels = rng.integers(0, len(PHASES), n).astype(np.int8)
    return Result(frame, labels, rng.uniform(0, 5, n).astype(np.float32),
                  frame.positions + 0.01, labels, phases=PHASES)


def _writer(path, ids=np.arange(5), sha="a" * 64, **kw):
    return LogWriter(path, ids, model_name="m", model_sha256=sha, threshold=3.0,
                     **{"phases": PHASES, **kw})


def test_schema_and_contents(tmp_path):
    path = tmp_path / "run.h5"
    results = [_result(step=s, seed=s) for s in (0, 10, 20)]
    with _writer(path, source="unit test") as w:
        for r in results:
            w.append(r)
        assert w.n_frames == 3
    with h5py.File(path, "r") as f:
        check_schema(f, path)
        assert f.attrs["schema"] == SCHEMA
        assert list(f.attrs["phases"]) == list(PHASES)
        assert json.loads(f.attrs["model"]) == {"name": "m", "sha256": "a" * 64}
        assert f.attrs["threshold"] == 3.0 and f.attrs["source"] == "unit test"
        assert f.attrs["icemon_version"]
        np.testing.assert_array_equal(f["step"][()], [0, 10, 20])
        np.testing.assert_allclose(f["time"][()], [0.0, 1.0, 2.0])
        assert f["labels"].dtype == np.int8 and f["labels"].shape == (3, 5)
        assert f["scores"].dtype == np.float32 and f["cell"].shape == (3, 3, 3)
        # one uncompressed chunk per frame: gzip shrank float32 coordinates by 12 % for
        # most of the time a frame spends in the log
        assert f["positions"].shape == (3, 5, 3) and f["positions"].compression is None
        assert f["positions"].chunks == (1, 5, 3)
        assert f["fractions"].shape == (3, len(PHASES))
        for k, r in enumerate(results):
            np.testing.assert_array_equal(f["labels"][k], r.labels)
            np.testing.assert_allclose(f["fractions"][k], r.fractions)
            np.testing.assert_allclose(f["fractions"][k].sum(), 1.0, rtol=1e-6)
            np.testing.assert_allclose(f["denoised"][k], r.denoised, rtol=1e-6)
        assert f["step"].maxshape == (None,) and f["labels"].chunks == (1, 5)


def test_reopen_appends_never_truncates(tmp_path):
    path = tmp_path / "run.h5"
    with _writer(path) as w:
        w.append(_result(step=0))
    with _writer(path) as w:
        assert w.n_frames == 1
        w.append(_result(step=1))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["step"][()], [0, 1])


def test_reopen_with_other_model_or_atoms_is_refused(tmp_path):
    path = tmp_path / "run.h5"
    with _writer(path) as w:
        w.append(_result())
    with pytest.raises(LogError, match="written with model"):
        _writer(path, sha="b" * 64)
    with pytest.raises(LogError, match="atom ids differ"):
        _writer(path, ids=np.arange(1, 6))
    with h5py.File(path, "r") as f:  # the log is intact
        assert f["step"].shape == (1,)


def test_frame_with_other_atoms_is_refused(tmp_path):
    with _writer(tmp_path / "run.h5") as w:
        with pytest.raises(LogError, match="do not match"):
            w.append(_result(n=6))


def test_foreign_hdf5_and_non_hdf5(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(LogError, match="not an icemon log"):
        _writer(foreign)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(LogError, match="cannot open existing log"):
        _writer(text)
    assert text.read_text() == "hello"


def test_without_positions(tmp_path):
    path = tmp_path / "run.h5"
    with _writer(path, positions=False) as w:
        w.append(_result())
        assert not w.has_positions
    with h5py.File(path, "r") as f:
        assert "positions" not in f and "denoised" not in f


def test_unwritable_path(tmp_path):
    with pytest.raises(LogError, match="cannot create log"):
        _writer(tmp_path / "missing-dir" / "run.h5")


PER_FRAME = ("step", "time", "cell", "fractions", "labels", "scores", "positions", "denoised")
DENOISE = {"max_steps": 6, "tol": 0.01, "device": "cpu"}


def test_unwritten_row_reads_fill_values_and_is_not_a_frame(tmp_path):
    """A writer stopped between resizing the datasets and writing the row (the state an
    SWMR reader can catch) leaves a row that reads as fill values, never as data."""
    from icemon.analysis import Log

    path = tmp_path / "torn.h5"
    with _writer(path) as w:
        w.append(_result(step=0))
        w.append(_result(step=10, seed=1))
        for name in PER_FRAME:  # resized, not written
            w.file[name].resize(3, axis=0)
            w.file[name].flush()
        w.file.flush()
    with h5py.File(path, "r") as f:
        assert f["step"][2] == np.iinfo(np.int64).min  # -1 is a real step (unknown)
        assert (f["labels"][2] == -1).all()
        for name in ("time", "cell", "fractions", "scores", "positions", "denoised"):
            assert np.isnan(f[name][2]).all(), name
    with Log(path) as log:
        assert log.n_frames == 2
        np.testing.assert_array_equal(log.steps, [0, 10])
        assert log.fractions.shape == (2, len(PHASES))
        with pytest.raises(IndexError):
            log.labels(2)
    with _writer(path) as w:  # the next run appends after the last complete frame
        assert w.n_frames == 2
        w.append(_result(step=20, seed=2))
    with Log(path) as log:
        np.testing.assert_array_equal(log.steps, [0, 10, 20])
        np.testing.assert_array_equal(log.labels(2), _result(step=20, seed=2).labels)


def test_denoising_settings_are_recorded_and_checked_on_append(tmp_path):
    path = tmp_path / "run.h5"
    with _writer(path, denoise=DENOISE) as w:
        w.append(_result(step=0))
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["denoise"]) == DENOISE
    from icemon.analysis import Log

    with Log(path) as log:
        assert log.denoise == DENOISE
    for other, what in (({**DENOISE, "max_steps": 4}, "max_steps"),
                        ({**DENOISE, "tol": 0.05}, "tol"),
                        ({**DENOISE, "device": "cuda"}, "device")):
        with pytest.raises(LogError, match=what):
            _writer(path, denoise=other)
    with pytest.raises(LogError, match="threshold"):
        LogWriter(path, np.arange(5), model_name="m", model_sha256="a" * 64, threshold=2.5,
                  denoise=DENOISE, phases=PHASES)
    with _writer(path, denoise=dict(DENOISE)) as w:  # the same settings: appended
        w.append(_result(step=10))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["step"][()], [0, 10])


def test_log_written_before_settings_and_counter_is_read_and_appended(tmp_path):
    """A log without the 'denoise' attribute or the frame counter (older icemon): its
    settings are unknown, which is no error, and its frames are len(step)."""
    from icemon.analysis import Log

    path = tmp_path / "old.h5"
    with _writer(path) as w:
        w.append(_result(step=0))
    with h5py.File(path, "r+") as f:
        for name in ("n_frames",):
            if name in f:
                del f[name]
        if "denoise" in f.attrs:
            del f.attrs["denoise"]
    with Log(path) as log:
        assert log.n_frames == 1
    with _writer(path, denoise=DENOISE) as w:
        w.append(_result(step=10))
    with Log(path) as log:
        np.testing.assert_array_equal(log.steps, [0, 10])


def test_steps_must_increase_across_appends_and_restarts(tmp_path):
    path = tmp_path / "run.h5"
    with _writer(path) as w:
        w.append(_result(step=0))
        w.append(_result(step=10))
        for step in (10, 5):
            with pytest.raises(LogError, match=f"step {step} is not after.*step 10"):
                w.append(_result(step=step))
        w.append(_result(step=-1))  # unknown step: accepted
        w.append(_result(step=20))
        assert w.n_frames == 4
    with _writer(path) as w:  # a restarted run whose steps go back
        with pytest.raises(LogError, match="step 15 is not after.*step 20"):
            w.append(_result(step=15))
        w.append(_result(step=30))
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["step"][()], [0, 10, -1, 20, 30])
        assert f["labels"].shape[0] == 5


def test_monitor_records_its_pipeline_settings(tmp_path, model, pipeline):
    from icemon import Pipeline
    from icemon.analysis import Log
    from icemon.hooks.monitor import Monitor

    path = tmp_path / "mon.h5"
    Monitor(path, np.arange(5), pipeline=pipeline).close()
    den = pipeline.denoiser
    with Log(path) as log:
        assert log.denoise == {"max_steps": den.max_steps, "tol": den.tol,
                               "device": str(den.device)}
    other = Pipeline(model, denoise_steps=den.max_steps + 1)
    with pytest.raises(LogError, match="max_steps"):
        Monitor(path, np.arange(5), pipeline=other)


def test_per_atom_scores_are_kept_beside_averaged_ones(tmp_path):
    """A shell-averaging model logs the decision scores and the per-atom ones."""
    from icemon.analysis import Log

    r = _result()
    r.atom_scores = (r.scores * 2).astype(np.float32)
    with _writer(tmp_path / "a.h5", atom_scores=True) as w:
        w.append(r)
    with _writer(tmp_path / "b.h5") as w:
        w.append(r)
    with Log(tmp_path / "a.h5") as log:
        np.testing.assert_array_equal(log.scores(0), r.scores)
        np.testing.assert_array_equal(log.atom_scores(0), r.atom_scores)
    with Log(tmp_path / "b.h5") as log:  # no averaging recorded: per-atom = decision scores
        np.testing.assert_array_equal(log.atom_scores(0), r.scores)


@pytest.mark.parametrize("fsync", [False, True])
def test_fsync_option_syncs_the_log_file_after_every_frame(tmp_path, monkeypatch, fsync):
    """``fsync=True``: every appended frame is also synced to the disk, on the log's own
    file descriptor (a frame then survives a node failure, not only a killed process)."""
    import os

    import icemon.io.log.writer as writer_module

    synced: list[int] = []  # inodes of the synced files
    real = os.fsync

    def spy(fd):
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(writer_module.os, "fsync", spy)
    path = tmp_path / "sync.h5"
    with _writer(path, fsync=fsync) as w:
        for k in range(3):
            w.append(_result(step=k))
    assert synced == ([path.stat().st_ino] * 3 if fsync else [])


def test_resume_from_drops_later_frames_and_records_it(tmp_path):
    """A restart that continues the log from an earlier step: the frames after it go (a
    reader never counts a cut row), the cut is recorded, the next steps append."""
    from icemon.io.log import Log

    path = tmp_path / "r.h5"
    with _writer(path) as w:
        for step in (0, 10, 20, 30):
            w.append(_result(step=step))
    with pytest.raises(LogError, match="up to step 30.*starts at step 10.*resume_from=10"):
        _writer(path, start_step=10)
    with _writer(path, start_step=10, resume_from=10) as w:
        assert w.n_frames == 2 and w.last_step == 10
        w.append(_result(step=15))
    with Log(path) as log:
        np.testing.assert_array_equal(log.steps, [0, 10, 15])
        [resume] = log.resumes
        assert resume["from_step"] == 10 and resume["dropped_frames"] == 2
        assert resume["dropped_steps"] == [20, 30]
    with _writer(path, start_step=15) as w:  # continues where the log ends
        with pytest.raises(LogError, match="already the last frame"):
            w.append(_result(step=15))
        w.append(_result(step=16))
    with Log(path) as log:
        np.testing.assert_array_equal(log.steps, [0, 10, 15, 16])


def test_times_must_increase_and_another_simulation_is_not_appended(tmp_path):
    """Frames of unknown step appended twice (the same file classified again) were
    accepted, times going back; a run with another box was appended as if it continued
    the log. Both refused now; the appending run's source is recorded."""
    from icemon.io.log import Log

    def result(time, cell=10.0):
        r = _result(step=-1)
        r.frame = Frame(r.frame.positions, np.eye(3) * cell, r.frame.atom_ids, time=time)
        return r

    path = tmp_path / "t.h5"
    with _writer(path, source="first.extxyz") as w:
        w.append(result(0.0))
        w.append(result(1.0))
        with pytest.raises(LogError, match="time 0 ps is not after the last logged time 1 ps"):
            w.append(result(0.0))
    with _writer(path, source="second.extxyz") as w:
        with pytest.raises(LogError, match="time 1 ps is not after"):
            w.append(result(1.0))
        with pytest.raises(LogError, match=r"cell of 11\.50.*10\.00.*another simulation"):
            w.append(result(2.0, cell=11.5))
        w.append(result(2.0, cell=10.05))  # a continued NPT run: the box barely moved
    with Log(path) as log:
        assert log.times.tolist() == [0.0, 1.0, 2.0]
        assert log.file.attrs["source"] == "first.extxyz; then second.extxyz"
