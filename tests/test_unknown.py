"""The ``unknown`` label: above the liquid threshold, an environment that repeats among the
other far atoms (a crystal the model has no reference for) is unknown, one that does not
(a liquid) stays liquid."""

import numpy as np
import pytest

from icemon.classification.checks import RepeatCheck
from icemon.classification.checks.repeat import repeat_distance
from icemon.classification.classifier import PhaseClassifier
from icemon.classification.reference import NearestReference


def _crystal_like(rng, n_orbits=3, copies=60, dim=31, noise=0.02):
    """Points of a crystal in descriptor space: a few orbits, each many near-copies."""
    centres = rng.normal(0, 3, size=(n_orbits, dim))
    return np.repeat(centres, copies, axis=0) + rng.normal(0, noise, (n_orbits * copies, dim))


def test_repeated_environments_are_close_unrepeated_ones_far():
    rng = np.random.default_rng(0)
    crystal = repeat_distance(_crystal_like(rng), k=4)
    liquid = repeat_distance(rng.normal(0, 1, size=(180, 31)), k=4)
    assert crystal.max() < 0.2
    assert liquid.min() > 3.0


def test_an_atom_is_not_its_own_copy():
    """Four copies of one environment (k = 4 others needed) do not repeat; five do."""
    rng = np.random.default_rng(1)
    far = rng.normal(0, 5, size=(40, 8))
    four = np.vstack([np.zeros((4, 8)), far])
    five = np.vstack([np.zeros((5, 8)), far])
    assert np.all(repeat_distance(four, k=4)[:4] > 1)
    np.testing.assert_allclose(repeat_distance(five, k=4)[:5], 0.0, atol=1e-3)
    assert np.all(np.isinf(repeat_distance(np.zeros((4, 8)), k=4)))


def test_big_frames_compare_with_a_deterministic_subset():
    """Above ``sample`` candidates the comparison set is every s-th point: same answer on
    a rerun, and still small for a crystal and large for a liquid."""
    rng = np.random.default_rng(2)
    crystal = _crystal_like(rng, n_orbits=5, copies=2000)
    a = repeat_distance(crystal, k=4, sample=512)
    np.testing.assert_array_equal(a, repeat_distance(crystal, k=4, sample=512))
    assert a.max() < 0.2
    brute = repeat_distance(crystal[::20], k=4, sample=10_000)
    assert brute.max() < 0.2


def test_a_share_of_the_points_gets_the_distances_of_the_whole():
    """MPI ranks each compute the distances of their own far atoms (``rows``) against the
    sample of all of them: the same numbers as one call over every point, including the
    rule that a sampled point is not its own copy."""
    rng = np.random.default_rng(3)
    points = np.concatenate([_crystal_like(rng, n_orbits=3, copies=300),
                             rng.normal(0, 1, size=(400, 31))])
    whole = repeat_distance(points, k=4, sample=256)  # stride 6: sampled points among them
    rows = rng.permutation(len(points))[:500]
    np.testing.assert_array_equal(repeat_distance(points, k=4, sample=256, rows=rows),
                                  whole[rows])
    assert repeat_distance(points, k=4, rows=np.zeros(0, dtype=int)).shape == (0,)


def _classifier(unknown: int, repeat_shell: float = 0.0) -> PhaseClassifier:
    d = 6
    ref = NearestReference(np.zeros(d), np.ones(d), np.eye(d), np.zeros(d),
                           np.eye(d)[:2] * 10, np.array([0, 1]), threshold=1.0, liquid=2,
                           unknown=unknown)
    return PhaseClassifier(ref, [RepeatCheck(threshold=0.5, shell=repeat_shell)])


def test_far_repeated_atoms_are_unknown_far_unrepeated_ones_liquid():
    rng = np.random.default_rng(3)
    near_ref = np.eye(6)[0] * 10 + rng.normal(0, 0.01, (20, 6))  # phase 0
    ordered = np.full((30, 6), 4.0) + rng.normal(0, 0.01, (30, 6))  # far, repeated
    disordered = rng.normal(0, 4, (30, 6)) + 20  # far, each its own
    feats = np.vstack([near_ref, ordered, disordered])
    labels, _ = _classifier(unknown=3).predict(feats)
    assert np.all(labels[:20] == 0)
    assert np.all(labels[20:50] == 3)
    assert np.all(labels[50:] == 2)
    # a model without the label calls every far atom liquid
    labels, _ = _classifier(unknown=-1).predict(feats)
    assert np.all(labels[20:] == 2)


def test_unknown_is_stored_in_the_classifier_arrays():
    clf = _classifier(unknown=3)
    back = PhaseClassifier.from_arrays(clf.to_arrays())
    rep = back.check("repeat")
    assert (back.unknown, rep.threshold, rep.k) == (3, 0.5, clf.check("repeat").k)
    old = {k: v for k, v in clf.to_arrays().items()
           if k not in ("unknown", "repeat_threshold", "repeat_k")}
    before = PhaseClassifier.from_arrays(old)  # files from before the label
    assert before.unknown == -1 and before.check("repeat") is None


@pytest.mark.parametrize("unknown", [3, -1])
def test_model_file_vocabulary_must_name_unknown_where_the_classifier_has_it(tmp_path, unknown):
    from icemon import IcemonModel
    from icemon.model.modelfile import ModelFileError

    model = IcemonModel.load(None)
    clf = model.classifier
    clf = PhaseClassifier.from_arrays({**clf.to_arrays(), "unknown": np.array(
        clf.liquid + 1 if unknown >= 0 else -1), "repeat_threshold": np.array(0.5)})
    plain = [p for p in model.phases if p != "unknown"]
    wrong = plain if unknown >= 0 else [*plain, "unknown"]
    bad = IcemonModel(model.net, clf, model.soap, model.denoise_steps, model.denoise_tol,
                      {**model.meta, "phases": wrong})
    with pytest.raises(ModelFileError, match="unknown code"):
        IcemonModel.load(bad.save(tmp_path / "bad.npz"))


@pytest.mark.slow
@pytest.mark.parametrize("lattice", ["12", "17", "0", "4", "HS2", "C36", "LTA", "sV", "A15"])
def test_lattices_the_shipped_model_does_not_know_are_unknown(pipeline, lattice):
    """Ices XII, XVII, 0 and IV, the HS2, sV and A15 cage structures and two zeolite-like
    frameworks (C36, LTA), noised as thermal motion would: ordered, no reference ⇒
    unknown, neither liquid nor the nearest ice. XII lands inside ice V's unit and needs
    the orbit check (it fills two of V's four orbits); IV, which the network leaves less
    ordered (single atoms past the repeat threshold), needs the averaged repeat distance,
    HS2, C36 and LTA the repeat threshold from synthetic ice at σ_max (seven-ice v0.5: IV
    92 % unknown; with the averaged repeat distance but the σ = 0.15 Å threshold, HS2,
    C36, LTA 87 / 85 / 67 %, the rest liquid)."""
    from icemon import Frame
    from icemon.lattices.references import reference

    assert "unknown" in pipeline.model.phases
    a = reference(lattice, 18.0)
    x = a.positions + np.random.default_rng(7).normal(0, 0.12, a.positions.shape)
    res = pipeline.process(Frame(x, a.cell[:]))
    unknown = res.fractions[pipeline.model.phases.index("unknown")]
    assert unknown >= 0.99, res.table()


@pytest.mark.slow
@pytest.mark.parametrize("phase", ["sII", "sH", "V"])
def test_the_shipped_model_names_sII_sH_and_V(pipeline, phase):
    """The three phases added by the classifier alone (the network never saw them),
    noised as thermal motion would: their own names (the seven-ice model called sII and
    sH sI, V unknown)."""
    from icemon import Frame
    from icemon.lattices.references import reference

    a = reference(phase, 18.0)
    x = a.positions + np.random.default_rng(7).normal(0, 0.12, a.positions.shape)
    res = pipeline.process(Frame(x, a.cell[:]))
    assert res.fractions[pipeline.model.phases.index(phase)] >= 0.99, res.table()


@pytest.mark.slow
def test_liquid_stays_liquid_with_the_unknown_label(pipeline, gcicenet):
    from .conftest import gcicenet_frame

    res = pipeline.process(gcicenet_frame(gcicenet, "w"))
    assert res.fractions[pipeline.model.phases.index("liquid")] >= 0.999, res.table()


def test_averaged_repeat_distances_keep_a_crystal_whole(monkeypatch):
    """An ordered region whose single atoms scatter past the repeat threshold (a lattice
    the network leaves less ordered, like ice IV) is unknown everywhere once each atom's
    repeat distance is averaged over the far atoms around it; a liquid beside it stays
    liquid. (The repeat distances are given: :func:`repeat_distance` is replaced by
    them, and the classifier's repeat check averages them over its shell.)"""
    from icemon.classification.checks import repeat
    from icemon.classification.checks.repeat import far_average

    rng = np.random.default_rng(5)
    # a 10 x 10 x 5 crystal of far atoms, 3 Å apart, at x < 28 Å; a liquid at x > 34 Å
    grid = np.stack(np.meshgrid(np.arange(10), np.arange(10), np.arange(5), indexing="ij"),
                    -1).reshape(-1, 3) * 3.0
    liquid_pos = rng.uniform([34, 0, 0], [56, 30, 15], (500, 3))  # 6 Å gaps
    positions = np.vstack([grid, liquid_pos])
    cell = np.diag([62.0, 30.0, 15.0])
    crystal_d = rng.uniform(0.2, 0.45, len(grid))
    crystal_d[rng.choice(len(grid), 10, replace=False)] = 0.7  # a tail beyond 0.5
    d = np.concatenate([crystal_d, rng.uniform(2.0, 4.0, 500)])
    asked = []

    def given(points, k=repeat.REPEAT_K, sample=repeat.REPEAT_SAMPLE, rows=None,
              groups=None):
        asked.append(len(points))
        return (d if rows is None else d[rows]).astype(np.float32)

    monkeypatch.setattr(repeat, "repeat_distance", given)
    feats = np.full((len(d), 6), 20.0)  # every atom far (scores ≫ 1)
    clf = _classifier(unknown=3)
    res = clf.label_frame(feats, positions, cell)
    assert np.all(res.scores > clf.threshold)
    assert asked == [len(d)]  # every far atom compared
    plain = res.labels
    assert (plain[:len(grid)] == 2).sum() == 10
    assert np.all(plain[len(grid):] == 2)
    averaged = far_average(d, positions, cell, 4.5)
    labels = _classifier(unknown=3, repeat_shell=4.5).label_frame(feats, positions, cell).labels
    np.testing.assert_array_equal(labels, np.where(averaged <= 0.5, 3, 2))
    assert np.all(labels[:len(grid)] == 3)
    assert np.all(labels[len(grid):] == 2)
    # only some rows: the same averages
    rows = np.array([0, 7, 600, 900])
    np.testing.assert_allclose(far_average(d, positions, cell, 4.5, rows=rows), averaged[rows])


def test_averages_from_the_shell_pairs_equal_those_from_a_new_list():
    """The classification's shell pairs, reused for the repeat-distance average (every far
    atom, or an MPI rank's rows), give what a list over the far atoms alone gives."""
    from icemon.classification.checks.repeat import far_average, far_pair_average
    from icemon.classification.reference import shell_pairs

    rng = np.random.default_rng(8)
    cell = np.diag([20.0, 20.0, 20.0])
    positions = rng.uniform(0, 20, (400, 3))
    far = rng.uniform(size=400) < 0.6
    d = rng.uniform(0.1, 2.0, 400)
    whole = far_average(d[far], positions[far], cell, 4.8)
    np.testing.assert_allclose(far_pair_average(d, far, shell_pairs(positions, cell, 4.8)),
                               whole)
    rows = np.sort(rng.choice(400, 150, replace=False))
    part = far_pair_average(d, far, shell_pairs(positions, cell, 4.8, rows), rows)
    np.testing.assert_allclose(part, whole[np.searchsorted(np.flatnonzero(far), rows[far[rows]])])
