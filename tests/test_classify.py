"""Physics of the labels: ideal crystals keep their labels, and labels do not depend on
how the same configuration is expressed (rotation, translation, replication, cell)."""

from pathlib import Path

import numpy as np
import pytest

from icemon import Frame
from icemon.geometry.frame import minimum_image
from icemon.lattices.references import reference
from icemon.phases import SEVEN_ICES

from .conftest import gcicenet_frame, random_rotation, shipped_phases


def _unwrap_noise(x, x0, cell):
    d = minimum_image(x - x0, cell)
    return d - d.mean(axis=0)


@pytest.mark.parametrize("phase", [p for p in shipped_phases() if p not in ("liquid", "unknown")])
def test_ideal_references_classify_100_percent(pipeline, phase):
    """Every reference ice of the shipped model, ideal: its own name on every atom, well
    inside its unit (ice V, which the network was never trained on and moves 0.12 Å off
    its lattice in the two passes, at 0.46 of it)."""
    code = pipeline.model.phases.index(phase)
    a = reference(phase, 12.0)
    res = pipeline.process(Frame(a.positions, a.cell[:]))
    assert np.all(res.labels == code), res.table()
    assert res.fractions[code] == 1.0
    assert res.scores.max() < pipeline.threshold / 2


@pytest.mark.parametrize("phase", SEVEN_ICES)
def test_noised_references_denoise_back(pipeline, phase):
    """Thermal-like noise (σ = 0.1 Å per component) is removed to RMSD < 0.05 Å from the
    model's ideal lattice (GenIce's sites, symmetrised if the model was trained so)."""
    rng = np.random.default_rng(11)
    a = reference(phase, 12.0, pipeline.model.reference_symprec)
    cell = np.asarray(a.cell[:])
    x = a.positions + rng.normal(scale=0.1, size=a.positions.shape)
    den = pipeline.denoiser(x, cell)
    rmsd_before = np.sqrt((_unwrap_noise(x, a.positions, cell) ** 2).sum(1).mean())
    rmsd_after = np.sqrt((_unwrap_noise(den.positions, a.positions, cell) ** 2).sum(1).mean())
    assert rmsd_before > 0.15
    assert rmsd_after < 0.05, f"{phase}: RMSD {rmsd_before:.3f} -> {rmsd_after:.3f} Å"


@pytest.fixture(scope="module", params=["3", "w", "slab"])
def md_frame(request, gcicenet):
    """A real TIP4P/Ice frame: ice III (hardest ice), liquid (mixed labels), and an ice Ih |
    liquid interface (real Ih beside real liquid: the labels that change across a
    front must not depend on how the frame is expressed either)."""
    if request.param == "slab":
        import sys

        sys.path.insert(0, str(Path(__file__).parent / "scripts"))
        from golden_frames import slab

        return slab(gcicenet)
    return gcicenet_frame(gcicenet, request.param)


@pytest.fixture(scope="module")
def md_result(pipeline, md_frame):
    return pipeline.process(md_frame)


def _same_labels(a, b, scores_a, scores_b):
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(scores_a, scores_b, atol=2e-3)


def test_rotation_invariance(pipeline, md_frame, md_result):
    rot = random_rotation(np.random.default_rng(5))
    res = pipeline.process(Frame(md_frame.positions @ rot.T, md_frame.cell @ rot.T))
    _same_labels(res.labels, md_result.labels, res.scores, md_result.scores)


def test_translation_invariance(pipeline, md_frame, md_result):
    res = pipeline.process(Frame(md_frame.positions + [7.3, -2.1, 100.4], md_frame.cell))
    _same_labels(res.labels, md_result.labels, res.scores, md_result.scores)


def test_replication_invariance(pipeline, md_frame, md_result):
    cell = md_frame.cell
    pos = np.concatenate([md_frame.positions, md_frame.positions + cell[1]])
    res = pipeline.process(Frame(pos, cell * np.array([[1.0], [2.0], [1.0]])))
    n = md_frame.n_atoms
    _same_labels(res.labels[:n], md_result.labels, res.scores[:n], md_result.scores)
    _same_labels(res.labels[n:], md_result.labels, res.scores[n:], md_result.scores)


def test_triclinic_reexpression_invariance(pipeline, md_frame, md_result):
    """The same periodic lattice written with a sheared (triclinic) cell."""
    m = np.array([[1, 0, 0], [1, 1, 0], [-1, 2, 1]])  # unimodular: same lattice
    cell = m @ md_frame.cell
    assert abs(cell[1, 0]) > 1 and abs(cell[2, 1]) > 1  # genuinely triclinic
    res = pipeline.process(Frame(md_frame.positions, cell))
    _same_labels(res.labels, md_result.labels, res.scores, md_result.scores)


def test_md_frame_labels_are_sensible(request, md_result):
    """Keyed on the known phase of the file, never on the prediction."""
    tag = request.node.callspec.params["md_frame"]
    if tag == "w":
        assert md_result.fractions[md_result.phases.index("liquid")] > 0.95
    elif tag == "slab":  # Ih in the lower half of the box, liquid in the upper
        frame, names = md_result.frame, np.array(md_result.phases)[md_result.labels]
        z = (frame.positions @ np.linalg.inv(frame.cell))[:, 2] % 1.0 * frame.cell[2, 2]
        half = 0.5 * frame.cell[2, 2]
        deep_ice = (z > 6.0) & (z < half - 6.0)
        assert (names[deep_ice] == "Ih").mean() > 0.95
        assert (names[z > half] == "liquid").mean() > 0.95
    else:
        assert md_result.fractions[SEVEN_ICES.index("III")] > 0.99


def test_left_handed_cell_same_labels(pipeline, md_frame, md_result):
    """The same lattice written with a left-handed cell (two rows swapped)."""
    cell = md_frame.cell[[1, 0, 2]]
    assert np.linalg.det(cell) < 0
    res = pipeline.process(Frame(md_frame.positions, cell))
    _same_labels(res.labels, md_result.labels, res.scores, md_result.scores)


def test_shell_average_of_descriptors():
    """Averages over the atom and its neighbours within the radius, rows or scalars."""
    from icemon.classification.reference import shell_average

    cell = np.eye(3) * 9.0
    pos = np.array([[0.0, 0, 0], [2.5, 0, 0], [6.0, 0, 0]])  # 0–1 at 2.5 Å, 1–2 at 3.5, 2–0 at 3
    vals = np.array([[1.0, 0], [2.0, 0], [6.0, 3]])
    out = shell_average(vals, pos, cell, 3.2)
    np.testing.assert_allclose(out, [[3.0, 1], [1.5, 0], [3.5, 1.5]])
    np.testing.assert_allclose(shell_average(vals[:, 0], pos, cell, 3.2), out[:, 0])
    np.testing.assert_array_equal(shell_average(vals, pos, cell, 0.0), vals)
    # only some rows, in the order asked (an MPI rank's own atoms)
    np.testing.assert_allclose(shell_average(vals, pos, cell, 3.2, rows=np.array([2, 0])),
                               out[[2, 0]])
    np.testing.assert_array_equal(shell_average(vals, pos, cell, 0.0, rows=np.array([1])),
                                  vals[[1]])


def test_assess_is_the_average_then_nearest_reference(pipeline, md_frame):
    """``assess`` (one standardisation shared by the per-atom and the averaged scores)
    gives what averaging the raw descriptors and searching twice gives, and a subset of
    rows (an MPI rank's own atoms) gets exactly its rows of the whole-frame answer."""
    clf = pipeline.classifier.reference
    den = pipeline.denoiser(md_frame.positions, md_frame.cell)
    feats = pipeline.soap(den.positions, md_frame.cell)
    a = clf.assess(feats, den.positions, md_frame.cell)
    avg = clf.averaged(feats, den.positions, md_frame.cell)
    nearest, scores = clf.nearest(avg)
    np.testing.assert_array_equal(a.nearest, nearest)
    np.testing.assert_allclose(a.scores, scores, rtol=1e-9)
    np.testing.assert_allclose(a.atom_scores, clf.nearest(feats)[1], rtol=1e-9)
    np.testing.assert_allclose(a.far_coordinates, clf.coordinates(avg[clf.far(scores)]),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.scores, a.atom_scores)  # the average is not a no-op
    rows = np.arange(3, len(feats), 7)
    part = clf.assess(feats, den.positions, md_frame.cell, rows=rows)
    np.testing.assert_array_equal(part.nearest, a.nearest[rows])
    np.testing.assert_allclose(part.scores, a.scores[rows], rtol=1e-12)
    np.testing.assert_allclose(part.atom_scores, a.atom_scores[rows], rtol=1e-12)
    far = np.flatnonzero(clf.far(a.scores))
    mine = np.searchsorted(far, rows[clf.far(a.scores)[rows]])
    np.testing.assert_allclose(part.far_coordinates, a.far_coordinates[mine], rtol=1e-6)
