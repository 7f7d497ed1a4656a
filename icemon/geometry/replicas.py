"""Frames written as several copies of one box (LAMMPS ``replicate``, ASE ``repeat``).

The ``unknown`` label rests on translational order: an environment that repeats among
the other atoms of the frame is ordered (:func:`icemon.classification.checks.repeat.repeat_distance`).
A liquid box replicated 2×2×2 repeats every environment seven times, exactly, until MD
decorrelates the copies (a few ps), and read 13.7 % `unknown` (GCIceNet liquid frame);
written twice with a single-copy rule it read 100 % `unknown`. Those copies
are the input's own construction, not order in the water: atoms that the frame's exact
replication maps onto each other are one atom for the repeat check
(:func:`replica_groups`), so a replicated frame reads as its box does.
"""

from __future__ import annotations

import numpy as np

from icemon.geometry.frame import fractional, unit_interval

REPLICA_TOLERANCE = 0.01
"""Å. Largest mismatch between an atom shifted by a replication period and its copy:
coordinates written with 0.01 Å precision (an XTC file) still match, while thermal
motion moves atoms by tenths of Å within femtoseconds."""

MAX_REPLICAS = 16
"""Largest number of copies looked for along one cell vector."""


def replica_groups(positions: np.ndarray, cell: np.ndarray,
                   tol: float = REPLICA_TOLERANCE) -> np.ndarray | None:
    """(N,) int64 group of each atom: atoms that a translation by a fraction 1/n of a cell
    vector (n = 2 … :data:`MAX_REPLICAS`, the largest that holds) maps onto each other
    to ``tol`` Å, for every atom at once, share a group. None when no such translation
    exists (every MD frame after its first few steps, every noised or thermal frame)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    cell = np.asarray(cell, dtype=np.float64)
    s = fractional(positions, cell)
    n = len(s)
    if n < 2:
        return None
    tree = cKDTree(s, boxsize=1.0)
    probe = np.arange(min(n, 16))  # a translation that fails, fails on the first atoms

    def images(shift: np.ndarray, atoms: np.ndarray) -> np.ndarray | None:
        """Index of the atom each of ``atoms`` lands on, or None if one misses."""
        target = unit_interval(s[atoms] + shift)
        _, j = tree.query(target)
        miss = (s[j] - target + 0.5) % 1.0 - 0.5
        return j if np.linalg.norm(miss @ cell, axis=1).max() <= tol else None

    edges = []
    for axis in range(3):
        for copies in range(min(MAX_REPLICAS, n), 1, -1):
            if n % copies:
                continue
            shift = np.zeros(3)
            shift[axis] = 1.0 / copies
            if images(shift, probe) is None:
                continue
            j = images(shift, np.arange(n))
            if j is not None:
                edges.append(j)
                break
    if not edges:
        return None
    rows = np.tile(np.arange(n), len(edges))
    graph = coo_matrix((np.ones(len(rows)), (rows, np.concatenate(edges))), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)
