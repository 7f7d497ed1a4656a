"""Whole frames shared by worker processes (:class:`icemon.execution.pool.FramePool`) and
``icemon classify --workers``: the same answers as one process, in frame order."""

import h5py
import numpy as np
import pytest

from icemon import Frame, FrameError, read_frames
from icemon.cli import main
from icemon.errors import ConfigError, ModelFileError
from icemon.execution.pool import FramePool


@pytest.fixture(scope="module")
def mixed_frames(gcicenet):
    """Frames of three phases and two sizes, interleaved so that order matters."""
    out = []
    for k in range(2):
        for tag in ("1h", "w", "3"):
            out += list(read_frames(gcicenet / f"md_{tag}_dev.xtc", gcicenet / f"md_{tag}.tpr",
                                    "name OW", start=k, stop=k + 1))
    return out


def test_workers_give_the_serial_results_in_frame_order(pipeline, model, mixed_frames):
    with FramePool(model, workers=2) as pool:  # a loaded model: workers read it from file
        results = list(pool.imap(mixed_frames))
    assert len(results) == len(mixed_frames)
    for frame, res in zip(mixed_frames, results):
        ref = pipeline.process(frame)
        assert res.frame.n_atoms == frame.n_atoms and res.frame.step == frame.step
        np.testing.assert_array_equal(res.labels, ref.labels)
        np.testing.assert_allclose(res.denoised, ref.denoised, atol=1e-5)
        assert res.phases == ref.phases
    # the frames really differ, so the order check means something
    assert len({int(np.argmax(np.bincount(r.labels))) for r in results}) == 3


def test_a_failing_frame_raises_in_order_and_the_pool_goes_on(mixed_frames):
    bad = Frame(np.zeros((4, 3)), np.eye(3) * 20.0)  # four atoms on one site: overlap
    with FramePool(workers=2) as pool:
        results = pool.imap([mixed_frames[0], bad, mixed_frames[1]])
        assert next(results).frame.n_atoms == mixed_frames[0].n_atoms
        with pytest.raises(FrameError, match="overlapping"):
            next(results)
        assert [r.frame.n_atoms for r in pool.imap(mixed_frames[2:3])] == \
            [mixed_frames[2].n_atoms]


def test_bad_arguments_fail_before_any_worker_starts(tmp_path):
    with pytest.raises(ConfigError, match="workers"):
        FramePool(workers=0)
    with pytest.raises(ModelFileError, match="missing.npz' does not exist"):
        FramePool(tmp_path / "missing.npz", workers=2)


@pytest.mark.slow
def test_classify_with_workers_writes_the_serial_log(gcicenet, tmp_path):
    args = ["classify", str(gcicenet / "md_3_dev.xtc"), "--top", str(gcicenet / "md_3.tpr"),
            "--stop", "4", "-q"]
    assert main([*args, "-o", str(tmp_path / "serial.h5")]) == 0
    assert main([*args, "--workers", "2", "-o", str(tmp_path / "pool.h5")]) == 0
    with h5py.File(tmp_path / "serial.h5", "r") as a, h5py.File(tmp_path / "pool.h5", "r") as b:
        assert set(a) == set(b)
        assert dict(a.attrs).keys() - {"created", "source"} == \
            dict(b.attrs).keys() - {"created", "source"}
        np.testing.assert_array_equal(a["labels"][()], b["labels"][()])
        np.testing.assert_array_equal(a["step"][()], b["step"][()])
        np.testing.assert_allclose(a["denoised"][()], b["denoised"][()], atol=1e-5)
        assert a.attrs["threshold"] == b.attrs["threshold"]
