"""Periodic neighbour lists through vesin (compiled, ~0.2 s for 100k atoms at 5 Å)."""

from __future__ import annotations

import numpy as np
from vesin import NeighborList


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray, cutoff: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full periodic neighbour list within ``cutoff`` (Å).

    Returns:
        (i, j, shifts): int64 centre and neighbour indices, and the (E, 3) Cartesian
        image offsets (Å) such that ``r_ij = positions[j] + shifts - positions[i]``.
    """
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    i, j, s = nl.compute(
        points=np.ascontiguousarray(positions, dtype=np.float64),
        box=np.ascontiguousarray(cell, dtype=np.float64),
        periodic=True,
        quantities="ijS",
    )
    shifts = s.astype(np.float64) @ np.asarray(cell, dtype=np.float64)
    return i.astype(np.int64), j.astype(np.int64), shifts
