"""The icemon/1 HDF5 log: schema, appends, refusal to mix runs, foreign files."""

import json

import h5py
import numpy as np
import pytest

from icemon import PHASES, Frame, LogError, LogWriter
from icemon.log import SCHEMA, check_schema
from icemon.pipeline import Result


def _result(n=5, step=0, seed=0, ids=None):
    rng = np.random.default_rng(seed)
    frame = Frame(rng.uniform(0, 10, (n, 3)), np.eye(3) * 10, ids, step=step, time=0.1 * step)
    labels = rng.integers(0, 8, n).astype(np.int8)
    return Result(frame, labels, rng.uniform(0, 5, n).astype(np.float32),
                  frame.positions + 0.01, labels)


def _writer(path, ids=np.arange(5), sha="a" * 64, **kw):
    return LogWriter(path, ids, model_name="m", model_sha256=sha, threshold=3.0, **kw)


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
        assert f["positions"].shape == (3, 5, 3) and f["positions"].compression == "gzip"
        assert f["fractions"].shape == (3, 8)
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
