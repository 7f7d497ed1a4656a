"""Turn frames into the tensors :class:`~icemon.model.network.ScoreNet` takes (one or a batch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from icemon.geometry.neighbors import neighbor_list


@dataclass
class Graph:
    """A batch of periodic oxygen graphs concatenated along the atom axis."""

    pos: torch.Tensor  # (N, 3) Å
    src: torch.Tensor  # (E,) neighbour index
    dst: torch.Tensor  # (E,) centre index
    shifts: torch.Tensor  # (E, 3) Å
    batch: torch.Tensor  # (N,) structure index
    cells: np.ndarray  # (B, 3, 3) Å, lattice vectors as rows


def build_graph(
    structures: list[tuple[np.ndarray, np.ndarray]],
    cutoff: float,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Graph:
    """Graph of ``[(positions (N_k, 3) Å, cell (3, 3) Å), ...]`` within ``cutoff`` Å."""
    pos, src, dst, shifts, batch = [], [], [], [], []
    offset = 0
    for k, (p, cell) in enumerate(structures):
        i, j, s = neighbor_list(p, cell, cutoff)
        pos.append(p)
        dst.append(i + offset)
        src.append(j + offset)
        shifts.append(s)
        batch.append(np.full(len(p), k))
        offset += len(p)

    def t(x, dt):
        return torch.as_tensor(np.concatenate(x), dtype=dt, device=device)

    return Graph(t(pos, dtype), t(src, torch.long), t(dst, torch.long), t(shifts, dtype),
                 t(batch, torch.long), np.array([c for _, c in structures], dtype=np.float64))


def edges_within(pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                 shifts: torch.Tensor, cutoff: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The edges of a skin list (built at ``cutoff + skin``) that are shorter than
    ``cutoff`` Å at the current positions ``pos``; the list stays valid while the two
    largest displacements since it was built add up to less than ``skin``
    (:func:`icemon.model.denoise.skin_valid`)."""
    with torch.no_grad():
        keep = ((pos[src] + shifts - pos[dst]).norm(dim=1) < cutoff).nonzero().squeeze(1)
    return src[keep], dst[keep], shifts[keep]
