"""Model-file discipline: weights + JSON config, clear errors for anything else."""

import json

import numpy as np
import pytest

from icemon import IcemonModel, ModelFileError, Pipeline, default_model_path
from icemon.training.references import reference


def test_shipped_model_records_its_provenance(model):
    assert model.path == default_model_path()
    assert len(model.sha256) == 64
    meta = model.meta
    assert meta["format"] == "icemon-model/1"
    assert meta["train"]["command"].startswith("icemon train")
    assert meta["train"]["updates"] == meta["train"]["config"]["steps"]
    assert meta["genice2"]
    assert np.isfinite(model.threshold) and model.threshold > 0
    cal = meta["calibration"]
    # the threshold lies between the synthetic ice and synthetic disorder medians
    assert cal["separated"] and cal["rule"] == "ice_quantile"
    assert cal["ice_q50"] < model.threshold < cal["disorder_q50"]
    assert cal["disorder_below"] < 0.01
    assert default_model_path().stat().st_size < 5e6
    # denoising uses the pass count the network was trained for
    assert model.denoise_steps == meta["train"]["config"]["train_passes"]


def test_classifier_arrays_without_shell_load_as_per_atom(model):
    """Model files written before descriptor averaging existed have no 'shell' entry."""
    from icemon.core.classify import PhaseClassifier

    arrays = model.classifier.to_arrays()
    arrays.pop("shell")
    assert PhaseClassifier.from_arrays(arrays).shell == 0.0


def test_save_load_round_trip(model, tmp_path):
    clone = IcemonModel(model.net, model.classifier, model.soap, model.denoise_steps,
                        model.denoise_tol, dict(model.meta))
    path = clone.save(tmp_path / "copy.npz")
    loaded = IcemonModel.load(path)
    assert loaded.sha256 == clone.sha256
    assert loaded.net.config == model.net.config
    assert loaded.classifier.shell == model.classifier.shell
    assert loaded.denoise_steps == model.denoise_steps
    a = reference("VI", 10.0)
    pos = a.positions + np.random.default_rng(0).normal(scale=0.1, size=a.positions.shape)
    res1 = Pipeline(model)(pos, a.cell[:])
    res2 = Pipeline(loaded)(pos, a.cell[:])
    np.testing.assert_array_equal(res1.labels, res2.labels)
    np.testing.assert_allclose(res1.scores, res2.scores, rtol=1e-6)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        IcemonModel.load(tmp_path / "nope.npz")


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="not a readable icemon model"):
        IcemonModel.load(bad)


def test_truncated_model_file(tmp_path):
    data = default_model_path().read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError):
        IcemonModel.load(bad)


def test_npz_that_is_not_a_model(tmp_path):
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ModelFileError, match="no 'meta'"):
        IcemonModel.load(other)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, meta=np.array(json.dumps({"format": "something/9"})))
    with pytest.raises(ModelFileError, match="format 'something/9'"):
        IcemonModel.load(wrong)


def test_model_with_missing_weights(model, tmp_path):
    with np.load(default_model_path()) as d:
        arrays = {k: d[k] for k in d.files if not k.startswith("net/layers.0")}
    bad = tmp_path / "partial.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ModelFileError, match="incomplete or incompatible"):
        IcemonModel.load(bad)
