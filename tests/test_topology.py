"""Coordination sequences of the hydrogen-bond network, and the topology check that keeps
other frameworks of the clathrates' cages (TS1, HS1) from being named sI or sII."""

import numpy as np
import pytest

from icemon.classification.topology import bond_cutoff, coordination_sequences
from icemon.lattices.references import reference, unit_cell

# closed forms of the two carbon nets (diamond = Ic, lonsdaleite = Ih), OEIS A005246/A008253
DIAMOND = [4, 12, 24, 42, 64, 92, 124, 162]
LONSDALEITE = [4, 12, 25, 44, 67, 96, 130, 170]


def _lattice(phase: str, height: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    a = reference(phase, height) if height else unit_cell(phase)
    return a.positions, np.asarray(a.cell[:])


@pytest.mark.parametrize("phase, expected", [("Ic", DIAMOND), ("Ih", LONSDALEITE)])
def test_ice_networks_have_the_carbon_nets_sequences(phase, expected):
    pos, cell = _lattice(phase)
    seq, judged = coordination_sequences(pos, cell, bond_cutoff([(pos, cell)]), len(expected))
    assert judged.all()
    np.testing.assert_array_equal(seq, np.tile(expected, (len(pos), 1)))


def test_sequences_count_periodic_images_not_the_cells_atoms():
    """A unit cell of Ic has 8 atoms, yet 162 vertices lie 8 bonds away: the search runs on
    the periodic network, so a small cell gives the crystal's sequences."""
    small = _lattice("Ic")
    big = _lattice("Ic", 20.0)
    assert len(small[0]) < 10 < len(big[0])
    cut = bond_cutoff([small])
    a = coordination_sequences(*small, cut, 8)[0]
    b = coordination_sequences(*big, cut, 8)[0]
    np.testing.assert_array_equal(a[0], b[0])


def test_only_atoms_whose_ball_lies_inside_the_members_are_judged():
    """Atom x is not a member: every atom fewer than ``depth`` bonds from it (itself, 4
    neighbours, 12 second neighbours for depth 3) is not judged, the others are."""
    pos, cell = _lattice("Ic", 20.0)
    member = np.ones(len(pos), dtype=bool)
    member[0] = False
    cut = bond_cutoff([(pos, cell)])
    _, judged = coordination_sequences(pos, cell, cut, 3, member=member)
    assert (~judged).sum() == 1 + 4 + 12
    assert not judged[0]
    # centres: only those asked for, in that order
    seq, judged = coordination_sequences(pos, cell, cut, 3, np.array([5, 0]), member)
    assert seq.shape == (2, 3) and not judged[1]


def test_bond_cutoff_lies_between_the_first_and_second_shells():
    cut = bond_cutoff([_lattice("Ih"), _lattice("sI")])
    assert 2.9 < cut < 4.2
    with pytest.raises(ValueError, match="four-coordinated"):
        bond_cutoff([_lattice("VII")])  # body-centred: eight neighbours at one distance


def test_the_clathrates_sites_have_distinct_sequences(model):
    """The shipped model's family members carry their sites' sequences: three for sI (its
    three Wyckoff orbits, IZA MEP), and no sequence of sI is one of sII's."""
    check = model.classifier.check("topology")
    phases = model.phases
    seq, code = check.sequences, check.phase
    assert sorted(phases[c] for c in np.unique(code)) == ["sH", "sI", "sII"]
    si = seq[code == phases.index("sI")]
    assert len(si) == 3
    assert [4, 12, 26, 44, 64, 98] in si.tolist()
    sii = {tuple(r) for r in seq[code == phases.index("sII")]}
    assert not sii & {tuple(r) for r in si}


def test_topology_arrays_survive_the_model_file(tmp_path):
    from icemon import IcemonModel

    model = IcemonModel.load()  # its own copy: saving moves a model's path
    check = model.classifier.check("topology")
    assert check is not None
    again = IcemonModel.load(model.save(tmp_path / "m.npz")).classifier.check("topology")
    np.testing.assert_array_equal(again.sequences, check.sequences)
    np.testing.assert_array_equal(again.phase, check.phase)
    assert again.cutoff == check.cutoff


@pytest.mark.slow
@pytest.mark.parametrize("lattice, expected", [("TS1", "unknown"), ("HS1", "unknown"),
                                               ("C15", "sII")])
def test_other_frameworks_of_the_clathrate_cages_are_named_by_their_network(
        pipeline, lattice, expected):
    """TS1 and HS1 are built of sI's and sII's cages, packed otherwise: no known framework,
    `unknown`. GenIce's C15 is the sII network in another geometry (the C15 Laves phase's
    dual; GenIce cites it for sII): sII. Their surroundings are those of the known
    clathrates: the vote named them sI / sII / sI (94.5 %, 88.8 %, 100 % of a 136-O C15
    cell) until the topology check."""
    from icemon import Frame

    a = reference(lattice, 18.0)
    x = a.positions + np.random.default_rng(7).normal(0, 0.12, a.positions.shape)
    res = pipeline.process(Frame(x, a.cell[:]))
    assert res.fractions[pipeline.model.phases.index(expected)] >= 0.99, res.table()


@pytest.mark.slow
def test_a_vacancy_leaves_the_clathrate_its_name(pipeline):
    """One molecule missing from a noised 2×2×2 sI cell changes the sequences of the
    ~250 atoms within six bonds of it (periodic images: two thirds of the cell): those
    have three-bonded neighbours and are not judged, so the crystal stays sI."""
    from icemon import Frame

    a = reference("sI", 20.0)
    keep = np.arange(len(a)) != 0
    x = a.positions[keep] + np.random.default_rng(7).normal(0, 0.12, (keep.sum(), 3))
    res = pipeline.process(Frame(x, a.cell[:]))
    code = pipeline.model.phases.index("sI")
    shares, judged = pipeline.classifier.check("topology").fits(res.labels, res.denoised,
                                                                a.cell[:])[code]
    assert shares[code] == 1.0 and judged > 0
    assert res.fractions[code] == 1.0, res.table()


def _slab_beside_disorder(thickness_cells: int, seed: int = 3):
    """A noised sI slab (half of a 1×1×2n supercell of the 2×2×2 cell) whose other half is
    a random packing at the same number of oxygens, pushed apart to 2.6 Å against itself
    and the ice: (positions, cell, bool mask of the ice atoms)."""
    from icemon.geometry.neighbors import neighbor_pairs

    a = reference("sI", 24.0).repeat((1, 1, thickness_cells))
    cell = np.asarray(a.cell[:])
    rng = np.random.default_rng(seed)
    x = a.positions + rng.normal(0, 0.12, a.positions.shape)
    ice = x[(x @ np.linalg.inv(cell))[:, 2] % 1 < 0.5]
    top = rng.uniform(size=(len(x) - len(ice), 3)) * [1, 1, 0.5] + [0, 0, 0.5]
    pos = np.concatenate([ice, top @ cell])
    fixed = np.arange(len(pos)) < len(ice)
    for _ in range(300):
        i, j, s = neighbor_pairs(pos, cell, 2.6)
        if len(i) == 0:
            break
        vec = pos[j] + s @ cell - pos[i]
        r = np.linalg.norm(vec, axis=1)
        step = np.zeros_like(pos)
        np.add.at(step, i, -0.25 * ((2.6 - r) / np.maximum(r, 1e-6))[:, None] * vec)
        step[fixed] = 0.0
        pos = pos + step
    return pos, cell, fixed


@pytest.mark.slow
def test_a_clathrate_beside_disorder_is_judged_by_its_interior(pipeline):
    """A 48 Å sI slab beside a disordered one: only atoms six bonds inside the slab are
    judged (27 of them here), all have sI's sequences, and the labels are those of the
    same classifier without the check; the disordered slab stays liquid."""
    from icemon import Frame, IcemonModel, Pipeline
    from icemon.classification.classifier import PhaseClassifier

    pos, cell, ice = _slab_beside_disorder(4)
    res = pipeline.process(Frame(pos, cell))
    code = pipeline.model.phases.index("sI")
    shares, judged = pipeline.classifier.check("topology").fits(res.labels, res.denoised,
                                                                cell)[code]
    assert 0 < judged < (res.labels == code).sum() and shares[code] == 1.0
    assert np.all(res.labels[~ice] == pipeline.model.phases.index("liquid"))
    m = pipeline.model
    clf = PhaseClassifier(m.classifier.reference,
                          [c for c in m.classifier.checks if c.name != "topology"])
    without = Pipeline(IcemonModel(m.net, clf, m.soap, m.denoise_steps, m.denoise_tol, m.meta))
    assert without.classifier.check("topology") is None
    np.testing.assert_array_equal(without.process(Frame(pos, cell)).labels, res.labels)


@pytest.mark.slow
def test_thermal_clathrate_keeps_its_framework(pipeline, gcicenet):
    """Thermal sI (TIP4P/Ice, GCIceNet): every judged atom has one of sI's sequences."""
    from .conftest import gcicenet_frame

    frame = gcicenet_frame(gcicenet, "sI", 3)
    res = pipeline.process(frame)
    check = pipeline.classifier.check("topology")
    fits = check.fits(res.labels, res.denoised, frame.cell)
    code = pipeline.model.phases.index("sI")
    shares, judged = fits[code]
    assert judged >= 32 and shares[code] == 1.0 and shares.sum() == 1.0
    assert res.fractions[code] == 1.0


@pytest.mark.slow
def test_a_clathrate_region_voted_wrong_takes_the_name_its_network_has(pipeline):
    """A few atoms of an sII crystal labelled sI (as a vote can leave them: mW sII kept
    1.08 % sI) have sII's sequences: the check gives them sII's name, not `unknown`;
    labelled with a non-member (VI), nothing is checked."""
    from icemon import Frame

    a = reference("sII", 18.0)
    x = a.positions + np.random.default_rng(7).normal(0, 0.12, a.positions.shape)
    res = pipeline.process(Frame(x, a.cell[:]))
    phases, check = pipeline.model.phases, pipeline.classifier.check("topology")
    sii = phases.index("sII")
    assert np.all(res.labels == sii)
    wrong = res.labels.copy()
    wrong[:12] = phases.index("sI")
    fixed = check.labels(wrong, res.denoised, a.cell[:])
    assert np.all(fixed == sii)
    shares, judged = check.fits(wrong, res.denoised, a.cell[:])[phases.index("sI")]
    assert judged == 12 and shares[sii] == 1.0
