"""The orbit check of the ``unknown`` label: a frame's atoms of an ice become ``unknown``
when one of that ice's Wyckoff orbits holds much less than its share of them (a lattice
read as an ice it is not, like ice XII read as V, fills only some of V's orbits)."""

import numpy as np

from icemon.classification.checks import FamilyVote, OrbitCheck, RepeatCheck
from icemon.classification.checks.orbits import orbit_floors, orbit_min_expected
from icemon.classification.classifier import PhaseClassifier
from icemon.classification.reference import NearestReference


def _classifier() -> PhaseClassifier:
    """Two phases in a 4-d descriptor space: phase 0 with orbits a (1/4 of its atoms) and
    b (3/4), phase 1 with one orbit; liquid 2, unknown 3."""
    d = 4
    ref = NearestReference(np.zeros(d), np.ones(d), np.eye(d), np.zeros(d),
                           np.array([[10.0, 0, 0, 0], [0, 0, 10, 0]]), np.array([0, 1]),
                           threshold=5.0, liquid=2, unknown=3)
    sites = np.array([[10.0, 1, 0, 0], [10.0, -1, 0, 0], [0, 0, 10, 0]])
    # reference atoms: phase 0 has 1 atom on orbit 0 for every 3 on orbit 1
    feats = np.vstack([sites[[0]], sites[[1, 1, 1]], sites[[2]]])
    orbits = OrbitCheck.fit(ref, feats, np.array([0, 0, 0, 0, 1]), np.array([0, 1, 1, 1, 2]))
    orbits.floor = np.array([0.5, 0.0])
    return PhaseClassifier(ref, [RepeatCheck(threshold=0.5), orbits])


def _atoms(n_a: int, n_b: int) -> np.ndarray:
    """Descriptors of n_a atoms on orbit a and n_b on orbit b of phase 0."""
    rng = np.random.default_rng(0)
    return np.vstack([[10.0, 1, 0, 0]] * n_a + [[10.0, -1, 0, 0]] * n_b) \
        + rng.normal(0, 0.05, (n_a + n_b, 4))


def test_sites_record_orbit_shares():
    clf = _classifier()
    sites = clf.check("orbits")
    np.testing.assert_allclose(sites.orbit_fraction, [0.25, 0.75, 1.0])
    np.testing.assert_array_equal(sites.orbit_phase, [0, 0, 1])
    # every atom is matched to a site of its own nearest phase
    own = clf.reference.project(_atoms(2, 3))[0]
    np.testing.assert_array_equal(sites.orbits(own, np.zeros(5, int)), [0, 0, 1, 1, 1])


def test_an_ice_that_fills_its_orbits_stays_that_ice():
    labels, _ = _classifier().predict(_atoms(100, 300))
    assert np.all(labels == 0)


def test_an_ice_missing_an_orbit_becomes_unknown():
    labels, _ = _classifier().predict(_atoms(0, 400))
    assert np.all(labels == 3)
    # under the floor (0.5 of the share) but not empty: still unknown; above it: the ice
    assert np.all(_classifier().predict(_atoms(40, 360))[0] == 3)  # 0.4 of the share
    assert np.all(_classifier().predict(_atoms(60, 340))[0] == 0)  # 0.6


def test_too_few_atoms_are_not_checked():
    """An orbit expecting fewer atoms than independent atoms would need to fill it above
    the floor with probability 0.999 (30 for a floor of 0.5) is not judged by its
    absence; one expecting that many is."""
    least = orbit_min_expected(0.5)
    assert least == 30.0
    n = int(least / 0.25) - 4  # orbit a expects just under the minimum
    assert np.all(_classifier().predict(_atoms(0, n))[0] == 0)
    assert np.all(_classifier().predict(_atoms(0, n + 8))[0] == 3)


def test_no_check_without_the_unknown_label_or_sites():
    clf = _classifier()
    clf.reference.unknown = -1
    assert np.all(clf.predict(_atoms(0, 400))[0] == 0)
    clf = _classifier()
    clf = PhaseClassifier(clf.reference, [c for c in clf.checks if c.name != "orbits"])
    assert clf.check("orbits") is None
    assert np.all(clf.predict(_atoms(0, 400))[0] == 0)


def test_orbit_arrays_round_trip_and_old_files_have_none():
    clf = _classifier()
    back = PhaseClassifier.from_arrays(clf.to_arrays())
    for k in ("site_features", "site_phase", "site_orbit", "orbit_phase", "orbit_fraction",
              "floor"):
        np.testing.assert_array_equal(getattr(back.check("orbits"), k),
                                      getattr(clf.check("orbits"), k))
    assert {"site_features", "orbit_floor"} <= set(clf.to_arrays())
    np.testing.assert_array_equal(back.predict(_atoms(0, 400))[0], 3)
    old = {k: v for k, v in clf.to_arrays().items() if not k.startswith(("site_", "orbit_"))}
    assert PhaseClassifier.from_arrays(old).check("orbits") is None


def test_floors_are_the_margin_times_the_worst_synthetic_fill():
    """Synthetic samples of phase 0 whose worst orbit keeps 0.8 and 0.9 of its share give
    floor margin × 0.8; a one-orbit phase is not checked."""
    clf = _classifier()
    samples = []
    for keep in (0.8, 0.9):
        a = int(100 * keep)
        orbits = np.array([0] * a + [1] * (400 - a))
        samples.append((0, np.zeros(400, int), orbits))
    samples.append((1, np.ones(200, int), np.full(200, 2)))
    ratio, floor = orbit_floors(clf.check("orbits"), samples, margin=0.5)
    np.testing.assert_allclose(ratio[0], 0.8)
    np.testing.assert_allclose(floor, [0.4, 0.0])
    assert np.isnan(ratio[1])


def test_orbits_that_synthetic_ice_mixes_are_merged():
    """Phase 0's two orbits exchange 30 % of their atoms in synthetic ice: one orbit of
    share 1, and the check has nothing left to judge in phase 0."""
    from icemon.classification.checks.orbits import merged_orbits

    clf = _classifier()
    true = np.array([0] * 100 + [1] * 300)
    matched = true.copy()
    matched[:30] = 1
    samples = [(0, np.zeros(400, int), matched, true), (1, np.ones(50, int), np.full(50, 2),
                                                        np.full(50, 2))]
    group = merged_orbits(clf.check("orbits"), samples, rate=0.1)
    np.testing.assert_array_equal(group, [0, 0, 1])
    clf.check("orbits").merge(group)
    np.testing.assert_allclose(clf.check("orbits").orbit_fraction, [1.0, 1.0])
    assert np.all(clf.predict(_atoms(0, 400))[0] == 0)  # no second orbit to miss
    # 5 % exchanged: kept apart
    matched = true.copy()
    matched[:5] = 1
    np.testing.assert_array_equal(merged_orbits(_classifier().check("orbits"),
                                                [(0, np.zeros(400, int), matched, true)],
                                                rate=0.1), [0, 1, 2])


def test_families_join_the_ices_synthetic_ice_confuses():
    """sI and sII read as each other in synthetic ice, sH as sII: one family; Ih and Ic
    never: none (their stacking faults must stay resolved)."""
    from icemon.classification.checks.family import families

    # phases 0 Ih, 1 Ic, 2 sI, 3 sII, 4 sH; 1000 atoms each
    true = np.repeat(np.arange(5), 1000)
    nearest = true.copy()
    nearest[2000:2300] = 3  # sI → sII 30 %
    nearest[4000:4050] = 3  # sH → sII 5 %
    nearest[0:5] = 1  # Ih → Ic 0.5 %: below the rate
    family, confusion = families(true, nearest, 5, rate=0.01)
    np.testing.assert_array_equal(family, [-1, -1, 0, 0, 0])
    np.testing.assert_allclose(confusion[2, 3], 0.3)


REFERENCES = np.array([[0.0, 0], [10, 0], [0, 10], [10, 10], [20, 0]])
"""One reference environment per ice code 0-4 of :func:`_voting_classifier`, 2-d."""


def _voting_classifier() -> PhaseClassifier:
    """Codes 0 Ih, 1 Ic, 2 sI, 3 sII, 4 sH (one family), 5 liquid, 6 unknown; a 5 Å vote."""
    ref = NearestReference(np.zeros(2), np.ones(2), np.eye(2), np.zeros(2), REFERENCES,
                           np.arange(5), liquid=5, unknown=6)
    return PhaseClassifier(ref, [FamilyVote(np.array([-1, -1, 0, 0, 0]), 5.0)])


def _grid(nx: int) -> tuple[np.ndarray, np.ndarray]:
    """(positions, cell) of a simple cubic grid, 3 Å apart, nx × 6 × 6 atoms."""
    grid = np.stack(np.meshgrid(np.arange(nx), np.arange(6), np.arange(6), indexing="ij"),
                    -1).reshape(-1, 3) * 3.0
    return grid, np.diag([3.0 * nx, 18.0, 18.0])


def test_family_vote_takes_the_local_majority_among_members_only():
    """A slab of sI with scattered atoms read as sII becomes all sI; an sII slab beside it
    stays sII (the vote is local); Ih atoms among them are never voted on."""
    clf = _voting_classifier()
    grid, cell = _grid(20)
    labels = np.where(grid[:, 0] < 30, 2, 3)  # sI for x < 30 Å, sII beyond
    rng = np.random.default_rng(0)
    flip = rng.choice(np.flatnonzero(labels == 2), 10, replace=False)
    labels[flip] = 3
    ih = rng.choice(len(labels), 5, replace=False)
    labels[ih] = 0
    voted = clf.check("family").vote(labels, grid, cell)
    expected = np.where(grid[:, 0] < 30, 2, 3)
    expected[ih] = 0
    # atoms within the vote radius of the sI|sII boundary may go either way
    inner = np.abs(grid[:, 0] - 28.5) > 6
    inner &= np.abs(grid[:, 0] - 58.5) > 6
    inner &= grid[:, 0] > 6
    np.testing.assert_array_equal(voted[inner], expected[inner])
    assert np.all(voted[ih] == 0)
    # the classifier votes so (atoms whose descriptors are their labels' references) ...
    feats = REFERENCES[labels]
    np.testing.assert_array_equal(clf.label_frame(feats, grid, cell).labels, voted)
    # ... and without the family arrays, it does not vote
    plain = PhaseClassifier.from_arrays({k: v for k, v in clf.to_arrays().items()
                                         if not k.startswith("family")})
    assert plain.check("family") is None
    np.testing.assert_array_equal(plain.label_frame(feats, grid, cell).labels, labels)


def test_a_few_members_inside_an_unknown_structure_become_unknown():
    """Atoms read as a family member (sH) amid `unknown` ones (an ordered structure the
    model does not know) join it; the `unknown` atoms stay unknown, liquid is no voter."""
    clf = _voting_classifier()
    grid, cell = _grid(10)
    labels = np.full(len(grid), 6)
    few = np.random.default_rng(1).choice(len(grid), 15, replace=False)
    labels[few] = 4  # sH
    assert np.all(clf.check("family").vote(labels, grid, cell) == 6)
    # in a liquid instead, the same atoms stay sH (liquid does not vote)
    labels = np.full(len(grid), 5)
    labels[few] = 4
    np.testing.assert_array_equal(clf.check("family").vote(labels, grid, cell), labels)
