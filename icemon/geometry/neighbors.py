"""Periodic neighbour lists through vesin (compiled, ~0.2 s for 100k atoms at 5 Å)."""

from __future__ import annotations

import numpy as np
from vesin import NeighborList


def neighbor_pairs(
    positions: np.ndarray, cell: np.ndarray, cutoff: float, centres: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full periodic neighbour list within ``cutoff`` (Å), image offsets as integers.

    ``centres``: an (N,) bool mask; only the pairs centred on those atoms are returned (an
    MPI rank needs its own atoms' neighbours among its own atoms plus a halo).

    Returns:
        (i, j, images): centre and neighbour indices and the (E, 3) integer cell images
        such that ``r_ij = positions[j] + images @ cell - positions[i]`` (a caller that
        keeps only some pairs converts only those to Å).
    """
    # vesin's half list, mirrored: every pair is found once instead of twice (measured on
    # 8,064 O at 5.3 Å: 6.6–7.0 ms against 9.9 ms for vesin's full list; same pairs)
    nl = NeighborList(cutoff=float(cutoff), full_list=False)
    i, j, s = nl.compute(
        points=np.ascontiguousarray(positions, dtype=np.float64),
        box=np.ascontiguousarray(cell, dtype=np.float64),
        periodic=True,
        quantities="ijS",
    )
    i, j = i.view(np.int64), j.view(np.int64)  # vesin's uint64 indices, without a copy
    if centres is None:
        return np.concatenate([i, j]), np.concatenate([j, i]), np.concatenate([s, -s])
    fwd, bwd = np.flatnonzero(centres[i]), np.flatnonzero(centres[j])
    return (np.concatenate([i[fwd], j[bwd]]), np.concatenate([j[fwd], i[bwd]]),
            np.concatenate([s.take(fwd, axis=0), -s.take(bwd, axis=0)]))


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full periodic neighbour list within ``cutoff`` (Å).

    Returns:
        (i, j, shifts): int64 centre and neighbour indices, and the (E, 3) Cartesian
        image offsets (Å) such that ``r_ij = positions[j] + shifts - positions[i]``.
    """
    i, j, s = neighbor_pairs(positions, cell, cutoff)
    return i, j, s.astype(np.float64) @ np.asarray(cell, dtype=np.float64)
