"""Model-file discipline: weights + JSON config, clear errors for anything else."""

import json

import numpy as np
import pytest

from icemon import IcemonModel, ModelFileError, Pipeline, default_model_path
from icemon.lattices.references import reference


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
    assert cal["separated"] and cal["rule"] == "phase_quantile"
    assert cal["ice_q50"] < model.threshold < cal["disorder_q50"]
    # each reference phase has its own score unit, and the references are the symmetric
    # lattices the model was trained on, each with its space group
    assert len(model.classifier.reference.phase_scale) == len(model.phases) - 2  # - liquid, unknown
    assert model.reference_symprec > 0
    assert meta["references"]["Ih"]["space_group"] == "P6_3/mmc"
    assert cal["disorder_below"] < 0.01
    assert default_model_path().stat().st_size < 5e6
    # denoising uses the pass count the network was trained for
    assert model.denoise_steps == meta["train"]["config"]["train_passes"]


def test_classifier_arrays_without_shell_load_as_per_atom(model):
    """Model files written before descriptor averaging existed have no 'shell' entry."""
    from icemon.classification.classifier import PhaseClassifier

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


def test_phase_quantile_rule_gives_each_phase_its_own_unit():
    """Each phase's score unit is the quantile of its own synthetic-ice atoms, so every
    phase has the same small share above the threshold 1; a phase with too few atoms
    takes the pooled quantile."""
    from icemon.training.calibrate import PHASE_QUANTILE_MIN_ATOMS, phase_quantiles

    rng = np.random.default_rng(0)
    stiff, soft = rng.uniform(0, 1, 20_000), rng.uniform(0, 3, 20_000)
    rare = rng.uniform(0, 2, PHASE_QUANTILE_MIN_ATOMS - 1)
    scores = np.concatenate([stiff, soft, rare])
    codes = np.repeat([0, 1, 2], [len(stiff), len(soft), len(rare)])
    q = phase_quantiles(scores, codes, 3, 0.999)
    assert q[0] == pytest.approx(0.999, abs=0.01) and q[1] == pytest.approx(2.997, abs=0.03)
    assert q[2] == np.quantile(scores, 0.999)
    for k in (0, 1):
        assert np.mean(scores[codes == k] / q[k] > 1) == pytest.approx(0.001, abs=5e-4)


def test_phase_scale_divides_the_score_and_survives_the_model_file(model, tmp_path):
    """With per-phase units the score is the distance over its nearest phase's unit; the
    units travel in the model file, and files without them score plain distances."""
    from icemon.classification.classifier import PhaseClassifier

    a = reference("III", 10.0)
    pos = a.positions + np.random.default_rng(3).normal(scale=0.15, size=a.positions.shape)
    feats = Pipeline(model).soap(pos, a.cell[:])
    arrays = model.classifier.to_arrays()
    arrays.pop("phase_scale", None)
    code, raw = PhaseClassifier.from_arrays(arrays).reference.nearest(feats)  # plain distances
    units = np.linspace(0.5, 2.0, len(model.phases) - 2)
    scaled = PhaseClassifier.from_arrays({**arrays, "phase_scale": units})
    code2, score = scaled.reference.nearest(feats)
    np.testing.assert_array_equal(code, code2)
    np.testing.assert_allclose(score, raw / units[code])
    clone = IcemonModel(model.net, scaled, model.soap, model.denoise_steps,
                        model.denoise_tol, dict(model.meta))
    loaded = IcemonModel.load(clone.save(tmp_path / "units.npz"))
    np.testing.assert_array_equal(loaded.classifier.reference.phase_scale, units)
    assert PhaseClassifier.from_arrays(arrays).reference.phase_scale is None
    shipped = model.classifier.reference
    if shipped.phase_scale is not None:  # the shipped model's own units apply
        np.testing.assert_allclose(shipped.nearest(feats)[1], raw / shipped.phase_scale[code])
