"""Ice to its last ordered layer: grow labelled ice into the liquid-labelled atoms touching it.

The decision score averages each atom's descriptor over its neighbours within the shell
(:func:`~icemon.classification.reference.shell_average`, 4.8 Å), which removes thermal
scatter in bulk but makes an ice atom at an interface half liquid: its average lands
beyond the threshold and a nucleus or a front loses about one molecular layer. This check
re-examines exactly those atoms: an atom labelled liquid with an ice atom within
:attr:`GrowthCheck.contact` Å is scored again with a descriptor part its own
(:attr:`GrowthCheck.own_weight`, a half in the shipped model) and the rest the mean of its
ice-labelled shell neighbours' — the shell average with the liquid side left out — against
the same references and threshold. Accepted atoms become ice, named as most
of the ice atoms they touch are (ties: the lower code), and the next layer is examined,
until no atom changes or :attr:`GrowthCheck.rounds` rounds have run.

A nucleus of a few dozen molecules can have no atom at all whose shell average is within
the threshold (every shell reaches the liquid), and then there is nothing to grow from.
After growth, **ordered cores** (:attr:`GrowthCheck.core`) catch it. An atom is ordered when
its own, not averaged, descriptor is within the threshold; a core atom is ordered and
touches (within :attr:`~GrowthCheck.contact`) at least ``core`` ordered atoms of its nearest
phase (the shipped 2: an atom and two of its four first neighbours, the smallest unit that
fixes an ice's bond angle); two or more core atoms in contact are a core, whose
liquid-labelled atoms become ice of that phase, and growth continues from them. One
ordered atom alone is common in a liquid, and a lone core atom occurs too (measured: once
in ~50 frames of ~4,000 liquid mW molecules at 230 K, which growth turned into four
molecules of "ice III"; 37 atoms in 12,000 of GenIce's amorphous network CRN1); with pairs
required, none in those liquids and 7 atoms in that network (CHILL+ calls ~5 % of it ice).

Nothing is fitted to interfaces: the references, the threshold and the shell are the
model's (ideal lattices and synthetic noise), the contact radius is the first O–O shell
of every ice (≤ 3.5 Å, the cluster rule's bond). The own weight is a stated setting, not a
fit: on synthetic ice|random-packing composites (``benchmarks/interfaces.py``, section 5)
it trades recall of the ice's last layer against false ice in the packing's first, and no
rule there picks one value. Growth starts only from atoms already labelled ice, so
all-liquid frames cannot gain ice, and each step needs the atom's own environment to make
up its share of an ice environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.checks.base import FrameLabels, RegionalCheck, register
from icemon.errors import ConfigError
from icemon.phases import is_ice

if TYPE_CHECKING:
    from icemon.classification.reference import NearestReference

GROWTH_CONTACT = 3.5
"""Å: an atom touches ice when an ice atom lies this close (first O–O shell of every ice,
the cluster rule's bond)."""

GROWTH_ROUNDS = 8
"""Layers examined at most (measured: 4 suffice on mW seeds and slabs)."""

GROWTH_OWN_WEIGHT = 0.5
"""Weight of a candidate's own descriptor in its re-scored one (the rest: the mean of its
ice-labelled shell neighbours'); model files without ``growth_own_weight`` use it."""


@register
@dataclass
class GrowthCheck(RegionalCheck):
    """Interface growth (see the module)."""

    contact: float = GROWTH_CONTACT
    """Å, the distance within which an atom touches ice."""
    rounds: int = GROWTH_ROUNDS
    """Growth steps at most."""
    own_weight: float = GROWTH_OWN_WEIGHT
    """Share of the candidate's own descriptor in the re-scored one, the rest the mean of its
    ice neighbours' (1: its own unaveraged descriptor alone, which still grows a little)."""
    core: int = 0
    """Ordered cores, after growth: an atom whose own, not averaged, descriptor is within
    the threshold and that touches at least this many such atoms of its nearest phase is
    a core atom; core atoms in contact with another become ice, and growth continues
    from them (0: no cores, growth starts from labelled ice alone)."""

    name = "growth"
    order = 50
    arrays = ("growth_contact", "growth_rounds", "growth_own_weight", "growth_core")

    def __post_init__(self) -> None:
        if not 0.0 <= self.own_weight <= 1.0:
            raise ConfigError(f"growth own weight {self.own_weight} is outside [0, 1]")
        if self.core < 0:
            raise ConfigError(f"growth core needs 0 or more ordered neighbours, not {self.core}")
        if self.contact <= 0 or self.rounds < 1:
            raise ConfigError(f"growth needs a contact > 0 Å and at least one round, not "
                              f"{self.contact} Å and {self.rounds}")

    def apply(self, frame: FrameLabels) -> None:
        ref = self.reference
        if frame.positions is None or frame.neighbours is None or ref.shell <= 0:
            return
        labels = frame.labels
        if not (labels == ref.liquid).any():
            return  # nothing to grow into: no neighbour list
        cores = self.core > 0 and frame.atom_scores is not None
        if not cores and not is_ice(labels, ref.liquid, ref.unknown).any():
            return  # nothing to grow from
        radius = max(self.contact, ref.shell)
        ci, cj, _ = frame.neighbours.pairs(radius)
        d = frame.neighbours.lengths(radius)
        self._grow(frame, ci, cj, d)
        if cores and self._cores(frame, ci, cj, d):
            self._grow(frame, ci, cj, d)  # from the cores growth did not reach

    def _grow(self, frame: FrameLabels, ci: np.ndarray, cj: np.ndarray,
              d: np.ndarray) -> None:
        """Up to :attr:`rounds` layers grown from the frame's ice (see the module)."""
        ref = self.reference
        labels = frame.labels
        for _ in range(self.rounds):
            ice = is_ice(labels, ref.liquid, ref.unknown)
            touch = (d < self.contact) & ice[cj] & (labels[ci] == ref.liquid)
            atoms = np.unique(ci[touch])
            if not len(atoms):
                return
            share = frame.share
            mine = share.own_among(atoms)
            own = atoms if mine is None else atoms[mine]
            out = share.gather_subset(
                lambda own=own: self._assess(frame, own, ice, ci, cj, d), atoms, 2)
            accept = out[:, 0] > 0
            if not accept.any():
                return
            grown = atoms[accept]
            labels[grown] = self._names(grown, labels, touch, ci, cj)
            frame.nearest[grown] = labels[grown]
            frame.scores[grown] = out[accept, 1]

    def _cores(self, frame: FrameLabels, ci: np.ndarray, cj: np.ndarray,
               d: np.ndarray) -> bool:
        """Liquid-labelled atoms of an ordered core become ice of their nearest phase (True
        if any did). An atom is ordered when its own descriptor is within the threshold;
        a core atom is ordered and touches at least :attr:`core` ordered atoms of its
        nearest phase; a core is two or more core atoms in contact (a lone core atom
        occurs in liquid and in GenIce's amorphous network, a pair rarely)."""
        ref = self.reference
        assert frame.atom_scores is not None
        near = frame.nearest
        ordered = ~ref.far(frame.atom_scores) & (near != ref.liquid) & (near != ref.unknown)
        alike = (d < self.contact) & (near[ci] == near[cj])
        count = np.bincount(ci[alike & ordered[ci] & ordered[cj]], minlength=len(near))
        core = ordered & (count >= self.core)
        paired = np.bincount(ci[alike & core[ci] & core[cj]], minlength=len(near)) > 0
        new = core & paired & (frame.labels == ref.liquid)
        frame.labels[new] = near[new]
        frame.scores[new] = frame.atom_scores[new]
        return bool(new.any())

    def _assess(self, frame: FrameLabels, atoms: np.ndarray, ice: np.ndarray,
                ci: np.ndarray, cj: np.ndarray, d: np.ndarray) -> np.ndarray:
        """(len(atoms), 2): accepted (1/0) and the score of each candidate's descriptor
        re-weighted by :attr:`own_weight` (its own, the rest its ice shell neighbours' mean);
        ``atoms`` are this executor's own candidates."""
        ref = self.reference
        if not len(atoms):
            return np.zeros((0, 2))
        mine = np.zeros(len(ice), dtype=bool)
        mine[atoms] = True
        keep = (d < ref.shell) & ice[cj] & mine[ci]
        pi, pj = ci[keep], cj[keep]
        row = np.searchsorted(atoms, pi)
        z_own = frame.assessment.standardised(atoms, frame.sub)
        z_nb = frame.assessment.standardised(pj, frame.sub)
        total = np.zeros_like(z_own)
        np.add.at(total, row, z_nb)
        count = np.bincount(row, minlength=len(atoms)).astype(np.float64)
        w = self.own_weight
        z = w * z_own + (1.0 - w) * total / np.maximum(count, 1.0)[:, None]
        y = z @ ref.components.T
        _, score = ref._nearest(y, ref._residual2(z, y))
        return np.column_stack([(score <= ref.threshold) & (count > 0), score])

    @staticmethod
    def _names(grown: np.ndarray, labels: np.ndarray, touch: np.ndarray, ci: np.ndarray,
               cj: np.ndarray) -> np.ndarray:
        """The label most common among the ice atoms each grown atom touches (ties: the
        lower code)."""
        is_grown = np.zeros(len(labels), dtype=bool)
        is_grown[grown] = True
        sel = touch & is_grown[ci]
        row = np.searchsorted(grown, ci[sel])
        k = int(labels.max()) + 1
        count = np.bincount(row * k + labels[cj[sel]].astype(np.int64),
                            minlength=len(grown) * k).reshape(len(grown), k)
        return np.argmax(count, axis=1).astype(labels.dtype)

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {"growth_contact": np.array(self.contact), "growth_rounds": np.array(self.rounds),
               "growth_own_weight": np.array(self.own_weight)}
        if self.core:  # files without it: no cores (models before v0.10)
            out["growth_core"] = np.array(self.core)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    reference: NearestReference) -> GrowthCheck | None:
        if "growth_contact" not in arrays:
            return None
        return cls(float(arrays["growth_contact"]),
                   int(arrays.get("growth_rounds", GROWTH_ROUNDS)),
                   float(arrays.get("growth_own_weight", GROWTH_OWN_WEIGHT)),
                   int(arrays.get("growth_core", 0))).bind(reference)
