"""Which framework: after the family vote names the clathrate whose surroundings a region
has, the coordination sequences of its hydrogen-bond network
(:mod:`icemon.classification.topology`) say whether the region is that clathrate's
framework at all or another one built of the same cages (TS1, HS1).

A frame's atoms of a member whose judged atoms mostly have none of its lattice's
sequences become ``unknown``; those whose judged atoms mostly have another member's
sequences take its name. Fit (:meth:`TopologyCheck.fit`): the sequences of every site of
the members' ideal lattices and a bond cutoff between their bonds and non-bonds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.checks.base import FrameLabels, RegionalCheck, register
from icemon.classification.topology import (
    TOPOLOGY_DEPTH,
    TOPOLOGY_MAJORITY,
    TOPOLOGY_SAMPLE,
    bond_cutoff,
    coordination_sequences,
)

if TYPE_CHECKING:
    from icemon.classification.reference import NearestReference
    from icemon.geometry.neighbors import Neighbours


@register
@dataclass
class TopologyCheck(RegionalCheck):
    """The topology check (see the module)."""

    sequences: np.ndarray
    """(T, depth) int64 coordination sequences of the members' ideal lattices' sites,
    one row per distinct sequence."""
    phase: np.ndarray
    """(T,) phase code of each row of :attr:`sequences`."""
    cutoff: float
    """Å, O–O distance below which two oxygens are bonded."""
    family: np.ndarray | None = None
    """(n_phases,) family of each phase (the family vote's; None: each phase its own)."""

    name = "topology"
    order = 30
    arrays = ("topology_sequences", "topology_phase", "topology_cutoff")

    def apply(self, frame: FrameLabels) -> None:
        if frame.positions is not None:
            frame.labels[:] = self.labels(frame.labels, frame.positions, frame.cell,
                                          frame.neighbours)

    @classmethod
    def fit(cls, lattices: dict[int, tuple[np.ndarray, np.ndarray]], reference: NearestReference,
            family: np.ndarray | None = None, depth: int = TOPOLOGY_DEPTH) -> TopologyCheck:
        """The sequences (``depth`` bonds) of the sites of ideal ``lattices`` ({phase
        code: (positions, cell) Å}) and their bond cutoff."""
        cutoff = bond_cutoff(list(lattices.values()))
        rows, codes = [], []
        for code, (pos, cell) in lattices.items():
            seq = np.unique(coordination_sequences(pos, cell, cutoff, depth)[0], axis=0)
            rows.append(seq)
            codes.append(np.full(len(seq), code, dtype=np.int64))
        return cls(np.concatenate(rows), np.concatenate(codes), cutoff, family).bind(reference)

    def fits(self, labels: np.ndarray, positions: np.ndarray, cell: np.ndarray,
             neighbours: Neighbours | None = None) -> dict[int, tuple[np.ndarray, int]]:
        """{phase code: (shares (n_phases,), atoms judged)} for every ice of
        :attr:`sequences` with judged atoms in a frame (``labels`` of every atom,
        denoised ``positions`` (N, 3) and ``cell``, Å): entry q of the shares is the share
        of the judged atoms whose coordination sequence is one of phase q's lattice (0
        for phases without sequences; a sequence two lattices share counts for both). Up to
        :data:`~icemon.classification.topology.TOPOLOGY_SAMPLE` atoms of each ice (evenly
        strided: every MPI rank picks the same) are looked at; one is judged when it and
        every atom fewer than the depth bonds away are labelled with a member of its
        family and have four bonds (interfaces, other structures and the surroundings of
        a vacancy or a broken bond are not judged)."""
        depth = self.sequences.shape[1]
        checked = np.unique(self.phase)
        present = [int(c) for c in checked if (labels == c).any()]
        if not present:
            return {}
        centres, owner = [], []
        for code in present:
            atoms = np.flatnonzero(labels == code)
            centres.append(atoms[::max(1, -(-len(atoms) // TOPOLOGY_SAMPLE))])
            owner.append(np.full(len(centres[-1]), code))
        centre, code_of = np.concatenate(centres), np.concatenate(owner)
        family = self.family if self.family is not None else np.arange(self.reference.liquid)
        bonds = None if neighbours is None else neighbours.pairs(self.cutoff)
        out: dict[int, tuple[np.ndarray, int]] = {}
        # one search per family: the members' atoms are the structure being judged
        for fam in np.unique(family[code_of]):
            mine = family[code_of] == fam
            inside = np.isin(labels, np.intersect1d(np.flatnonzero(family == fam), checked))
            seq, judged = coordination_sequences(positions, cell, self.cutoff, depth,
                                                 centre[mine], inside, valence=4, pairs=bonds)
            # (atom, phase): whether the atom's sequence is one of that phase's lattice
            same = (seq[:, None, :] == self.sequences[None]).all(-1)
            fits = np.zeros((len(seq), self.reference.liquid), dtype=bool)
            for q in checked:
                fits[:, q] = same[:, self.phase == q].any(1)
            for code in np.unique(code_of[mine]):
                own = (code_of[mine] == code) & judged
                if own.any():
                    out[int(code)] = (fits[own].mean(0), int(own.sum()))
        return out

    def labels(self, labels: np.ndarray, positions: np.ndarray, cell: np.ndarray,
               neighbours: Neighbours | None = None) -> np.ndarray:
        """``labels`` after the check (:meth:`fits`): a frame's atoms of a checked ice
        keep it when at least half of its judged atoms have sequences of its lattice, take
        another member's label when more than half have that member's, and become
        ``unknown`` otherwise (a framework the model does not know). Decided for every
        ice on the same labels, then applied."""
        new = np.array(labels, copy=True)
        for code, (shares, _) in self.fits(labels, positions, cell, neighbours).items():
            if shares[code] >= 1.0 - TOPOLOGY_MAJORITY:
                continue
            other = int(np.argmax(shares))
            new[labels == code] = other if shares[other] > TOPOLOGY_MAJORITY else self.reference.unknown
        return new

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"topology_sequences": self.sequences, "topology_phase": self.phase,
                "topology_cutoff": np.array(self.cutoff)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    reference: NearestReference) -> TopologyCheck | None:
        if "topology_sequences" not in arrays:
            return None
        family = np.asarray(arrays["family"], dtype=np.int64) if "family" in arrays else None
        return cls(np.asarray(arrays["topology_sequences"], dtype=np.int64),
                   np.asarray(arrays["topology_phase"], dtype=np.int64),
                   float(arrays["topology_cutoff"]), family).bind(reference)
