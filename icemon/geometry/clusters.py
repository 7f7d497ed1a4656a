"""Ice clusters of one frame: connected ice molecules, for all ices together and per phase.

Nucleation studies measure one number per frame, the size of the largest ice cluster
(brute-force nucleation, seeding, forward-flux sampling). Two ice molecules are connected
when their (denoised) oxygens are closer than :attr:`ClusterRule.cutoff` (3.5 Å: the
first minimum of water's O–O radial distribution; every ice's first shell lies inside it,
across periodic images), and a cluster is a connected set. With
:attr:`ClusterRule.min_ice_neighbours` = k > 0 only "solid-like" molecules count: those
with at least k ice neighbours (the usual cut against isolated ice-labelled molecules in
the liquid). Clusters of one phase connect molecules of that phase only.

Numpy, scipy and vesin (imported on first use: vesin loads torch where it is installed):
the analysis of a log reuses it on logged positions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from icemon.errors import ConfigError


@dataclass(frozen=True)
class ClusterRule:
    """What a cluster is.

    cutoff: Å, the largest O–O distance of two connected molecules;
    min_ice_neighbours: a molecule counts when it has at least this many ice neighbours
        (0: every ice molecule);
    min_size: clusters of at least this many molecules are counted per frame
        (``n_clusters``)."""

    cutoff: float = 3.5
    min_ice_neighbours: int = 0
    min_size: int = 10

    def __post_init__(self) -> None:
        if not (np.isfinite(self.cutoff) and 2.0 <= self.cutoff <= 6.0):
            raise ConfigError(f"cluster cutoff must be 2–6 Å (water's first shell), not "
                              f"{self.cutoff!r}")
        for name in ("min_ice_neighbours", "min_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 0:
                raise ConfigError(f"{name} must be an integer ≥ 0, not {value!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ClusterRule:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Clusters:
    """The clusters of one frame (:func:`find_clusters`)."""

    ids: np.ndarray
    """(N,) int32 cluster of each molecule, numbered by size (0 = the largest; ties by
    lowest atom index); -1 for molecules in no cluster (not ice, or not solid-like)."""
    sizes: np.ndarray
    """(C,) int64 molecules per cluster, largest first."""
    composition: np.ndarray
    """(n_phases,) int64 molecules of each phase in the largest cluster."""
    largest_by_phase: np.ndarray
    """(n_phases,) int64 the largest cluster of each phase alone (0 for phases that are
    not ice)."""
    rule: ClusterRule = field(default_factory=ClusterRule)

    @property
    def largest(self) -> int:
        """Molecules in the largest cluster (0: no ice)."""
        return int(self.sizes[0]) if len(self.sizes) else 0

    @property
    def n_clusters(self) -> int:
        """Clusters of at least :attr:`ClusterRule.min_size` molecules."""
        return int((self.sizes >= self.rule.min_size).sum())


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected component of each of ``n`` nodes joined by the pairs (i, j)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _numbered(component: np.ndarray, members: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (N,) numbered by size, largest first, ties by lowest atom index, and
    the sizes; ``component`` labels the atoms ``members``."""
    ids = np.full(n, -1, dtype=np.int32)
    if not len(members):
        return ids, np.zeros(0, dtype=np.int64)
    sizes = np.bincount(component)
    first = np.full(len(sizes), n, dtype=np.int64)
    np.minimum.at(first, component, members)
    order = np.lexsort((first, -sizes))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    ids[members] = rank[component]
    return ids, sizes[order].astype(np.int64)


def find_clusters(positions: np.ndarray, cell: np.ndarray, labels: np.ndarray,
                  ice: np.ndarray, n_phases: int, rule: ClusterRule | None = None) -> Clusters:
    """The ice clusters of a frame.

    Args:
        positions: (N, 3) Å (denoised oxygens); cell: (3, 3) Å, lattice vectors as rows.
        labels: (N,) phase codes; ice: (N,) bool, the molecules labelled with an ice.
        n_phases: length of the phase vocabulary.
        rule: what a cluster is (default :class:`ClusterRule`)."""
    from icemon.geometry.neighbors import neighbor_pairs  # vesin loads torch: not at import

    rule = rule or ClusterRule()
    labels = np.asarray(labels, dtype=np.int64)
    ice = np.asarray(ice, dtype=bool)
    n = len(labels)
    members = np.flatnonzero(ice)
    i = j = np.zeros(0, dtype=np.int64)
    if len(members):
        i, j, _ = neighbor_pairs(np.asarray(positions, dtype=np.float64)[members],
                                 np.asarray(cell, dtype=np.float64), rule.cutoff)
    if rule.min_ice_neighbours > 0 and len(members):
        # ice neighbours of each ice molecule, periodic images each a molecule of their
        # own (a small cell's atom sees its neighbours, and itself, as images)
        solid = np.bincount(i, minlength=len(members)) >= rule.min_ice_neighbours
        local = np.flatnonzero(solid)
        remap = np.full(len(members), -1, dtype=np.int64)
        remap[local] = np.arange(len(local))
        both = solid[i] & solid[j]
        i, j = remap[i[both]], remap[j[both]]
        members = members[local]
    keep = i != j  # an atom's own image joins nothing new
    i, j = i[keep], j[keep]
    component = _components(len(members), i, j) if len(members) else np.zeros(0, np.int64)
    ids, sizes = _numbered(component, members, n)
    composition = np.zeros(n_phases, dtype=np.int64)
    if len(sizes):
        composition = np.bincount(labels[ids == 0], minlength=n_phases)[:n_phases]
    by_phase = np.zeros(n_phases, dtype=np.int64)
    member_labels = labels[members]
    for code in np.unique(member_labels):
        same = (member_labels[i] == code) & (member_labels[j] == code)
        mine = np.flatnonzero(member_labels == code)
        remap = np.full(len(members), -1, dtype=np.int64)
        remap[mine] = np.arange(len(mine))
        comp = _components(len(mine), remap[i[same]], remap[j[same]])
        by_phase[code] = np.bincount(comp).max()
    return Clusters(ids, sizes, composition, by_phase, rule)
