"""The classifier of a model: the nearest reference environment
(:class:`~icemon.classification.reference.NearestReference`), then the regional checks
(:mod:`icemon.classification.checks`) in their order.

:meth:`PhaseClassifier.label_frame` is the one labelling path: the serial pipeline, a
:class:`~icemon.execution.pool.FramePool` worker and every MPI rank run it, differing only
in the :class:`~icemon.classification.checks.Share` that says which atoms are theirs and
how per-atom results are gathered. Everything here is fitted on ideal lattices and
synthetic data only (:mod:`icemon.training.calibrate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.checks.base import (
    SERIAL,
    FrameLabels,
    RegionalCheck,
    Share,
    registered,
)
from icemon.classification.device import OnDevice
from icemon.classification.reference import ARRAYS, NearestReference

if TYPE_CHECKING:
    from icemon.geometry.neighbors import Neighbours


@dataclass
class Labelled:
    """A frame's labels and what they came from (every atom, every executor alike)."""

    labels: np.ndarray
    """(N,) int8 phase codes."""
    nearest: np.ndarray
    """(N,) int8 phase of the nearest reference (the family vote's answer where an atom
    is labelled with a family's member)."""
    scores: np.ndarray
    """(N,) float64 decision score (distance to the nearest reference)."""
    atom_scores: np.ndarray
    """(N,) float64 the same for each atom's own, not averaged, descriptor."""


@dataclass
class PhaseClassifier:
    """Nearest reference + regional checks, as stored in a model file (``clf/<name>``
    arrays, each check's by name)."""

    reference: NearestReference
    checks: list[RegionalCheck] = field(default_factory=list)
    """In the order they run (:attr:`RegionalCheck.order`)."""

    def __post_init__(self) -> None:
        self.checks = sorted((c.bind(self.reference) for c in self.checks),
                             key=lambda c: c.order)

    @property
    def threshold(self) -> float:
        return self.reference.threshold

    @property
    def liquid(self) -> int:
        return self.reference.liquid

    @property
    def unknown(self) -> int:
        return self.reference.unknown

    @property
    def shell(self) -> float:
        return self.reference.shell

    def check(self, name: str) -> RegionalCheck | None:
        """The check registered as ``name``, if the model has it."""
        return next((c for c in self.checks if c.name == name), None)

    def add(self, check: RegionalCheck) -> None:
        """Add (or replace) a check; the list stays in run order."""
        self.checks = sorted([c for c in self.checks if c.name != check.name]
                             + [check.bind(self.reference)], key=lambda c: c.order)

    def label_frame(self, features: np.ndarray, positions: np.ndarray | None = None,
                    cell: np.ndarray | None = None, *, given: np.ndarray | None = None,
                    share: Share = SERIAL, sub: np.ndarray | None = None,
                    rows: np.ndarray | None = None,
                    neighbours: Neighbours | None = None) -> Labelled:
        """Labels of a whole frame from the descriptors of the atoms this executor
        assessed.

        ``features``: (n, D) SOAP of the frame's atoms (serial: all; an MPI rank: its own
        atoms plus a halo of :attr:`shell`, ``sub`` their indices and ``rows`` the own
        ones' positions in ``sub``), or the whole frame's on a torch device
        (:class:`~icemon.classification.device.OnDevice`, the device path);
        ``positions`` (N, 3) and ``cell``: the denoised frame in Å (None: descriptors
        already averaged, no check that needs positions runs);
        ``given``: the positions as given (exact copies of a replicated box are found
        there); ``share``: the executor; ``neighbours``: the frame's neighbour service
        (built here when None).

        Nearest reference and score of each atom; above the threshold, liquid; then, when
        the model has an ``unknown`` label, each check in turn."""
        ref = self.reference
        if neighbours is None and positions is not None:
            from icemon.geometry.neighbors import Neighbours

            neighbours = Neighbours(positions, cell)
        local_pos = positions if sub is None or positions is None else positions[sub]
        if isinstance(features, OnDevice):  # the device path: assessed where it lives
            a = features.assess()
        else:
            a = ref.assess(features, local_pos, cell, rows,
                           neighbours=neighbours if sub is None else None)
        checks = self.checks if ref.unknown >= 0 else []
        with_local = [c for c in checks if c.columns]
        out = share.gather(lambda: np.column_stack(
            [a.nearest, a.scores, a.atom_scores, *(c.local(a) for c in with_local)]))
        nearest, scores = out[:, 0].astype(np.int64), out[:, 1]
        columns, at = {}, 3
        for c in with_local:
            columns[c.name] = out[:, at:at + c.columns]
            at += c.columns
        labels = np.where(ref.far(scores), ref.liquid, nearest).astype(np.int8)
        frame = FrameLabels(labels, nearest, scores, ref, a, share, positions, cell, given,
                            neighbours, sub, rows, columns, out[:, 2])
        for c in checks:
            c.apply(frame)
        for c in checks:
            c.finish(frame)
        return Labelled(frame.labels, frame.nearest.astype(np.int8), frame.scores, out[:, 2])

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(labels, scores) of descriptors alone (no positions: no shell average, and the
        checks that need positions do not run)."""
        res = self.label_frame(features)
        return res.labels, res.scores

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = self.reference.to_arrays()
        for c in self.checks:
            out.update(c.to_arrays())
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PhaseClassifier:
        """Load by name: the reference's arrays, then every registered check whose arrays
        the file has. Raises ValueError for arrays no registered check owns."""
        reference = NearestReference.from_arrays(arrays)
        known = set(ARRAYS)
        checks = []
        for kind in registered():
            known.update(kind.arrays)
            check = kind.from_arrays(arrays, reference)
            if check is not None:
                checks.append(check)
        stray = sorted(set(arrays) - known)
        if stray:
            raise ValueError(f"classifier arrays {stray} belong to no registered check "
                             "(a model file from a newer icemon, or a check not registered)")
        return cls(reference, checks)
