"""Algorithm 2 of Sun et al.: the nearest reference environment in standardised,
PCA-reduced SOAP space; too far from every reference ⇒ liquid.

Everything here is fitted on reference atoms only. The per-atom *score* is the Euclidean
distance (in standardised SOAP units) to the nearest reference environment; it is
computed exactly as the distance inside the PCA subspace plus the part of the atom's
descriptor that lies outside it, so PCA speeds the search up without hiding environments
that the references do not span. What happens to the atoms too far from every reference,
and the regional rules after that, are the checks of :mod:`icemon.classification.checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

import numpy as np

from icemon.phases import LEGACY_PHASES

if TYPE_CHECKING:
    from icemon.geometry.neighbors import Neighbours


@dataclass
class Assessment:
    """What :meth:`NearestReference.assess` finds for some atoms of a frame."""

    nearest: np.ndarray
    """(n,) phase code of the reference nearest to each atom's (averaged) descriptor."""
    scores: np.ndarray
    """(n,) its distance, the decision score (standardised SOAP units)."""
    atom_scores: np.ndarray
    """(n,) the same distance for the atom's own, not averaged, descriptor."""
    own: np.ndarray
    """(n, k) PCA coordinates of each atom's own (not averaged) descriptor (the orbit
    check matches them to the reference sites)."""
    far_coordinates: np.ndarray
    """(n_far, k + 1) float32 :meth:`NearestReference.coordinates` of the atoms with
    ``scores`` above the threshold, in order (what the repeat check compares)."""
    pairs: tuple[np.ndarray, np.ndarray] | None = None
    """:func:`shell_pairs` of the assessed atoms (None without a shell): the averaged
    repeat distance reuses them."""
    z_rows: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    """Rows (by position among the assessed atoms) of their standardised own descriptors,
    fetched on demand (the growth check needs a few; on the device path they stay there
    until asked for)."""

    def standardised(self, atoms: np.ndarray, sub: np.ndarray | None = None) -> np.ndarray:
        """(len(atoms), D) standardised own descriptors of frame atoms ``atoms``, which must
        be among the assessed ones (``sub``: their sorted indices, None: all)."""
        if self.z_rows is None:
            raise ValueError("this assessment keeps no descriptors")
        atoms = np.asarray(atoms, dtype=np.int64)
        return self.z_rows(atoms if sub is None else np.searchsorted(sub, atoms))


ARRAYS = ("mean", "scale", "components", "pca_mean", "ref_features", "ref_labels",
          "threshold", "liquid", "shell", "unknown", "phase_scale")
"""The model-file arrays of :class:`NearestReference` (``clf/<name>``)."""


@dataclass
class NearestReference:
    """A fitted nearest-reference classifier: the metric (scaler + PCA), the reference
    environments and the liquid threshold (all stored in the model file, by name)."""

    mean: np.ndarray
    """(D,) scaler mean."""
    scale: np.ndarray
    """(D,) scaler std (floored)."""
    components: np.ndarray
    """(k, D) PCA axes of the standardised references."""
    pca_mean: np.ndarray
    """(D,) PCA centre."""
    ref_features: np.ndarray
    """(M, k) unique reference environments."""
    ref_labels: np.ndarray
    """(M,) phase code of each."""
    threshold: float = float("inf")
    """Score above which an atom is too far from every reference (liquid or unknown; set
    by :mod:`icemon.training.calibrate`)."""
    liquid: int = len(LEGACY_PHASES) - 1
    """Code of ``liquid`` in the model's vocabulary (the number of reference phases)."""
    shell: float = 0.0
    """Radius (Å) over which each atom's SOAP descriptor is averaged with its neighbours'
    before the nearest-reference search, for the references too (0 = per-atom
    descriptors); see :func:`shell_average`."""
    unknown: int = -1
    """Code of ordered environments that match no reference (-1: the model has no such
    label, every atom above the threshold is liquid and no regional check runs)."""
    phase_scale: np.ndarray | None = None
    """(n_phases,) or None. When set, an atom's score is its distance divided by the
    entry of its nearest phase: each ice's own spread (the quantile of its synthetic,
    noised and strained samples, :mod:`icemon.training.calibrate`'s ``phase_quantile``
    rule) is the unit, and the threshold is 1. None: scores are plain distances."""

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, n_components: int = 30,
            scale_floor: float = 1e-2, metric_rows: np.ndarray | None = None
            ) -> NearestReference:
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
        ref = cls(scaler.mean_, scale, pca.components_[keep], pca.mean_, np.zeros((0, 1)),
                  np.zeros(0, dtype=np.int64))
        y = ref.project(features)[0]
        # keep one row per distinct environment (supercells repeat each site many times)
        key = np.round(y, 6)
        _, first = np.unique(np.column_stack([key, labels]), axis=0, return_index=True)
        ref.ref_features = y[np.sort(first)]
        ref.ref_labels = np.asarray(labels)[np.sort(first)].astype(np.int64)
        return ref

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

    def assess(self, features: np.ndarray, positions: np.ndarray | None,
               cell: np.ndarray | None, rows: np.ndarray | None = None,
               neighbours: Neighbours | None = None) -> Assessment:
        """Everything a frame's labels need, for the atoms ``rows`` (default all) of a
        structure whose every atom has a descriptor (``features`` (N, D), ``positions``
        (N, 3) Å, ``cell`` Å): the nearest reference and score of each atom's
        :attr:`shell`-averaged descriptor (``positions`` None: descriptors used as they
        are), the score of its own descriptor, and the :meth:`coordinates` of the atoms
        too far from every reference. ``neighbours``: the structure's neighbour service
        (whole structures only), which then serves the shell.

        The descriptors are standardised and projected once: the average of the
        standardised vectors is the standardisation of the average, so the per-atom and
        the averaged scores share that work. An MPI rank passes its own atoms plus a halo
        of :attr:`shell` and selects its own as ``rows``."""
        z_all = self._standardise(features)
        z = z_all if rows is None else z_all[rows]
        y = z @ self.components.T
        resid2 = self._residual2(z, y)
        nearest, atom_scores = self._nearest(y, resid2)
        scores, y_own, pairs = atom_scores, y, None
        if self.shell > 0 and positions is not None:
            pairs = shell_pairs(positions, cell, self.shell, rows, neighbours)
            z = shell_average(z_all, positions, cell, self.shell, rows, pairs)
            y = z @ self.components.T
            resid2 = self._residual2(z, y)
            nearest, scores = self._nearest(y, resid2)
        far = self.far(scores)
        return Assessment(nearest, scores, atom_scores, y_own,
                          self._coordinates(y[far], resid2[far]), pairs,
                          lambda r: z_all[r])

    @staticmethod
    def _residual2(z: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Squared norm of the part of standardised ``z`` outside the PCA subspace."""
        return np.maximum((z * z).sum(axis=1) - (y * y).sum(axis=1), 0.0)

    def coordinates(self, features: np.ndarray) -> np.ndarray:
        """(n, k + 1) float32 point of each descriptor in standardised SOAP space: its PCA
        coordinates and the length of its out-of-subspace residual (what the repeat check
        compares)."""
        return self._coordinates(*self.project(features))

    @staticmethod
    def _coordinates(y: np.ndarray, resid2: np.ndarray) -> np.ndarray:
        """:meth:`coordinates` of points given by their PCA coordinates and residuals."""
        return np.column_stack([y, np.sqrt(resid2)]).astype(np.float32)

    def far(self, scores: np.ndarray) -> np.ndarray:
        """(N,) bool: the atoms too far from every reference (liquid or unknown)."""
        return scores > self.threshold

    def averaged(self, features: np.ndarray, positions: np.ndarray,
                 cell: np.ndarray) -> np.ndarray:
        """``features`` of a frame (positions and cell in Å) averaged over :attr:`shell`,
        as the references were."""
        return shell_average(features, positions, cell, self.shell)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The model-file arrays, by name (:data:`ARRAYS`; ``phase_scale`` only when set)."""
        return {f.name: np.asarray(v) for f in fields(self)
                if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> NearestReference:
        """Load by name; scalars a file lacks take the defaults of files before them."""
        return cls(mean=a["mean"], scale=a["scale"], components=a["components"],
                   pca_mean=a["pca_mean"], ref_features=a["ref_features"],
                   ref_labels=a["ref_labels"].astype(np.int64),
                   threshold=float(a["threshold"]),
                   liquid=int(a["liquid"]) if "liquid" in a else len(LEGACY_PHASES) - 1,
                   shell=float(a["shell"]) if "shell" in a else 0.0,
                   unknown=int(a["unknown"]) if "unknown" in a else -1,
                   phase_scale=np.asarray(a["phase_scale"], dtype=np.float64)
                   if "phase_scale" in a else None)


def shell_pairs(positions: np.ndarray, cell: np.ndarray, radius: float,
                rows: np.ndarray | None = None, neighbours: Neighbours | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """(row, atom) of every pair of atoms within ``radius`` Å (the atom itself not
    included), centred on the atoms ``rows`` (indices; default all): the row is the
    centre's position in ``rows``, the atom the neighbour's index. Who, not where: no Å
    shifts. ``neighbours``: the structure's neighbour service (used when ``rows`` is
    None)."""
    from icemon.geometry.neighbors import neighbor_pairs

    if rows is None:
        if neighbours is not None:
            i, j, _ = neighbours.pairs(radius)
            return i, j
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
