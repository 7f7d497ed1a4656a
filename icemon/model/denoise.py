"""Iterative denoising r ← r − ε_θ(r) (Sun et al., Algorithm 2's pre-processing step)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from icemon.geometry.frame import FrameError, minimum_image, wrap
from icemon.model.graph import build_graph, edges_within
from icemon.model.network import Compiled, ScoreNet, resolve_compile


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


MAX_SPACING = 4.0
"""Å. Median nearest O–O distance above which a frame is refused: condensed water and every
ice have 2.5–3.0 Å (a slab beside vacuum too: the median is over atoms, not volume); coordinates
in Bohr read as Å give 5.3 Å, and a gas is nothing icemon can classify."""


def check_input(pos: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, shifts: torch.Tensor,
                centres: int | None = None) -> None:
    """The units check both ways, from one pass over a neighbour list (edges ``src`` →
    ``dst``, every pair closer than the list's radius): :class:`FrameError` if two atoms are
    closer than :data:`MIN_DISTANCE` (duplicated atoms, nm read as Å), or if the centres'
    median nearest-neighbour distance (atoms without one in the list count as infinitely
    far) exceeds :data:`MAX_SPACING` (Bohr read as Å). ``centres``: only the first rows are
    the list's centres (an MPI rank's own atoms)."""
    n = len(pos)
    nearest = torch.full((n,), float("inf"), dtype=pos.dtype, device=pos.device)
    if src.numel():
        r = (pos[src] + shifts - pos[dst]).norm(dim=1)
        k = int(torch.argmin(r))
        if float(r[k]) < MIN_DISTANCE:
            raise FrameError(f"atoms {int(dst[k])} and {int(src[k])} (rows) are only "
                             f"{float(r[k]):.2f} Å apart: overlapping oxygens (duplicated "
                             "atoms, zeroed coordinates or wrong length units?)")
        nearest = nearest.scatter_reduce(0, dst, r, reduce="amin")
    nearest = nearest if centres is None else nearest[:centres]
    median = float(nearest.median()) if len(nearest) else 0.0
    if median > MAX_SPACING:
        raise FrameError(f"the median nearest O–O distance is {median:.2f} Å, far sparser than "
                         "any condensed water (2.5–3.0 Å): wrong length units (Bohr read as Å "
                         "gives 5.3 Å)? Give positions and cell in Å")


def check_finite(eps: torch.Tensor) -> None:
    """Raise :class:`FrameError` for non-finite network output (never labels from it)."""
    if not bool(torch.isfinite(eps).all()):
        raise FrameError("the score network gave non-finite displacements for this frame "
                         "(NaN or infinity): it is recorded as an error, not classified")


MAX_CANDIDATE_PAIRS = 4096
"""Pairs that :func:`skin_valid` checks one by one before it gives up and asks for a
rebuild (many fast atoms: the list is probably stale anyway)."""


def skin_valid(pos: torch.Tensor, built_at: torch.Tensor, skin: float,
               cell: np.ndarray | None = None, cutoff: float | None = None) -> bool:
    """Whether a list built at ``cutoff + skin`` on ``built_at`` still holds every pair
    closer than ``cutoff`` at ``pos``.

    A pair's distance changes by at most the sum of its two atoms' displacements, so a
    pair missing from the list can be inside the cutoff now only if its two displacements
    add up to more than ``skin``. When the two largest displacements do not (Verlet's rule;
    "every atom moved < skin / 2" is the stricter special case), the list holds. Otherwise,
    given ``cell`` and ``cutoff``, the few pairs that do are measured directly (every
    periodic image): the list still holds when none of them is inside the cutoff. On
    thermal frames the first pass moves a handful of atoms by 0.5–0.7 Å, far apart from
    each other, which the two-largest rule alone reads as a stale list."""
    moved = (pos - built_at).norm(dim=1)
    if moved.numel() < 2:
        return True
    if float(torch.topk(moved, 2).values.sum()) < skin:
        return True
    if cell is None or cutoff is None:
        return False
    d = moved.double().cpu().numpy()
    order = np.argsort(-d, kind="stable")
    ds = d[order]
    # partners of the a-th fastest atom: the slower atoms b > a with ds[a] + ds[b] >= skin
    fast = int(np.count_nonzero(ds >= 0.5 * skin))
    ends = np.searchsorted(-ds, -(skin - ds[:fast]), side="right")
    counts = np.maximum(ends - np.arange(fast) - 1, 0)
    if counts.sum() == 0:
        return True
    if counts.sum() > MAX_CANDIDATE_PAIRS:
        return False
    cell = np.asarray(cell, dtype=np.float64)
    # after the minimum image, an image two cells away along a lattice direction is
    # ≥ 1.5 plane spacings off: the 27 nearest images hold every one inside a cutoff below
    if cutoff >= 1.5 / np.linalg.norm(np.linalg.inv(cell), axis=0).max():
        return False
    a = np.repeat(np.arange(fast), counts)
    b = np.concatenate([np.arange(k + 1, e) for k, e in enumerate(ends)])
    x = pos.double().cpu().numpy()
    nearest = minimum_image(x[order[b]] - x[order[a]], cell)
    images = np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T @ cell
    r = np.linalg.norm(nearest[:, None, :] + images[None], axis=2).min(axis=1)
    return bool((r >= cutoff).all())


class Denoiser:
    """Applies a trained :class:`ScoreNet` until the largest step is below ``tol`` Å
    or ``max_steps`` updates were made.

    One neighbour list per frame, built at ``cutoff + skin`` Å, serves every pass while the
    two largest displacements since it was built add up to less than ``skin``, or while the
    few pairs whose displacements do are measured outside the cutoff (:func:`skin_valid`:
    no pair can then have come inside the cutoff unseen; otherwise it is rebuilt); positions stay on the
    device in the network's precision (float32) between passes. The default skin, 1.2 Å,
    covers the first pass on thermal frames (largest steps 0.3–0.6 Å on the GCIceNet
    frames), so two passes use one list.

    ``compile`` runs the network through ``torch.compile`` (:class:`Compiled`): same
    numbers to float32 rounding, faster once compiled; None: the default
    (:func:`~icemon.model.network.resolve_compile`: compiled unless ``$ICEMON_COMPILE=0``)."""

    def __init__(self, model: ScoreNet, max_steps: int = 8, tol: float = 0.01,
                 device: str | torch.device = "cpu", skin: float = 1.2,
                 compile: bool | None = None, lists_on_device: bool | None = None) -> None:
        self.model = model.eval().to(device)
        compile = resolve_compile(compile)
        self.compiled = compile
        self.net = Compiled(self.model, "forward pass") if compile else self.model
        """What runs the network on a whole frame (compiled or not)."""
        self.embed = Compiled(self.model.embed, "embedding") if compile else self.model.embed
        self.blocks = ([Compiled(b, f"block {k}") for k, b in enumerate(self.model.layers)]
                       if compile else list(self.model.layers))
        """The network piece by piece (:attr:`embed`, :attr:`blocks`, :attr:`readout`), for
        :mod:`icemon.execution.mpi`, which exchanges node features between the blocks;
        compiled lazily, so unused here otherwise."""
        self.readout = self.model.readout
        self.max_steps = int(max_steps)
        self.tol = float(tol)
        self.device = torch.device(device)
        self.skin = float(skin)
        self.lists_on_device = (self.device.type != "cpu" if lists_on_device is None
                                else bool(lists_on_device))
        """Build the neighbour lists where the network runs (torch cell list,
        :mod:`icemon.geometry.device_neighbors`) instead of on the host (vesin): the device
        path, where positions never leave the device between passes. Default: on any
        device but the CPU."""

    @property
    def cutoff(self) -> float:
        """Å, the network's graph cutoff."""
        return float(self.model.config.cutoff)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def _graph(self, positions: np.ndarray | torch.Tensor, cell: np.ndarray, skin: float
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pos, src, dst, shifts) of the list at ``cutoff + skin`` Å, on the device:
        built there (:attr:`lists_on_device`) or on the host and copied."""
        radius = self.model.config.cutoff + skin
        if self.lists_on_device:
            from icemon.geometry.device_neighbors import device_pairs

            pos = torch.as_tensor(positions, dtype=self.dtype, device=self.device)
            i, j, shifts = device_pairs(pos, cell, radius)
            return pos, j, i, shifts
        g = build_graph([(np.asarray(positions), cell)], radius, self.dtype, self.device)
        return g.pos, g.src, g.dst, g.shifts

    @torch.no_grad()
    def epsilon(self, positions: np.ndarray, cell: np.ndarray,
                timings: list[float] | None = None, check: bool = False) -> np.ndarray:
        """ε_θ(r): predicted displacement (N, 3) in Å of every atom.

        ``timings``, if given, receives [neighbour-list seconds, network seconds];
        ``check`` runs the input checks (:func:`check_input`)."""
        t0 = time.perf_counter()
        g = self._graph(positions, cell, 0.0)
        if check:
            check_input(*g)
        t1 = time.perf_counter()
        eps = self.net(*g).double().cpu().numpy()
        if timings is not None:
            timings[0] += t1 - t0
            timings[1] += time.perf_counter() - t1
        return eps

    @torch.no_grad()
    def __call__(self, positions: np.ndarray, cell: np.ndarray,
                 max_steps: int | None = None) -> DenoiseResult:
        n = self.max_steps if max_steps is None else int(max_steps)
        cutoff = self.model.config.cutoff
        start = wrap(np.asarray(positions, dtype=np.float64), cell)
        history: list[float] = []
        t_nl = t_net = 0.0
        # the input checks (both unit directions) run whatever the number of passes
        t0 = time.perf_counter()
        pos, *g = self._graph(start, cell, self.skin)
        built_at = pos
        check_input(pos, *g)
        src, dst, shifts = edges_within(pos, *g, cutoff)
        t_nl += time.perf_counter() - t0
        # on the device path a stale list is rebuilt there rather than checked pair by
        # pair on the host (skin_valid's second rule copies positions to the host)
        slow_rule = () if self.lists_on_device else (cell, cutoff)
        for k in range(n):
            t0 = time.perf_counter()
            if k > 0:
                if not skin_valid(pos, built_at, self.skin, *slow_rule):  # else rebuild
                    pos, *g = self._graph(pos if self.lists_on_device
                                          else pos.double().cpu().numpy(), cell, self.skin)
                    built_at = pos
                src, dst, shifts = edges_within(pos, *g, cutoff)
            t1 = time.perf_counter()
            eps = self.net(pos, src, dst, shifts)
            check_finite(eps)
            pos = pos - eps
            history.append(float(eps.norm(dim=1).max()))
            t2 = time.perf_counter()
            t_nl += t1 - t0
            t_net += t2 - t1
            if history[-1] < self.tol:
                break
        out = start if not history else pos.double().cpu().numpy()
        return DenoiseResult(wrap(out, cell), len(history), history, t_nl, t_net)
