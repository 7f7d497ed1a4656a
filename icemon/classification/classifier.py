"""Algorithm 2 of Sun et al.: nearest reference environment in standardised, PCA-reduced
SOAP space; too far from every reference ⇒ liquid.

An atom too far from every reference is *unknown* rather than liquid when its environment
repeats elsewhere in the frame (:func:`repeat_distance`): crystalline order is
translational order, so the denoised environments of a crystal fall on a few points of
descriptor space, one per Wyckoff orbit, while every liquid environment is its own. A
lattice the model was never given (ice IV, XII, a hydrate it does not know) is ordered but
matches no reference; calling it liquid, or the nearest ice, would be a confident wrong
answer.

A lattice the model does not know may also land within the threshold of an ice it does
know (ice XII inside ice V's unit). A crystal of a phase fills every Wyckoff orbit of that
phase in proportion to its multiplicity; an impostor need not (XII, read as V, fills two
of V's four orbits and leaves the others empty). Each atom labelled with an ice is
matched, by its own (not averaged) descriptor, to the nearest *site* of that ice (a
distinct environment of its ideal lattice), and when an orbit of a frame's ice holds
much less than its share of the atoms so labelled (:attr:`PhaseClassifier.orbit_floor`,
derived from synthetic ice), every atom of that ice in the frame becomes ``unknown``.

Two more regional rules: the repeat distance that tells `unknown` from liquid is
averaged over the far atoms around each one (:attr:`PhaseClassifier.repeat_shell`), and
ices that synthetic ice reads as one another (the sI, sII and sH clathrates) are told
apart by a vote over 7 Å (:attr:`PhaseClassifier.family`), after which the coordination
sequences of the hydrogen-bond network say whether the region is that clathrate's
framework or another one built of the same cages (:attr:`PhaseClassifier.topology_sequences`,
:mod:`icemon.classification.topology`). All thresholds come from synthetic data
(:mod:`icemon.training.calibrate`) or from the ideal lattices.

Everything here is fitted on reference atoms only. The per-atom *score* is the
Euclidean distance (in standardised SOAP units) to the nearest reference environment;
it is computed exactly as the distance inside the PCA subspace plus the part of the
atom's descriptor that lies outside it, so PCA speeds the search up without hiding
environments that the references do not span.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from icemon.classification.topology import TOPOLOGY_DEPTH, TOPOLOGY_MAJORITY
from icemon.phases import LIQUID

REPEAT_K = 4
"""Copies of an environment (other atoms) that make it a repeated, crystalline one: small,
so that a crystallite of a few unit cells already counts, and so that a frame of a few
hundred oxygens holds that many copies of every Wyckoff orbit of the known lattices
(sII's smallest orbit is 8 of 136 molecules per cell, sH's 2 of 34). Measured against
k = 1 and 2 (session 20, each k with its own threshold from the same synthetic ice): a
smaller k leaves fewer atoms of a low-symmetry unknown lattice liquid (delta, four
copies of each of 80 sites in a 320-O frame: 14.0 / 11.0 / 6.3 % at k = 4 / 2 / 1), but
a liquid frame written twice (two cells, the same atoms) is then periodic to within k
copies and reads `unknown` (k = 1: 100 %), so k stays 4: a liquid box replicated fewer
than five times reads liquid."""

REPEAT_SAMPLE = 2048
"""At most this many candidate atoms (a fixed, evenly strided subset) serve as the
environments a candidate is compared with, so that the check costs O(N) on big frames;
an orbit of ≥ 1 % of the candidates still has ≥ 20 copies among them."""

ORBIT_CHANCE = 1e-3
"""An orbit of a frame's ice is judged only when so many of its atoms are expected there
(its share × the atoms labelled with that ice) that independent atoms would leave it
below the floor less often than this (Poisson): 9.5 expected atoms for a floor of 0.2,
16.5 for 0.35, 30 for 0.5. A crystal's orbits fluctuate far less than independent atoms,
so genuine small crystallites are not judged by chance emptiness."""


@functools.lru_cache(maxsize=256)
def orbit_min_expected(floor: float, chance: float = ORBIT_CHANCE) -> float:
    """Fewest expected atoms on an orbit for it to be judged at ``floor``
    (:data:`ORBIT_CHANCE`); infinite for a floor of 0 (nothing judged)."""
    from scipy.stats import poisson

    if floor <= 0:
        return float("inf")
    for lam in np.arange(1.0, 1000.0, 0.5):
        if poisson.cdf(np.ceil(floor * lam) - 1, lam) < chance:
            return float(lam)
    return float("inf")


@dataclass
class Assessment:
    """What :meth:`PhaseClassifier.assess` finds for some atoms of a frame."""

    nearest: np.ndarray
    """(n,) phase code of the reference nearest to each atom's (averaged) descriptor."""
    scores: np.ndarray
    """(n,) its distance, the decision score (standardised SOAP units)."""
    atom_scores: np.ndarray
    """(n,) the same distance for the atom's own, not averaged, descriptor."""
    coordinates: np.ndarray | None
    """(n_far, k + 1) float32 :meth:`PhaseClassifier.coordinates` of the atoms with
    ``scores`` above the threshold, in order; None when the model has no ``unknown``
    label (nothing compares them then)."""
    orbits: np.ndarray | None = None
    """(n,) orbit of the nearest ice's site nearest to each atom's own descriptor
    (:meth:`PhaseClassifier.orbits`); None when the model has no sites."""
    pairs: tuple[np.ndarray, np.ndarray] | None = None
    """:func:`shell_pairs` of the assessed atoms (None without a shell): the averaged
    repeat distance reuses them (:func:`far_pair_average`)."""


@dataclass
class PhaseClassifier:
    """A fitted nearest-reference classifier (all arrays are stored in the model file)."""

    mean: np.ndarray  # (D,) scaler mean
    scale: np.ndarray  # (D,) scaler std (floored)
    components: np.ndarray  # (k, D) PCA axes of the standardised references
    pca_mean: np.ndarray  # (D,)
    ref_features: np.ndarray  # (M, k) unique reference environments
    ref_labels: np.ndarray  # (M,) phase code of each
    threshold: float = float("inf")
    """Score above which an atom is liquid (set by :mod:`icemon.training.calibrate`)."""
    liquid: int = LIQUID
    """Label of atoms whose score is above the threshold: the code of ``liquid`` in the
    model's vocabulary (the number of reference phases)."""
    shell: float = 0.0
    """Radius (Å) over which each atom's SOAP descriptor is averaged with its neighbours'
    before the nearest-reference search, for the references too (0 = per-atom
    descriptors); see :func:`shell_average`."""
    unknown: int = -1
    """Label of ordered environments that match no reference (-1: the model has no such
    label and every atom above the threshold is liquid)."""
    repeat_threshold: float = float("inf")
    """Largest :func:`repeat_distance` (standardised SOAP units) of an environment that
    repeats, i.e. of an ordered one (set by :mod:`icemon.training.calibrate` from
    synthetic ice)."""
    repeat_k: int = REPEAT_K
    """How many other atoms must share an environment for it to count as repeated."""
    phase_scale: np.ndarray | None = None
    """(n_phases,) or None. When set, an atom's score is its distance divided by the
    entry of its nearest phase: each ice's own spread (the quantile of its synthetic,
    noised and strained samples, :mod:`icemon.training.calibrate`'s ``phase_quantile``
    rule) is the unit, and the threshold is 1. Ices differ in how far strain and noise
    move their descriptors (a strained ice VII moves ~1.7× as far as ice II), so one
    pooled distance is too loose near the stiff ones and too tight near the soft ones.
    None: scores are plain distances (standardised SOAP units)."""
    site_features: np.ndarray | None = None
    """(S, k) PCA coordinates of the distinct per-atom (not averaged) environments of the
    ideal references, at each reference scale: the *sites* (None: no orbit check)."""
    site_phase: np.ndarray | None = None
    """(S,) phase code of each site."""
    site_orbit: np.ndarray | None = None
    """(S,) orbit of each site: its distinct environment at the reference density, one per
    Wyckoff orbit as SOAP sees it (numbered over all phases)."""
    orbit_phase: np.ndarray | None = None
    """(O,) phase code of each orbit."""
    orbit_fraction: np.ndarray | None = None
    """(O,) share of its phase's atoms on each orbit (multiplicity / Z)."""
    orbit_floor: np.ndarray | None = None
    """(n_phases,) smallest population of an orbit, as a fraction of its share, for a
    frame's atoms of that ice to stay that ice (else ``unknown``); 0 = not checked
    (phases of one orbit, or whose orbits synthetic noise already mixes). Derived by
    :mod:`icemon.training.calibrate` from synthetic ice."""
    repeat_shell: float = 0.0
    """Radius (Å) over which each far atom's :func:`repeat_distance` is averaged with
    those of the far atoms around it before the comparison with
    :attr:`repeat_threshold` (0 = each atom on its own). Like the averaged score, the
    average is the region's repeat distance: an unknown crystal that the network leaves
    less ordered than the known ices (ice IV) has a tail of single atoms beyond the
    threshold (1 % in IV), its regional averages none; liquid averages stay ≥ 2× above
    it. The threshold stays the single-atom quantile of synthetic ice, an upper bound
    for a crystal's averages."""
    family: np.ndarray | None = None
    """(n_phases,) family of each phase (-1: none). Ices that the calibration's synthetic
    ice reads as one another (sI, sII and sH: strained clathrates of the same cages) form
    a family, and an atom labelled with a member takes the label most common among the
    family's and the ``unknown`` atoms within :attr:`family_radius` (:meth:`vote`):
    which clathrate a crystal is shows in the packing of its cages, several Å wide, not
    in one molecule's surroundings. Ices outside families (Ih and Ic among them, so that
    stacking faults stay resolved) are never voted on. None: no vote."""
    family_radius: float = 0.0
    """Å, radius of the family vote."""
    topology_sequences: np.ndarray | None = None
    """(T, depth) int64 coordination sequences (:mod:`icemon.classification.topology`) of the sites
    of the family members' ideal lattices, one row per distinct sequence (None: no
    topology check). The vote names the clathrate whose surroundings a region has; the
    sequences say whether the region's network is that clathrate's framework at all or
    another one built of the same cages (TS1, HS1): a frame's atoms of a member whose
    judged atoms mostly have none of its sequences become ``unknown``, those whose
    judged atoms mostly have another member's sequences take its name
    (:meth:`topology_labels`)."""
    topology_phase: np.ndarray | None = None
    """(T,) phase code of each row of :attr:`topology_sequences`."""
    topology_cutoff: float = 0.0
    """Å, O–O distance below which two oxygens are bonded in the network whose
    sequences are counted (:func:`~icemon.classification.topology.bond_cutoff`)."""

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, n_components: int = 30,
            scale_floor: float = 1e-2, metric_rows: np.ndarray | None = None) -> PhaseClassifier:
        """Fit scaler + PCA on reference-atom descriptors ``features`` (n, D) with phase
        ``labels``; the scaler's std is floored at ``scale_floor`` × its median so that
        descriptor components that barely vary among references are not blown up.
        ``metric_rows`` (bool (n,)): fit scaler and PCA on these rows only (the metric),
        keep every row as a reference environment."""
        from sklearn.decomposition import PCA
        from sklearn.preprocessing import StandardScaler

        base = features if metric_rows is None else features[metric_rows]
        scaler = StandardScaler().fit(base)
        scale = np.maximum(scaler.scale_, scale_floor * np.median(scaler.scale_))
        z = (base - scaler.mean_) / scale
        k = int(min(n_components, z.shape[0], z.shape[1]))
        pca = PCA(n_components=k, svd_solver="full").fit(z)
        keep = pca.explained_variance_ > 1e-12 * pca.explained_variance_[0]
        clf = cls(scaler.mean_, scale, pca.components_[keep], pca.mean_, np.zeros((0, 1)),
                  np.zeros(0, dtype=np.int64))
        y = clf.project(features)[0]
        # keep one row per distinct environment (supercells repeat each site many times)
        key = np.round(y, 6)
        _, first = np.unique(np.column_stack([key, labels]), axis=0, return_index=True)
        clf.ref_features = y[np.sort(first)]
        clf.ref_labels = np.asarray(labels)[np.sort(first)].astype(np.int64)
        return clf

    def fit_sites(self, features: np.ndarray, labels: np.ndarray, orbits: np.ndarray) -> None:
        """Store the sites: per-atom (not averaged) descriptors ``features`` (n, D) of
        reference atoms with phase ``labels`` and orbit ``orbits`` (numbered over all
        phases; every orbit's rows are the same environment, up to the density of the
        reference they came from); one row is kept per distinct environment."""
        y = self.project(features)[0]
        labels, orbits = np.asarray(labels, dtype=np.int64), np.asarray(orbits, dtype=np.int64)
        _, first = np.unique(np.column_stack([np.round(y, 6), orbits]), axis=0,
                             return_index=True)
        first = np.sort(first)
        self.site_features, self.site_phase = y[first], labels[first]
        self.site_orbit = orbits[first]
        n_orbits = int(orbits.max()) + 1
        self.orbit_phase = np.zeros(n_orbits, dtype=np.int64)
        self.orbit_phase[orbits] = labels
        count = np.bincount(orbits, minlength=n_orbits).astype(np.float64)
        self.orbit_fraction = count / np.bincount(labels, minlength=self.liquid)[self.orbit_phase]
        if self.orbit_floor is None:
            self.orbit_floor = np.zeros(self.liquid)

    def merge_orbits(self, group: np.ndarray) -> None:
        """Make orbits one: ``group`` (O,) gives each orbit its new number (0…G−1, orbits
        of one phase only); shares add up."""
        assert self.site_orbit is not None and self.orbit_phase is not None \
            and self.orbit_fraction is not None
        group = np.asarray(group, dtype=np.int64)
        n = int(group.max()) + 1
        phase = np.zeros(n, dtype=np.int64)
        phase[group] = self.orbit_phase
        if np.any(phase[group] != self.orbit_phase):
            raise ValueError("orbits of different phases cannot be merged")
        self.site_orbit = group[self.site_orbit]
        self.orbit_fraction = np.bincount(group, weights=self.orbit_fraction, minlength=n)
        self.orbit_phase = phase

    def orbits(self, features: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """(n,) int64 orbit of each atom: that of the site of phase ``nearest`` closest to
        the atom's own (not averaged) descriptor ``features`` (n, D)."""
        return self._orbits(self.project(features)[0], nearest)

    def _orbits(self, y: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """:meth:`orbits` of points given by their PCA coordinates."""
        assert self.site_features is not None and self.site_phase is not None
        sites, phase = self.site_features, self.site_phase
        out = np.empty(len(y), dtype=np.int64)
        s2 = (sites * sites).sum(1)[None, :]
        chunk = 1 << 15
        for lo in range(0, len(y), chunk):
            q, code = y[lo:lo + chunk], np.asarray(nearest[lo:lo + chunk])
            d2 = (q * q).sum(1)[:, None] - 2.0 * q @ sites.T + s2
            d2[phase[None, :] != code[:, None]] = np.inf
            out[lo:lo + chunk] = self.site_orbit[np.argmin(d2, axis=1)]
        return out

    def orbit_ratios(self, labels: np.ndarray, orbits: np.ndarray,
                     min_expected: float | None = None) -> dict[int, tuple[float, int]]:
        """{phase code: (smallest population / expected population over the phase's
        orbits that expect enough atoms to be judged (:func:`orbit_min_expected` of the
        phase's floor), atoms counted)} for every checked ice of a frame (a phase with >1
        orbit, a floor and enough atoms); 1 means every orbit holds its share. The atoms
        counted are those labelled with the ice and matched to its sites: one the family
        vote relabelled keeps the orbit of its own nearest ice and is left out.
        ``min_expected``: judge every orbit expecting at least this many atoms instead,
        floor or none (the calibration measures the floors this way)."""
        if self.orbit_phase is None or self.orbit_fraction is None or \
                (self.orbit_floor is None and min_expected is None):
            return {}
        out: dict[int, tuple[float, int]] = {}
        labels = np.asarray(labels)
        for code in np.unique(labels):
            mine = np.flatnonzero(self.orbit_phase == code)
            if code < 0 or code >= self.liquid or len(mine) < 2:
                continue
            # the atoms matched to this ice's sites (not those the family vote moved here)
            matched = (labels == code) & (self.orbit_phase[orbits] == code)
            n = int(matched.sum())
            expected = n * self.orbit_fraction[mine]
            least = (orbit_min_expected(float(self.orbit_floor[code])) if min_expected is None
                     else min_expected)
            checked = expected >= least
            if not checked.any():
                continue
            count = np.bincount(orbits[matched], minlength=len(self.orbit_phase))[mine]
            out[int(code)] = (float((count[checked] / expected[checked]).min()), n)
        return out

    def project(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(PCA coordinates (n, k), squared norm of the out-of-subspace residual (n,))."""
        z = self._standardise(features)
        y = z @ self.components.T
        return y, self._residual2(z, y)

    def _standardise(self, features: np.ndarray) -> np.ndarray:
        """Descriptors scaled as the references were, centred on their PCA mean."""
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale - self.pca_mean

    def nearest(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(phase code of the nearest reference environment, score = its distance)."""
        return self._nearest(*self.project(features))

    def _nearest(self, y: np.ndarray, resid2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`nearest` of points given by their PCA coordinates and residuals."""
        d2 = ((y * y).sum(1)[:, None] - 2.0 * y @ self.ref_features.T
              + (self.ref_features**2).sum(1)[None, :])
        best = np.argmin(d2, axis=1)
        score = np.sqrt(np.maximum(d2[np.arange(len(y)), best], 0.0) + resid2)
        code = self.ref_labels[best]
        if self.phase_scale is not None:
            score = score / self.phase_scale[code]
        return code, score

    def assess(self, features: np.ndarray, positions: np.ndarray, cell: np.ndarray,
               rows: np.ndarray | None = None) -> Assessment:
        """Everything a frame's labels need, for the atoms ``rows`` (default all) of a
        structure whose every atom has a descriptor (``features`` (N, D), ``positions``
        (N, 3) Å, ``cell`` Å): the nearest reference and score of each atom's
        :attr:`shell`-averaged descriptor, the score of its own descriptor, and the
        :meth:`coordinates` of the atoms too far from every reference.

        The descriptors are standardised and projected once: the average of the
        standardised vectors is the standardisation of the average, so the per-atom and
        the averaged scores share that work. An MPI rank passes its own atoms plus a halo
        of :attr:`shell` and selects its own as ``rows``."""
        z_all = self._standardise(features)
        sel = slice(None) if rows is None else rows
        z = z_all[sel]
        y = z @ self.components.T
        resid2 = self._residual2(z, y)
        nearest, atom_scores = self._nearest(y, resid2)
        scores, y_own, pairs = atom_scores, y, None
        if self.shell > 0:
            pairs = shell_pairs(positions, cell, self.shell, rows)
            z = shell_average(z_all, positions, cell, self.shell, rows, pairs)
            y = z @ self.components.T
            resid2 = self._residual2(z, y)
            nearest, scores = self._nearest(y, resid2)
        far = self.far(scores)
        coords = self._coordinates(y[far], resid2[far]) if self.unknown >= 0 else None
        orbits = None if self.site_features is None else self._orbits(y_own, nearest)
        return Assessment(nearest, scores, atom_scores, coords, orbits, pairs)

    @staticmethod
    def _residual2(z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Squared norm of the part of standardised ``z`` outside the PCA subspace."""
        return np.maximum((z * z).sum(axis=1) - (y * y).sum(axis=1), 0.0)

    def coordinates(self, features: np.ndarray) -> np.ndarray:
        """(n, k + 1) float32 point of each descriptor in standardised SOAP space: its PCA
        coordinates and the length of its out-of-subspace residual (what
        :func:`repeat_distance` compares)."""
        return self._coordinates(*self.project(features))

    @staticmethod
    def _coordinates(y: np.ndarray, resid2: np.ndarray) -> np.ndarray:
        """:meth:`coordinates` of points given by their PCA coordinates and residuals."""
        return np.column_stack([y, np.sqrt(resid2)]).astype(np.float32)

    def far(self, scores: np.ndarray) -> np.ndarray:
        """(N,) bool: the atoms too far from every reference (liquid or unknown)."""
        return scores > self.threshold

    def label(self, nearest: np.ndarray, scores: np.ndarray,
              far_coordinates: np.ndarray | None = None,
              far_distances: np.ndarray | None = None,
              orbits: np.ndarray | None = None, positions: np.ndarray | None = None,
              cell: np.ndarray | None = None,
              pairs: tuple[np.ndarray, np.ndarray] | None = None,
              replicas: np.ndarray | None = None) -> np.ndarray:
        """int8 labels of a whole frame: the nearest reference phase; where score >
        threshold, ``unknown`` if the environment repeats among the other atoms above the
        threshold, else ``liquid``; the family vote among confusable ices (:meth:`vote`);
        and ``unknown`` for every atom of an ice whose orbits the frame's atoms of that
        ice do not fill (:meth:`orbit_ratios` below :attr:`orbit_floor`).

        ``far_coordinates``: the :meth:`coordinates` of just the :meth:`far` atoms, in
        order (None, or a model without the label: every far atom is liquid);
        ``far_distances``: their :func:`repeat_distance` if already computed (MPI ranks
        compute it for their own far atoms, and average it over :attr:`repeat_shell`);
        ``orbits``: each atom's :meth:`orbits` (None: no orbit check); ``positions`` (N,
        3) and ``cell`` (Å): the denoised frame, for averaging the computed repeat
        distances over :attr:`repeat_shell` and for the vote (None: neither); ``pairs``:
        the frame's :attr:`Assessment.pairs`, reused for that average when its radius is
        the shell's. The vote and the topology check need ``positions``. ``replicas``
        (N,): :func:`~icemon.geometry.replicas.replica_groups` of a frame written as copies of
        one box (None: it is not)."""
        far = self.far(scores)
        labels = np.where(far, self.liquid, nearest).astype(np.int8)
        if self.unknown < 0:
            return labels
        if far_coordinates is not None and far.any():
            if far_distances is None:
                d = repeat_distance(far_coordinates, self.repeat_k,
                                    groups=None if replicas is None else replicas[far])
                if self.repeat_shell > 0 and pairs is not None and \
                        self.repeat_shell == self.shell:
                    every = np.zeros(len(far))
                    every[far] = d
                    d = far_pair_average(every, far, pairs)
                elif self.repeat_shell > 0 and positions is not None:
                    d = far_average(d, positions[far], cell, self.repeat_shell)
            else:
                d = far_distances
            labels[np.flatnonzero(far)[d <= self.repeat_threshold]] = self.unknown
        if positions is not None and self.family is not None and self.family_radius > 0:
            labels = self.vote(labels, positions, cell)  # first which clathrate, then
        if positions is not None and self.topology_sequences is not None:  # its framework
            labels = self.topology_labels(labels, positions, cell)
        if orbits is not None and self.orbit_floor is not None:  # whether it is one
            for code, (ratio, _) in self.orbit_ratios(labels, orbits).items():
                if ratio < self.orbit_floor[code]:
                    labels[labels == code] = self.unknown
        return labels

    def fit_topology(self, lattices: dict[int, tuple[np.ndarray, np.ndarray]],
                     depth: int = TOPOLOGY_DEPTH) -> None:
        """Store the coordination sequences (``depth`` bonds) of the sites of ideal
        ``lattices`` ({phase code: (positions, cell) Å}) and their bond cutoff."""
        from icemon.classification.topology import bond_cutoff, coordination_sequences

        self.topology_cutoff = bond_cutoff(list(lattices.values()))
        rows, codes = [], []
        for code, (pos, cell) in lattices.items():
            seq = np.unique(coordination_sequences(pos, cell, self.topology_cutoff, depth)[0],
                            axis=0)
            rows.append(seq)
            codes.append(np.full(len(seq), code, dtype=np.int64))
        self.topology_sequences = np.concatenate(rows)
        self.topology_phase = np.concatenate(codes)

    def topology_fits(self, labels: np.ndarray, positions: np.ndarray, cell: np.ndarray
                      ) -> dict[int, tuple[np.ndarray, int]]:
        """{phase code: (shares (n_phases,), atoms judged)} for every ice of
        :attr:`topology_sequences` with judged atoms in a frame (``labels`` of every atom,
        denoised ``positions`` (N, 3) and ``cell``, Å): entry q of the shares is the share
        of the judged atoms whose coordination sequence is one of phase q's lattice (0
        for phases without sequences; a sequence two lattices share counts for both). Up to
        :data:`~icemon.classification.topology.TOPOLOGY_SAMPLE` atoms of each ice (evenly strided:
        every MPI rank picks the same) are looked at; one is judged when it and every
        atom fewer than the depth bonds away are labelled with a member of its family and
        have four bonds (interfaces, other structures and the surroundings of a vacancy
        or a broken bond are not judged)."""
        from icemon.classification.topology import TOPOLOGY_SAMPLE, coordination_sequences

        assert self.topology_sequences is not None and self.topology_phase is not None
        depth = self.topology_sequences.shape[1]
        checked = np.unique(self.topology_phase)
        present = [int(c) for c in checked if (labels == c).any()]
        if not present:
            return {}
        centres, owner = [], []
        for code in present:
            atoms = np.flatnonzero(labels == code)
            centres.append(atoms[::max(1, -(-len(atoms) // TOPOLOGY_SAMPLE))])
            owner.append(np.full(len(centres[-1]), code))
        centre, code_of = np.concatenate(centres), np.concatenate(owner)
        family = self.family if self.family is not None else np.arange(self.liquid)
        out: dict[int, tuple[np.ndarray, int]] = {}
        # one search per family: the members' atoms are the structure being judged
        for fam in np.unique(family[code_of]):
            mine = family[code_of] == fam
            inside = np.isin(labels, np.intersect1d(np.flatnonzero(family == fam), checked))
            seq, judged = coordination_sequences(positions, cell, self.topology_cutoff, depth,
                                                 centre[mine], inside, valence=4)
            # (atom, phase): whether the atom's sequence is one of that phase's lattice
            same = (seq[:, None, :] == self.topology_sequences[None]).all(-1)
            fits = np.zeros((len(seq), self.liquid), dtype=bool)
            for q in checked:
                fits[:, q] = same[:, self.topology_phase == q].any(1)
            for code in np.unique(code_of[mine]):
                own = (code_of[mine] == code) & judged
                if own.any():
                    out[int(code)] = (fits[own].mean(0), int(own.sum()))
        return out

    def topology_labels(self, labels: np.ndarray, positions: np.ndarray, cell: np.ndarray
                        ) -> np.ndarray:
        """``labels`` after the topology check (:meth:`topology_fits`): a frame's atoms of
        a checked ice keep it when at least half of its judged atoms have sequences of its
        lattice, take another member's label when more than half have that member's, and
        become ``unknown`` otherwise (a framework the model does not know). Decided for
        every ice on the same labels, then applied."""
        new = np.array(labels, copy=True)
        for code, (shares, _) in self.topology_fits(labels, positions, cell).items():
            if shares[code] >= 1.0 - TOPOLOGY_MAJORITY:
                continue
            other = int(np.argmax(shares))
            new[labels == code] = other if shares[other] > TOPOLOGY_MAJORITY else self.unknown
        return new

    def voted_nearest(self, nearest: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``nearest`` with the family vote's answer where ``labels`` (of a whole frame,
        from :meth:`label`) names a member of a family: the nearest reference phase as
        the classifier finally reads it (unchanged for models without families)."""
        if self.family is None:
            return nearest
        voted = (labels >= 0) & (labels < self.liquid)
        voted[voted] = self.family[labels[voted]] >= 0
        return np.where(voted, labels, nearest).astype(nearest.dtype)

    def vote(self, labels: np.ndarray, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """``labels`` after the family vote (:attr:`family`): each atom of a family's
        member takes the label most common among the family's atoms and the ``unknown``
        ones within :attr:`family_radius` Å of it (``positions`` (N, 3), ``cell`` Å; ties
        go to the lower code); ``unknown`` atoms keep their label."""
        assert self.family is not None
        labels = np.array(labels, copy=True)
        for fam in np.unique(self.family[self.family >= 0]):
            members = np.flatnonzero(self.family == fam)
            # `unknown` stands too: a few atoms read as a member inside an ordered
            # structure the model does not know (A15 read 4 % sH) are part of it
            voters = members if self.unknown < 0 else np.append(members, self.unknown)
            atoms = np.flatnonzero(np.isin(labels, voters))
            mine = np.isin(labels[atoms], members)
            if len(np.unique(labels[atoms])) < 2 or not mine.any():
                continue
            # votes per (atom, voter): its own and its neighbours' labels, counted
            vote = np.searchsorted(voters, labels[atoms])  # voters are sorted
            i, j = shell_pairs(positions[atoms], cell, self.family_radius)
            n, k = len(atoms), len(voters)
            count = np.bincount(i * k + vote[j], minlength=n * k).reshape(n, k)
            count[np.arange(n), vote] += 1
            labels[atoms[mine]] = voters[np.argmax(count[mine], axis=1)]
        return labels

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels with ``liquid`` (or ``unknown``) where score > threshold, scores)."""
        y, resid2 = self.project(features)
        nearest, scores = self._nearest(y, resid2)
        far = self.far(scores)
        orbits = None if self.site_features is None else self._orbits(y, nearest)
        return self.label(nearest, scores, self._coordinates(y[far], resid2[far]),
                          orbits=orbits), scores

    def averaged(self, features: np.ndarray, positions: np.ndarray,
                 cell: np.ndarray) -> np.ndarray:
        """``features`` of a frame (positions and cell in Å) averaged over :attr:`shell`,
        as the references were."""
        return shell_average(features, positions, cell, self.shell)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "mean": self.mean, "scale": self.scale, "components": self.components,
            "pca_mean": self.pca_mean, "ref_features": self.ref_features,
            "ref_labels": self.ref_labels, "threshold": np.array(self.threshold),
            "shell": np.array(self.shell), "liquid": np.array(self.liquid),
            "unknown": np.array(self.unknown), "repeat_threshold": np.array(self.repeat_threshold),
            "repeat_k": np.array(self.repeat_k),
            **({} if self.phase_scale is None else {"phase_scale": self.phase_scale}),
            **{k: v for k in SITE_ARRAYS if (v := getattr(self, k)) is not None},
            "repeat_shell": np.array(self.repeat_shell),
            **({} if self.family is None else {"family": self.family,
                                                "family_radius": np.array(self.family_radius)}),
            **({} if self.topology_sequences is None else {
                "topology_sequences": self.topology_sequences,
                "topology_phase": self.topology_phase,
                "topology_cutoff": np.array(self.topology_cutoff)}),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> PhaseClassifier:
        return cls(a["mean"], a["scale"], a["components"], a["pca_mean"], a["ref_features"],
                   a["ref_labels"].astype(np.int64), float(a["threshold"]),
                   int(a["liquid"]) if "liquid" in a else LIQUID,
                   float(a["shell"]) if "shell" in a else 0.0,
                   int(a["unknown"]) if "unknown" in a else -1,
                   float(a["repeat_threshold"]) if "repeat_threshold" in a else float("inf"),
                   int(a["repeat_k"]) if "repeat_k" in a else REPEAT_K,
                   np.asarray(a["phase_scale"], dtype=np.float64) if "phase_scale" in a
                   else None,
                   *(np.asarray(a[k]) if k in a else None for k in SITE_ARRAYS),
                   float(a["repeat_shell"]) if "repeat_shell" in a else 0.0,
                   np.asarray(a["family"], dtype=np.int64) if "family" in a else None,
                   float(a["family_radius"]) if "family_radius" in a else 0.0,
                   *((np.asarray(a["topology_sequences"], dtype=np.int64),
                      np.asarray(a["topology_phase"], dtype=np.int64),
                      float(a["topology_cutoff"])) if "topology_sequences" in a
                     else (None, None, 0.0)))


SITE_ARRAYS = ("site_features", "site_phase", "site_orbit", "orbit_phase", "orbit_fraction",
               "orbit_floor")
"""The orbit check's arrays, in field order (absent from model files without it)."""


def repeat_distance(points: np.ndarray, k: int = REPEAT_K,
                    sample: int = REPEAT_SAMPLE, rows: np.ndarray | None = None,
                    groups: np.ndarray | None = None) -> np.ndarray:
    """(n,) distance from each of ``points`` (n, d) to its ``k``-th nearest *other* point,
    among at most ``sample`` of them (every ⌈n / sample⌉-th point: deterministic, so that
    every MPI rank and every rerun finds the same); infinite when there are not ``k``
    others. With ``rows`` (indices into ``points``), only those points' distances, in
    that order, against the same sample: MPI ranks share the far atoms this way (on an
    all-liquid 8,064-O frame the whole check is ~0.13 s). ``groups`` (n,): points of one
    group are one atom written several times (:func:`~icemon.geometry.replicas.replica_groups`)
    and are not each other's copies.

    Small in a crystal, whose environments repeat once per Wyckoff orbit, large in a
    liquid, whose environments are each their own; this is what tells an unknown lattice
    from the liquid without any reference for it. Computed in float32 chunks: O(n ×
    sample) time, O(chunk × sample) memory."""
    points = np.asarray(points, dtype=np.float32)
    n = len(points)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.full(len(rows), np.inf, dtype=np.float32)
    stride = max(1, -(-n // sample))
    db_index = np.arange(0, n, stride)
    if len(db_index) <= k:
        return out
    db = points[db_index]
    db2 = (db * db).sum(1)
    chunk = max(1, 2**22 // len(db))
    for lo in range(0, len(rows), chunk):
        at = rows[lo:lo + chunk]
        q = points[at]
        d2 = (q * q).sum(1)[:, None] - 2.0 * q @ db.T + db2[None, :]
        # an atom is not its own copy
        mine = at % stride == 0
        d2[np.flatnonzero(mine), at[mine] // stride] = np.inf
        if groups is not None:  # nor are the frame's replicas of it
            d2[groups[at][:, None] == groups[db_index][None, :]] = np.inf
        kth = np.partition(d2, k - 1, axis=1)[:, k - 1]
        out[lo:lo + chunk] = np.sqrt(np.maximum(kth, 0.0))
    return out


def far_average(distances: np.ndarray, positions: np.ndarray, cell: np.ndarray,
                radius: float, rows: np.ndarray | None = None) -> np.ndarray:
    """Repeat distances (n_far,) of the far atoms at ``positions`` (n_far, 3) Å, each
    averaged with those of the far atoms within ``radius`` Å (itself included); with
    ``rows`` (indices into the far atoms), only those atoms' averages, in that order.
    Non-finite distances (too few far atoms to repeat) are left as they are. (A frame
    being classified reuses the shell's pairs instead: :func:`far_pair_average`.)"""
    distances = np.asarray(distances, dtype=np.float64)
    if radius <= 0 or not np.isfinite(distances).all():
        return distances if rows is None else distances[rows]
    return shell_average(distances, positions, cell, radius, rows)


def far_pair_average(distance: np.ndarray, far: np.ndarray,
                     pairs: tuple[np.ndarray, np.ndarray], rows: np.ndarray | None = None
                     ) -> np.ndarray:
    """:func:`far_average` from pairs already built (:attr:`Assessment.pairs`, the
    classification's shell, whose radius is the averaging radius): ``distance`` (N,) of
    every atom of the pairs' structure (any value where not far), ``far`` (N,) bool;
    returns the averages of the far atoms among ``rows`` (default all), in order.
    Non-finite distances are left as they are."""
    want = np.arange(len(far)) if rows is None else np.asarray(rows, dtype=np.int64)
    mine = far[want]
    d = np.asarray(distance, dtype=np.float64)
    if not np.isfinite(d[far]).all():
        return d[want[mine]]
    i, j = pairs
    keep = mine[i] & far[j]
    slot = np.cumsum(mine) - 1
    return pair_mean(d[want[mine]], slot[i[keep]], d[j[keep]])


def shell_pairs(positions: np.ndarray, cell: np.ndarray, radius: float,
                rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(row, atom) of every pair of atoms within ``radius`` Å (the atom itself not
    included), centred on the atoms ``rows`` (indices; default all): the row is the
    centre's position in ``rows``, the atom the neighbour's index. Who, not where: no Å
    shifts."""
    from icemon.geometry.neighbors import neighbor_pairs

    if rows is None:
        i, j, _ = neighbor_pairs(positions, cell, radius)
        return i, j
    n = len(positions)
    want = np.asarray(rows, dtype=np.int64)
    wanted = np.zeros(n, dtype=bool)
    wanted[want] = True
    i, j, _ = neighbor_pairs(positions, cell, radius, centres=wanted)
    slot = np.full(n, -1, dtype=np.int64)
    slot[want] = np.arange(len(want))
    return slot[i], j


def pair_mean(own: np.ndarray, i: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Each of ``own`` (n,) averaged with the values ``other`` of its pair partners
    (``i``: the row of each pair): the mean over the atom and its neighbours."""
    n = len(own)
    return (own + np.bincount(i, weights=other, minlength=n)) / (1.0 + np.bincount(i, minlength=n))


def shell_average(values: np.ndarray, positions: np.ndarray, cell: np.ndarray,
                  radius: float, rows: np.ndarray | None = None,
                  pairs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Each atom's values (N,) or (N, F) averaged with those of its neighbours within
    ``radius`` Å (the atom itself included); with ``rows`` (indices), only those atoms'
    averages, in that order (an MPI rank needs its own atoms', not its halo's).
    ``pairs``: :func:`shell_pairs` of the same atoms, radius and rows, if already built.

    As Lechner and Dellago average Steinhardt parameters over neighbours, averaging SOAP
    vectors over the first and second O–O shells (≈ 4.8 Å) removes most of the
    atom-to-atom spread that thermal noise leaves after few denoising passes: an ice atom
    is surrounded by ice atoms, a liquid one by liquid ones, and the average also sees the
    third-neighbour order that tells Ih from Ic. The price is an interface blurred by
    about that radius."""
    from scipy.sparse import csr_matrix

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    want = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if radius <= 0:
        return values[want]
    i, j = shell_pairs(positions, cell, radius, rows) if pairs is None else pairs
    # (self + neighbours) as a sparse matrix: one product averages every column at once
    m = len(want)
    r = np.concatenate([np.arange(m), i])
    c = np.concatenate([want, j])
    shell = csr_matrix((np.ones(len(r)), (r, c)), shape=(m, n))
    count = np.bincount(r, minlength=m).astype(np.float64)
    total = shell @ values
    return total / (count if values.ndim == 1 else count[:, None])
