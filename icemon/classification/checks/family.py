"""Which clathrate: ices that synthetic ice reads as one another (sI, sII and sH, strained
clathrates of the same cages) form a family, and an atom labelled with a member takes the
label most common among the family's and the ``unknown`` atoms within
:attr:`FamilyVote.radius`: which clathrate a crystal is shows in the packing of its
cages, several Å wide, not in one molecule's surroundings. Ices outside families (Ih and
Ic among them, so that stacking faults stay resolved) are never voted on.

Fit (:func:`families`): two ices join when either's synthetic samples read as the other
above :data:`FAMILY_RATE` (measured on the ten-phase network: sI ↔ sII 50 %, sH → sII
14 %, sH → sI 6 %, every other pair 0.00 %).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.checks.base import FrameLabels, RegionalCheck, register

if TYPE_CHECKING:
    from icemon.classification.reference import NearestReference
    from icemon.geometry.neighbors import Neighbours

FAMILY_RATE = 0.01
"""Two ices whose synthetic samples are read as the other for more than this share of
their atoms (either way, under the calibration's noise and strain) are one family."""


@register
@dataclass
class FamilyVote(RegionalCheck):
    """The family vote (see the module)."""

    family: np.ndarray
    """(n_phases,) family of each phase (-1: none)."""
    radius: float
    """Å, radius of the vote."""

    name = "family"
    order = 20
    arrays = ("family", "family_radius")

    def apply(self, frame: FrameLabels) -> None:
        if frame.positions is not None:
            frame.labels[:] = self.vote(frame.labels, frame.positions, frame.cell,
                                        frame.neighbours)

    def finish(self, frame: FrameLabels) -> None:
        frame.nearest = self.voted_nearest(frame.nearest, frame.labels)

    def vote(self, labels: np.ndarray, positions: np.ndarray, cell: np.ndarray,
             neighbours: Neighbours | None = None) -> np.ndarray:
        """``labels`` after the vote: each atom of a family's member takes the label most
        common among the family's atoms and the ``unknown`` ones within :attr:`radius` Å
        of it (``positions`` (N, 3), ``cell`` Å; ties go to the lower code); ``unknown``
        atoms keep their label. ``neighbours``: the frame's neighbour service."""
        from icemon.geometry.neighbors import Neighbours

        labels = np.array(labels, copy=True)
        for fam in np.unique(self.family[self.family >= 0]):
            members = np.flatnonzero(self.family == fam)
            voters = members if self.reference.unknown < 0 else np.append(members, self.reference.unknown)
            atoms = np.flatnonzero(np.isin(labels, voters))
            mine = np.isin(labels[atoms], members)
            if len(np.unique(labels[atoms])) < 2 or not mine.any():
                continue
            # votes per (atom, voter): its own and its neighbours' labels, counted
            vote = np.searchsorted(voters, labels[atoms])  # voters are sorted
            if neighbours is None:
                neighbours = Neighbours(positions, cell)
            i, j = neighbours.pairs_among(self.radius, atoms)
            n, k = len(atoms), len(voters)
            count = np.bincount(i * k + vote[j], minlength=n * k).reshape(n, k)
            count[np.arange(n), vote] += 1
            labels[atoms[mine]] = voters[np.argmax(count[mine], axis=1)]
        return labels

    def voted_nearest(self, nearest: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """``nearest`` with the vote's answer where ``labels`` (of a whole frame) names a
        member of a family: the nearest reference phase as the classifier finally reads
        it."""
        voted = (labels >= 0) & (labels < self.reference.liquid)
        voted[voted] = self.family[labels[voted]] >= 0
        return np.where(voted, labels, nearest).astype(nearest.dtype)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"family": self.family, "family_radius": np.array(self.radius)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    reference: NearestReference) -> FamilyVote | None:
        if "family" not in arrays:
            return None
        return cls(np.asarray(arrays["family"], dtype=np.int64),
                   float(arrays.get("family_radius", 0.0))).bind(reference)


def confusion_matrix(true: np.ndarray, found: np.ndarray, n: int) -> np.ndarray:
    """(n, n) share of the items of each true class (row) found as each class."""
    confusion = np.zeros((n, n))
    np.add.at(confusion, (true, found), 1)
    return confusion / np.maximum(confusion.sum(1, keepdims=True), 1)


def joined(confusion: np.ndarray, rate: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """(n,) group of each class (0…G−1) after joining, transitively, every two classes
    either of which is found as the other above ``rate`` (``allowed`` (n, n) bool: only
    those pairs may join)."""
    n = len(confusion)
    root = np.arange(n)

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    link = (confusion > rate) | (confusion.T > rate)
    if allowed is not None:
        link &= allowed
    for i, j in zip(*np.nonzero(link)):
        root[find(i)] = find(j)
    _, group = np.unique([find(i) for i in range(n)], return_inverse=True)
    return group.ravel()


def families(true: np.ndarray, nearest: np.ndarray, n_phases: int,
             rate: float = FAMILY_RATE) -> tuple[np.ndarray, np.ndarray]:
    """The fit: (family of each phase, -1 for none; confusion matrix: share of each
    phase's synthetic atoms nearest to each phase) from the synthetic-ice atoms' true and
    nearest phase codes; phases join (transitively) when either reads as the other above
    ``rate``."""
    confusion = confusion_matrix(true, nearest, n_phases)
    group = joined(confusion, rate)
    shared = np.bincount(group)[group] > 1  # phases in a group of two or more
    family = np.full(n_phases, -1)
    family[shared] = np.unique(group[shared], return_inverse=True)[1].ravel()
    return family, confusion
