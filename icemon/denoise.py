"""Iterative denoising r ← r − ε_θ(r) (Sun et al., Algorithm 2's pre-processing step)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .frame import FrameError, wrap
from .graph import build_graph
from .model import ScoreNet


@dataclass
class DenoiseResult:
    positions: np.ndarray
    """(N, 3) denoised positions in Å (wrapped into the cell)."""
    n_steps: int
    """Number of r ← r − ε(r) updates applied."""
    max_step: list[float]
    """Largest per-atom displacement |ε| (Å) of every update."""
    seconds_neighbors: float = 0.0
    """Wall time spent building neighbour lists (s)."""
    seconds_network: float = 0.0
    """Wall time spent in the score network (s)."""


MIN_DISTANCE = 1.0
"""Å. Two oxygens closer than this are not water (O–O contacts are ≳ 2.3 Å even in ice
VII): the input is wrong (duplicated atoms, zeroed coordinates, wrong units)."""


def check_overlaps(pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor,
                   shifts: torch.Tensor) -> None:
    """Raise :class:`FrameError` if two atoms are closer than :data:`MIN_DISTANCE`."""
    if src.numel() == 0:
        return
    r = (pos[src] + shifts - pos[dst]).norm(dim=1)
    k = int(torch.argmin(r))
    if float(r[k]) < MIN_DISTANCE:
        raise FrameError(f"atoms {int(dst[k])} and {int(src[k])} (rows) are only "
                         f"{float(r[k]):.2f} Å apart: overlapping oxygens (duplicated atoms, "
                         "zeroed coordinates or wrong length units?)")


class Denoiser:
    """Applies a trained :class:`ScoreNet` until the largest step is below ``tol`` Å
    or ``max_steps`` updates were made."""

    def __init__(self, model: ScoreNet, max_steps: int = 8, tol: float = 0.01,
                 device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.max_steps = int(max_steps)
        self.tol = float(tol)
        self.device = torch.device(device)

    @torch.no_grad()
    def epsilon(self, positions: np.ndarray, cell: np.ndarray,
                timings: list[float] | None = None, check: bool = False) -> np.ndarray:
        """ε_θ(r): predicted displacement (N, 3) in Å of every atom.

        ``timings``, if given, receives [neighbour-list seconds, network seconds];
        ``check`` raises :class:`FrameError` for overlapping atoms."""
        t0 = time.perf_counter()
        dtype = next(self.model.parameters()).dtype
        g = build_graph([(positions, cell)], self.model.config.cutoff, dtype, self.device)
        if check:
            check_overlaps(g.pos, g.src, g.dst, g.shifts)
        t1 = time.perf_counter()
        eps = self.model(g.pos, g.src, g.dst, g.shifts).double().cpu().numpy()
        if timings is not None:
            timings[0] += t1 - t0
            timings[1] += time.perf_counter() - t1
        return eps

    def __call__(self, positions: np.ndarray, cell: np.ndarray,
                 max_steps: int | None = None) -> DenoiseResult:
        n = self.max_steps if max_steps is None else int(max_steps)
        pos = wrap(np.asarray(positions, dtype=np.float64), cell)
        history: list[float] = []
        timings = [0.0, 0.0]
        for k in range(n):
            eps = self.epsilon(pos, cell, timings, check=k == 0)
            pos = pos - eps
            history.append(float(np.sqrt((eps**2).sum(axis=1)).max()))
            if history[-1] < self.tol:
                break
        return DenoiseResult(wrap(pos, cell), len(history), history, *timings)
