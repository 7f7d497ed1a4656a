"""What a regional check is, what it sees of a frame, and the registry of checks.

A regional check changes labels by looking beyond one atom's descriptor: whether an
environment repeats elsewhere in the frame (ordered but unknown), which clathrate a region
of cages is, whether its bond network is that clathrate's framework, whether a crystal
fills its lattice's Wyckoff orbits. Each check is one class with

- its arrays for the model file (:meth:`RegionalCheck.to_arrays` /
  :meth:`RegionalCheck.from_arrays`, by name: a file without them has no such check);
- an optional per-atom :meth:`~RegionalCheck.local` step on the atoms an executor owns
  (MPI ranks each compute it for their share; the columns are gathered);
- its :meth:`~RegionalCheck.apply` on the whole frame's :class:`FrameLabels`, the same on
  every executor (deterministic: every MPI rank finds the same labels);
- its fit, beside it in its module (from synthetic data and ideal lattices only).

Checks run in :attr:`RegionalCheck.order` (:func:`registered`); :func:`register` adds one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import numpy as np

if TYPE_CHECKING:
    from icemon.classification.reference import Assessment, NearestReference
    from icemon.geometry.neighbors import Neighbours

T = TypeVar("T")
R = TypeVar("R", bound="RegionalCheck")


class Share(Protocol):
    """How a frame's per-atom work is shared: every atom here (:class:`Serial`), or a
    share of them per MPI rank (:class:`icemon.execution.mpi.Ranks`). ``fn`` computes
    this executor's own rows; an error in it is raised on every rank at the gather."""

    def gather(self, fn: Callable[[], Any], dtype: Any = np.float64) -> np.ndarray:
        """(N, w) rows of every atom, each executor computing its own (``fn``)."""
        ...

    def gather_subset(self, fn: Callable[[], Any], atoms: np.ndarray, width: int,
                      dtype: Any = np.float64) -> np.ndarray:
        """(len(atoms), width) rows of some atoms (sorted indices), each executor
        computing those it owns (``fn``, in ascending order)."""
        ...

    def own_among(self, atoms: np.ndarray) -> np.ndarray | None:
        """Positions in ``atoms`` of those this executor owns (None: all of them)."""
        ...


class Serial:
    """Every atom is this process's: gathers are the local rows themselves."""

    def gather(self, fn: Callable[[], Any], dtype: Any = np.float64) -> np.ndarray:
        out = np.asarray(fn(), dtype=dtype)
        return out.reshape(len(out), -1)

    def gather_subset(self, fn: Callable[[], Any], atoms: np.ndarray, width: int,
                      dtype: Any = np.float64) -> np.ndarray:
        return np.asarray(fn(), dtype=dtype).reshape(len(atoms), width)

    def own_among(self, atoms: np.ndarray) -> np.ndarray | None:
        return None


SERIAL = Serial()


@dataclass
class FrameLabels:
    """One frame's labels as the checks change them, and what they may look at. The same
    on every executor (the whole frame, gathered), except :attr:`assessment`, which is of
    the executor's own atoms."""

    labels: np.ndarray
    """(N,) int8 labels, changed in place by each check in turn."""
    nearest: np.ndarray
    """(N,) phase code of the nearest reference (the family vote's answer after it)."""
    scores: np.ndarray
    """(N,) decision scores (distance to the nearest reference)."""
    reference: NearestReference
    """The codes (``liquid``, ``unknown``), threshold and metric."""
    assessment: Assessment
    """The executor's own atoms' assessment (:meth:`NearestReference.assess`)."""
    share: Share = field(default_factory=Serial)
    positions: np.ndarray | None = None
    """(N, 3) Å denoised positions (None: descriptors only; checks that need positions
    do nothing)."""
    cell: np.ndarray | None = None
    """(3, 3) Å lattice vectors as rows."""
    given: np.ndarray | None = None
    """(N, 3) Å positions as given (before denoising): exact copies of a replicated box
    are found there. None: not looked for."""
    neighbours: Neighbours | None = None
    """The whole denoised frame's neighbour service (:class:`~icemon.geometry.neighbors.Neighbours`)."""
    sub: np.ndarray | None = None
    """Indices of the atoms the executor assessed (own + halo; None: all)."""
    rows: np.ndarray | None = None
    """Positions of its own atoms in :attr:`sub` (None: all)."""
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    """Gathered :meth:`RegionalCheck.local` results, by check name."""
    atom_scores: np.ndarray | None = None
    """(N,) scores of each atom's own, not averaged, descriptor (None: not given)."""


class RegionalCheck(ABC):
    """A rule that changes a frame's labels by looking beyond each atom's descriptor."""

    name: ClassVar[str]
    """Registry key, and the key of its :attr:`FrameLabels.columns`."""
    order: ClassVar[int]
    """Checks run in increasing order."""
    arrays: ClassVar[tuple[str, ...]]
    """The model-file arrays (``clf/<name>``) it owns."""
    columns: ClassVar[int] = 0
    """Width of its per-atom :meth:`local` result (0: no local step)."""
    reference: NearestReference
    """The classifier's reference (its codes: ``liquid``, ``unknown``), set by
    :meth:`bind` (a :class:`~icemon.classification.classifier.PhaseClassifier` binds its
    checks)."""

    def bind(self: R, reference: NearestReference) -> R:
        """Attach the classifier's reference; returns the check."""
        self.reference = reference
        return self

    def local(self, assessment: Assessment) -> np.ndarray:
        """(n_own, :attr:`columns`) per-atom values of the executor's own atoms."""
        raise NotImplementedError

    @abstractmethod
    def apply(self, frame: FrameLabels) -> None:
        """Change ``frame.labels`` in place."""

    def finish(self, frame: FrameLabels) -> None:
        """After every check has applied (e.g. the vote's answer into ``frame.nearest``)."""

    @abstractmethod
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Its model-file arrays, by name (a subset of :attr:`arrays`)."""

    @classmethod
    @abstractmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    reference: NearestReference) -> RegionalCheck | None:
        """The check stored in a model file's classifier ``arrays``, or None when the
        model has no such check."""


_REGISTRY: dict[str, type[RegionalCheck]] = {}

C = TypeVar("C", bound=type[RegionalCheck])


def register(cls: C) -> C:
    """Class decorator: make a check known to model files (loaded by its arrays)."""
    if not cls.name or cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"a regional check needs a unique name, got {cls.name!r}")
    owned = {a for c in _REGISTRY.values() if c is not cls for a in c.arrays}
    if owned & set(cls.arrays):
        raise ValueError(f"check {cls.name!r}: arrays {sorted(owned & set(cls.arrays))} "
                         "belong to another check")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Forget a check (tests of toy checks clean up after themselves)."""
    _REGISTRY.pop(name, None)


def registered() -> list[type[RegionalCheck]]:
    """Every known check class, in the order checks run."""
    import icemon.classification.checks  # noqa: F401 - the shipped checks register themselves

    return sorted(_REGISTRY.values(), key=lambda c: c.order)
