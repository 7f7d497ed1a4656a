"""Ordered but unknown: an atom too far from every reference is ``unknown`` rather than
liquid when its environment repeats elsewhere in the frame.

Crystalline order is translational order, so the denoised environments of a crystal fall
on a few points of descriptor space, one per Wyckoff orbit, while every liquid environment
is its own. A lattice the model was never given (ice IV, XII, a hydrate it does not know)
is ordered but matches no reference; calling it liquid, or the nearest ice, would be a
confident wrong answer. The repeat distance (:func:`repeat_distance`) is averaged over the
far atoms around each one (:attr:`RepeatCheck.shell`): like the averaged score, the
average is the region's, so an unknown crystal that the network leaves less ordered than
the known ices has no tail of single atoms beyond the threshold. Copies of a box written
several times are one atom here (:func:`~icemon.geometry.replicas.replica_groups`).

The threshold is the repeat distance that synthetic ice (ideal lattices, strained and
noised with the largest training noise, then denoised) stays below
(:func:`repeat_threshold`, in :mod:`icemon.training.calibrate`'s pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.checks.base import FrameLabels, RegionalCheck, register
from icemon.classification.reference import pair_mean, shell_average

if TYPE_CHECKING:
    from icemon.classification.reference import NearestReference

REPEAT_K = 4
"""Copies of an environment (other atoms) that make it a repeated, crystalline one: small,
so that a crystallite of a few unit cells already counts, and so that a frame of a few
hundred oxygens holds that many copies of every Wyckoff orbit of the known lattices
(sII's smallest orbit is 8 of 136 molecules per cell, sH's 2 of 34). Measured against
k = 1 and 2 (each k with its own threshold from the same synthetic ice): a smaller k
leaves fewer atoms of a low-symmetry unknown lattice liquid (delta, four copies of each
of 80 sites in a 320-O frame: 14.0 / 11.0 / 6.3 % at k = 4 / 2 / 1), but a liquid frame
written twice is then periodic to within k copies and reads `unknown` (k = 1: 100 %), so
k stays 4: a liquid box replicated fewer than five times reads liquid."""

REPEAT_SAMPLE = 2048
"""At most this many candidate atoms (a fixed, evenly strided subset) serve as the
environments a candidate is compared with, so that the check costs O(N) on big frames;
an orbit of ≥ 1 % of the candidates still has ≥ 20 copies among them."""


@register
@dataclass
class RepeatCheck(RegionalCheck):
    """Far atoms whose (averaged) repeat distance is at most :attr:`threshold` become
    ``unknown``; the others stay liquid. Present in every model with an ``unknown``
    label."""

    threshold: float = float("inf")
    """Largest :func:`repeat_distance` (standardised SOAP units) of an environment that
    repeats, i.e. of an ordered one."""
    k: int = REPEAT_K
    """How many other atoms must share an environment for it to count as repeated."""
    shell: float = 0.0
    """Radius (Å) over which each far atom's repeat distance is averaged with those of
    the far atoms around it (0 = each atom on its own)."""

    name = "repeat"
    order = 10
    arrays = ("repeat_threshold", "repeat_k", "repeat_shell")

    def apply(self, frame: FrameLabels) -> None:
        far_atoms = np.flatnonzero(frame.reference.far(frame.scores))
        if not len(far_atoms):
            return
        share = frame.share
        width = frame.reference.components.shape[0] + 1
        # the points compared, of the far atoms only (each executor has its own far atoms')
        points = share.gather_subset(lambda: frame.assessment.far_coordinates, far_atoms,
                                     width, np.float32)
        groups = None
        if frame.given is not None:
            from icemon.geometry.replicas import replica_groups

            replicas = replica_groups(frame.given, frame.cell)
            groups = None if replicas is None else replicas[far_atoms]
        mine = share.own_among(far_atoms)
        # O(far × sample): each executor its own far atoms, against the same sample
        d = share.gather_subset(lambda: repeat_distance(points, self.k, rows=mine,
                                                        groups=groups),
                                far_atoms, 1, np.float32)[:, 0]
        if self.shell > 0 and frame.positions is not None:
            pairs = frame.assessment.pairs
            if pairs is not None and self.shell == frame.reference.shell:
                d = share.gather_subset(lambda: self._pair_average(frame, d, far_atoms),
                                        far_atoms, 1)[:, 0]
            else:
                d = share.gather_subset(lambda: far_average(
                    d, frame.positions[far_atoms], frame.cell, self.shell, rows=mine),
                    far_atoms, 1)[:, 0]
        frame.labels[far_atoms[d <= self.threshold]] = frame.reference.unknown

    @staticmethod
    def _pair_average(frame: FrameLabels, d: np.ndarray, far_atoms: np.ndarray) -> np.ndarray:
        """The executor's own far atoms' distances averaged over the far atoms among
        their shell pairs (the assessment's, whose radius is the averaging radius)."""
        sub, n = frame.sub, len(frame.labels)
        if sub is None:
            far = np.zeros(n, dtype=bool)
            far[far_atoms] = True
            every = np.zeros(n)
            every[far] = d
            return far_pair_average(every, far, frame.assessment.pairs)
        in_sub = np.isin(far_atoms, sub)
        far = np.zeros(len(sub), dtype=bool)
        far[np.searchsorted(sub, far_atoms[in_sub])] = True
        every = np.zeros(len(sub))
        every[far] = d[in_sub]
        return far_pair_average(every, far, frame.assessment.pairs, frame.rows)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"repeat_threshold": np.array(self.threshold), "repeat_k": np.array(self.k),
                "repeat_shell": np.array(self.shell)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    reference: NearestReference) -> RepeatCheck | None:
        if reference.unknown < 0:
            return None
        return cls(float(arrays.get("repeat_threshold", np.inf)),
                   int(arrays.get("repeat_k", REPEAT_K)),
                   float(arrays.get("repeat_shell", 0.0))).bind(reference)


def repeat_threshold(ice_distances: np.ndarray, quantile: float) -> float:
    """The fit: the ``quantile`` of the repeat distances of synthetic-ice atoms."""
    return float(np.quantile(ice_distances, quantile))


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
    from the liquid without any reference for it. Computed in float64 chunks (O(n × sample)
    time, O(chunk × sample) memory), returned as float32: the expansion |q|² − 2q·p + |p|²
    cancels most of its digits for near repeats, and in float32 the rounding of the
    product, which BLAS orders differently for different row counts, moved distances of
    ~0.13 by up to 1e-3 between a share of the rows and the whole (MPI ranks against the
    serial path)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    out = np.full(len(rows), np.inf, dtype=np.float32)
    stride = max(1, -(-n // sample))
    db_index = np.arange(0, n, stride)
    if len(db_index) <= k:
        return out
    db = points[db_index]
    db2 = (db * db).sum(1)
    chunk = max(1, 2**21 // len(db))
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
    """:func:`far_average` from pairs already built (:attr:`~icemon.classification.reference.Assessment.pairs`, the
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


