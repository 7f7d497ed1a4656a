"""One frame's work shared by MPI ranks, the way PLUMED shares per-atom work.

Every rank holds the whole frame (the hook all-gathers the oxygens: 8,064 O are 190 kB)
and owns a spatially compact share of its atoms (:class:`Decomposition`: k-d cuts in
fractional coordinates, equal counts per rank, a grid of shares chosen for the smallest
halos). Each rank then does the per-atom work of its own atoms only:

- **denoising**: every pass, the score network runs block by block on the rank's own
  atoms plus a halo one graph cutoff wide (their neighbours in a skin list, cutoff +
  skin, that serves every pass while valid, as in the serial :class:`Denoiser`); after
  each block the new node features of the own atoms are all-gathered (``Allgatherv``),
  so each block sees exact neighbour features and computes messages only towards its
  own atoms. The alternative, a halo
  ``n_layers × cutoff`` deep with no exchange inside the network, repeats the halo's work
  on every rank: on the 8,064-O benchmark box split in two it is 83 % of all atoms per
  rank against 61 % for one cutoff (measured with :meth:`Decomposition.halo`), so
  per-block exchange it is. The updated
  positions are all-gathered after every pass; the stopping rule is an ``allreduce``
  (for models that can stop early, tol > 0; the shipped one always makes its passes).
- **SOAP**: one call per rank (:meth:`Soap.plain`, compiled or dscribe; dscribe gets the
  own atoms as centres by position, which is linear) in the own atoms plus a halo of the
  descriptor's reach (``r_cut`` + dscribe's padding); rows of the own atoms are
  all-gathered. Each rank describes only its own atoms (describing its halo too,
  all-atoms mode, cost 69-72 % of the 8,064-O box per rank on 2 ranks, because centres
  by index cost centres × atoms).
- **classification**: shell averaging and the nearest-reference search for the own atoms;
  labels and scores are all-gathered, so every rank returns the same :class:`Result`.

Collective errors: every exchange first all-gathers each rank's error (or None); if any
rank failed, every rank raises the same :class:`CollectiveError` at the same point, so no
rank is ever left waiting in a collective and the frame is skipped everywhere. A rank that
fails between exchanges (neighbour list, embedding, a block, readout) skips the rest of
that work and hands its error to the next exchange, so errors cost no collectives of
their own.

Results equal the serial pipeline's: the same float32 arithmetic on the same edges, up
to the order of floating-point sums (labels identical; denoised positions measured within
1.3e-5 Å on an ice|liquid mW slab, see tests/test_parallel.py).

Size: the decomposition, the error-aware collectives and the sharded denoising pass are
one protocol (every rank must reach every exchange in the same order), kept in one module
so that it reads in that order.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from icemon.descriptors.soap import finite_descriptors
from icemon.errors import IcemonError
from icemon.geometry.frame import Frame, fractional, wrap
from icemon.geometry.neighbors import neighbor_pairs
from icemon.model.denoise import (
    DenoiseResult,
    check_finite,
    check_input,
    skin_valid,
)
from icemon.model.graph import edges_within

if TYPE_CHECKING:
    from icemon.descriptors.soap import Soap
    from icemon.model.denoise import Denoiser

MARGIN = 0.1
"""Å added to every halo besides the largest distance an own atom has moved from where
the shares were cut (denoising moves atoms ≲ 0.3 Å; each rank widens its halos by what
its own atoms actually moved)."""


class CollectiveError(IcemonError, RuntimeError):
    """A rank failed on a frame; raised on every rank at the same point."""


@dataclass
class Decomposition:
    """Spatially compact, equal-count shares of a frame's atoms, one per rank.

    The cell is cut along its lattice directions into ``grid`` = (p0, p1, p2) shares
    (p0·p1·p2 = ranks) by k-d cuts: the atoms are split into p0 equal-count slabs along
    fractional coordinate 0, each slab into p1 along coordinate 1, and so on, so every
    share is a box in fractional coordinates (:attr:`bounds`)."""

    owner: np.ndarray
    """(N,) rank that owns each atom."""
    bounds: np.ndarray
    """(P, 3, 2) fractional [lo, hi] of each share along each lattice direction (closed:
    atoms on a cut, as in ideal lattices, may fall on either side of it)."""
    heights: np.ndarray
    """(3,) Å distance between opposite cell faces (plane spacing) per direction."""
    grid: tuple[int, int, int]

    @classmethod
    def build(cls, positions: np.ndarray, cell: np.ndarray, size: int,
              halo: float = 6.0) -> Decomposition:
        """Shares of ``positions`` (Å) for ``size`` ranks; the grid minimises the halo
        volume for a halo ``halo`` Å wide."""
        frac = fractional(positions, cell)
        heights = 1.0 / np.linalg.norm(np.linalg.inv(cell), axis=0)
        grid = best_grid(size, heights, halo)
        owner = np.zeros(len(frac), dtype=np.int64)
        bounds = np.zeros((size, 3, 2))
        bounds[:, :, 1] = 1.0
        groups = [(np.arange(len(frac)), np.array([[0.0, 1.0]] * 3))]
        for axis, parts in enumerate(grid):
            nxt = []
            for idx, box in groups:
                if parts == 1:
                    nxt.append((idx, box))
                    continue
                # equal counts, as np.array_split gives them; a partition, not a sort
                sizes = np.full(parts, len(idx) // parts)
                sizes[:len(idx) % parts] += 1
                kth = np.cumsum(sizes)[:-1]
                order = idx[np.argpartition(frac[idx, axis], kth)] if len(idx) > parts \
                    else idx
                pieces = np.split(order, kth)
                for k, piece in enumerate(pieces):
                    b = box.copy()
                    if k > 0:
                        b[axis, 0] = _cut(frac[pieces[k - 1], axis], frac[piece, axis],
                                          box[axis, 0])
                    if k < parts - 1:
                        b[axis, 1] = _cut(frac[piece, axis], frac[pieces[k + 1], axis],
                                          box[axis, 0])
                    nxt.append((piece, b))
            groups = nxt
        for rank, (idx, box) in enumerate(groups):
            owner[idx] = rank
            bounds[rank] = box
        return cls(owner, bounds, heights, grid)

    @property
    def size(self) -> int:
        return len(self.bounds)

    def own(self, rank: int) -> np.ndarray:
        """Sorted indices of the atoms ``rank`` owns."""
        return np.flatnonzero(self.owner == rank)

    def halo(self, rank: int, positions: np.ndarray, cell: np.ndarray,
             width: float) -> np.ndarray:
        """Sorted indices of the atoms ``rank`` owns plus every atom within ``width`` Å
        of its share's box (a superset of the atoms within ``width`` of its own atoms,
        periodic images included)."""
        frac = fractional(positions, cell)
        keep = self.owner == rank
        inside = np.ones(len(frac), dtype=bool)
        for axis in range(3):
            lo, hi = self.bounds[rank, axis]
            w = width / self.heights[axis]
            if hi - lo + 2 * w >= 1.0:
                continue  # the halo wraps around the whole cell along this direction
            f = frac[:, axis]
            inside &= ((f - (lo - w)) % 1.0) < (hi - lo + 2 * w)
        return np.flatnonzero(keep | inside)


def _cut(below: np.ndarray, above: np.ndarray, empty: float) -> float:
    """A fractional coordinate between two groups of atoms sorted along an axis (``empty``
    when both are empty: shares of ranks that own no atom, with fewer atoms than ranks)."""
    if len(below) and len(above):
        return 0.5 * (float(below.max()) + float(above.min()))
    if len(below) or len(above):
        return float(below.max() if len(below) else above.min())
    return float(empty)


def best_grid(size: int, heights: np.ndarray, halo: float) -> tuple[int, int, int]:
    """The factorisation p0·p1·p2 = ``size`` with the smallest halo volume per share,
    Π (1 + 2·halo·p_i / h_i) over the cut directions (h: plane spacings in Å)."""
    best, cost = (size, 1, 1), np.inf
    for p0, p1 in itertools.product(range(1, size + 1), repeat=2):
        if size % (p0 * p1):
            continue
        grid = (p0, p1, size // (p0 * p1))
        c = float(np.prod([1 + 2 * halo * p / h if p > 1 else 1.0
                           for p, h in zip(grid, heights)]))
        if c < cost - 1e-12:
            best, cost = grid, c
    return best


class Shared:
    """The collective operations of one frame on one rank, each error-aware."""

    def __init__(self, comm: Any, dec: Decomposition) -> None:
        self.comm = comm
        self.rank = comm.rank
        self.dec = dec
        self.own = dec.own(self.rank)
        self.counts = np.bincount(dec.owner, minlength=dec.size).astype(np.int64)
        self.order = np.argsort(dec.owner, kind="stable")
        """Global index of each row of an all-gathered array (ranks' rows in rank order,
        each rank's in ascending index, as :meth:`Decomposition.own` gives them)."""
        self.slot = np.empty_like(self.order)
        self.slot[self.order] = np.arange(len(self.order))
        """Row of each atom (global index) in an all-gathered array."""

    def check(self, error: str | None) -> None:
        """Raise :class:`CollectiveError` on every rank if any rank reports an error."""
        errors = [e for e in self.comm.allgather(error) if e]
        if errors:
            raise CollectiveError("; ".join(errors))

    def rows(self, local: np.ndarray | None, error: str | None = None,
             dtype: Any = np.float64, at: np.ndarray | None = None) -> np.ndarray:
        """All ranks' own rows (``local``: (n_own, width)) assembled into (N, width) in
        global atom order, after :meth:`check`; with ``at`` (rows of the gathered array,
        :attr:`slot` of the atoms wanted), only those rows, in that order (one gather
        instead of reordering every row first)."""
        if error is None:
            local = np.ascontiguousarray(local, dtype=dtype)
        # the row width travels with the error check: a rank that owns no atom (fewer
        # atoms than ranks) cannot infer it from its empty rows
        own_width = local.size // len(self.own) if error is None and len(self.own) else None
        reports = self.comm.allgather((error, own_width))
        errors = [e for e, _ in reports if e]
        if errors:
            raise CollectiveError("; ".join(errors))
        width = next((w for _, w in reports if w is not None), 0)
        local = local.reshape(len(self.own), width)
        out = np.empty((int(self.counts.sum()), width), dtype=dtype)
        self.comm.Allgatherv(local, (out, self.counts * width))
        if at is not None:
            return out[at]
        full = np.empty_like(out)
        full[self.order] = out
        return full


def attempt(fn: Callable[[], Any], rank: int) -> tuple[Any, str | None]:
    """``(fn(), None)``, or ``(None, "rank r: Error: message")`` if it raised."""
    try:
        return fn(), None
    except Exception as exc:  # noqa: BLE001 - reported collectively by Shared.check
        return None, f"rank {rank}: {type(exc).__name__}: {exc}"


@dataclass
class LocalGraph:
    """One rank's skin neighbour list: edges towards its own atoms within ``cutoff + skin``
    of the positions ``built_at`` (all atoms, float32), over the atoms ``sub`` (own +
    halo). It serves every pass while the two largest displacements of *all* atoms since
    it was built add up to less than the skin (:func:`skin_valid`; every rank holds all
    positions, so every rank takes the same decision)."""

    sub: np.ndarray
    """Global indices of the list's atoms: the own atoms first (ascending), then the halo
    atoms that are neighbours of own atoms."""
    n_own: int
    """How many own atoms (the first rows of :attr:`sub`)."""
    src: torch.Tensor
    dst: torch.Tensor
    shifts: torch.Tensor
    built_at: torch.Tensor
    gathered: np.ndarray
    """Row of each atom of :attr:`sub` in an all-gathered array (:attr:`Shared.slot`)."""


def _local_graph(den: Denoiser, shared: Shared, pos: np.ndarray, moved: float,
                 cell: np.ndarray) -> LocalGraph:
    """The rank's skin list on ``pos``; ``moved``: how far (Å) any own atom is from where
    the shares were cut. The halo is ``cutoff + skin`` wide beyond that, so it holds every
    atom that can come within the cutoff of an own atom while the list is valid."""
    reach = den.cutoff + den.skin
    sub = shared.dec.halo(shared.rank, pos, cell, reach + moved + MARGIN)
    # the pairs centred on own atoms, filtered before anything is converted to Å or torch
    own_local = np.searchsorted(sub, shared.own)
    is_own = np.zeros(len(sub), dtype=bool)
    is_own[own_local] = True
    i, j, images = neighbor_pairs(pos[sub].astype(np.float64), cell, reach, centres=is_own)
    # only the own atoms and their list neighbours carry features the blocks read; the
    # own atoms come first, so that a block updates just its first rows
    used = np.zeros(len(sub), dtype=bool)
    used[j] = True
    used &= ~is_own
    order = np.concatenate([own_local, np.flatnonzero(used)])
    index = np.empty(len(sub), dtype=np.int64)
    index[order] = np.arange(len(order))
    shifts = images.astype(np.float64) @ np.asarray(cell, dtype=np.float64)

    def t(x, dtype):
        return torch.as_tensor(x, dtype=dtype, device=den.device)

    return LocalGraph(sub[order], len(own_local), t(index[j], torch.long),
                      t(index[i], torch.long), t(shifts, den.dtype),
                      torch.as_tensor(pos, device=den.device),
                      shared.slot[sub[order]])


def _pass(den: Denoiser, shared: Shared, pos: np.ndarray, graph: LocalGraph | None,
          moved: float, cell: np.ndarray, check: bool
          ) -> tuple[np.ndarray | None, LocalGraph | None, str | None]:
    """One denoising pass of the own atoms: ε (n_own, 3) float32, blocks exchanged, the
    skin list it used (``graph``, reused if still valid, else rebuilt), and this rank's
    error (then ε is None). Errors travel with the next exchange, whose check raises on
    every rank (the block exchanges here; after the last block, the caller's gather of
    the new positions), so a pass costs no collective of its own.
    ``moved``: how far (Å) any own atom is from where the shares were cut."""
    rank = shared.rank
    cutoff = den.cutoff

    def edges():
        g = graph
        now = torch.as_tensor(pos, device=den.device)
        if g is None or not skin_valid(now, g.built_at, den.skin, cell, cutoff):
            g = _local_graph(den, shared, pos, moved, cell)
        p = now[torch.as_tensor(g.sub, device=den.device)]
        if check:
            check_input(p, g.src, g.dst, g.shifts, g.n_own)
        src, dst, shifts = edges_within(p, g.src, g.dst, g.shifts, cutoff)
        return g, p, src, dst, shifts

    result, error = attempt(edges, rank)
    graph, p, src, dst, shifts = result if error is None else (None,) * 5
    sh = basis = x = eps = None
    with torch.no_grad():
        if error is None:
            embedded, error = attempt(lambda: den.embed(p, src, dst, shifts), rank)
            if error is None:
                sh, basis, x = embedded
        for k, layer in enumerate(den.blocks):
            if error is None:
                # the own atoms are the first rows: only they are updated here
                x, error = attempt(lambda f=layer, x=x: f(x, sh, basis, src, dst,
                                                         x[:graph.n_own]), rank)
            if k == len(den.blocks) - 1:
                break
            own_rows = None if error is not None else x.cpu().numpy()
            x = torch.as_tensor(shared.rows(own_rows, error, dtype=np.float32,
                                            at=None if graph is None else graph.gathered),
                                device=den.device)
        if error is None:
            eps, error = attempt(lambda: _finite(den.readout(x)).cpu().numpy(), rank)
    return eps, graph, error


class Ranks(Shared):
    """The ranks of a communicator sharing one frame: the denoising and SOAP strategies
    of a share (above) and the :class:`~icemon.classification.checks.Share` gathers the
    labelling path uses (:meth:`PhaseClassifier.label_frame`). Every rank calls
    :meth:`Pipeline.process` with the same frame and gets the same result."""

    def __init__(self, comm: Any, dec: Decomposition, start: np.ndarray) -> None:
        super().__init__(comm, dec)
        self.start = start
        """(N, 3) Å the frame's positions wrapped into the cell (where shares were cut)."""
        self.moved = 0.0
        """Å, how far any own atom is from where the shares were cut (after denoising)."""

    @classmethod
    def for_frame(cls, comm: Any, frame: Frame, halo: float) -> Ranks:
        """Shares of ``frame`` for the ranks of ``comm`` (grid chosen for a halo of
        ``halo`` Å, the SOAP cutoff)."""
        start = wrap(frame.positions, frame.cell)
        return cls(comm, Decomposition.build(start, frame.cell, comm.size, halo), start)

    def denoise(self, den: Denoiser, frame: Frame) -> DenoiseResult:
        """Every pass on the own atoms (block features exchanged), positions gathered
        after each; float32 between passes, as the serial :class:`Denoiser` keeps them."""
        cell, start, own = frame.cell, self.start, self.own
        pos = start.astype(np.float32)
        history: list[float] = []
        t_net = 0.0
        graph: LocalGraph | None = None
        if den.max_steps == 0:  # the input checks run whatever the number of passes
            self.check(attempt(lambda: _check_input(den, self, pos, cell), self.rank)[1])
        for k in range(den.max_steps):
            t1 = time.perf_counter()
            moved = _largest_move(pos[own], start[own])
            eps, graph, error = _pass(den, self, pos, graph, moved, cell, check=k == 0)
            t_net += time.perf_counter() - t1
            mine = None if eps is None else pos[own] - eps
            pos = self.rows(mine, error, dtype=np.float32)  # raises on every rank on error
            step = float(np.linalg.norm(eps, axis=1).max()) if len(eps) else 0.0
            # the stopping rule is collective only where it can stop early (a model with
            # tol 0, as shipped, always makes its max_steps passes: no reduction needed)
            history.append(self.comm.allreduce(step, op=_max_op(self.comm)) if den.tol > 0 else step)
            if history[-1] < den.tol:
                break
        self.moved = _largest_move(pos[own], start[own])
        return DenoiseResult(wrap(pos.astype(np.float64), cell), len(history), history,
                             0.0, t_net)

    def describe(self, soap: Soap, positions: np.ndarray, cell: np.ndarray,
                 halo: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:

        """SOAP of the own atoms (from own + a halo of :attr:`SoapConfig.reach`), gathered
        straight into the rows the classification reads: the own atoms and a ``halo``
        (the shell) around them. Returns (descriptors, their atoms' indices, the own ones' rows there)."""
        dec, rank, own = self.dec, self.rank, self.own

        def local_soap():
            sub = dec.halo(rank, positions, cell, soap.config.reach + self.moved + MARGIN)
            return finite_descriptors(soap.plain(positions[sub], cell,
                                                  rows=np.searchsorted(sub, own)))

        feats_own, error = attempt(local_soap, rank)
        sub = dec.halo(rank, positions, cell, halo + self.moved + MARGIN)
        feats = self.rows(feats_own, error, dtype=np.float64, at=self.slot[sub])
        return feats, sub, np.searchsorted(sub, own)

    def gather(self, fn: Callable[[], Any], dtype: Any = np.float64) -> np.ndarray:
        local, error = attempt(fn, self.rank)
        return self.rows(local, error, dtype=dtype)

    def gather_subset(self, fn: Callable[[], Any], atoms: np.ndarray, width: int,
                      dtype: Any = np.float64) -> np.ndarray:
        local, error = attempt(fn, self.rank)
        self.check(error)
        owner = self.dec.owner[atoms]
        counts = np.bincount(owner, minlength=self.dec.size).astype(np.int64)
        mine = np.ascontiguousarray(local, dtype=dtype).reshape(-1, width)
        out = np.empty((len(atoms), width), dtype=dtype)
        self.comm.Allgatherv(mine, (out, counts * width))
        rows = np.empty_like(out)
        rows[np.argsort(owner, kind="stable")] = out
        return rows

    def own_among(self, atoms: np.ndarray) -> np.ndarray:
        return np.flatnonzero(self.dec.owner[atoms] == self.rank)


def _finite(eps: torch.Tensor) -> torch.Tensor:
    check_finite(eps)
    return eps


def _check_input(den: Denoiser, shared: Shared, pos: np.ndarray, cell: np.ndarray) -> None:
    """The input checks of a pass (overlaps, spacing) on the own atoms, for frames that
    get no pass (``denoise_steps=0``)."""
    g = _local_graph(den, shared, pos, 0.0, cell)
    p = torch.as_tensor(pos, device=den.device)[torch.as_tensor(g.sub, device=den.device)]
    check_input(p, g.src, g.dst, g.shifts, g.n_own)


def _largest_move(pos: np.ndarray, start: np.ndarray) -> float:
    """Largest distance (Å) between current (not re-wrapped) and starting positions."""
    if not len(pos):
        return 0.0
    return float(np.linalg.norm(pos.astype(np.float64) - start, axis=1).max())


def _max_op(comm: Any) -> Any:
    """The maximum reduction of ``comm``: its own ``MAX`` where it has one
    (:class:`~icemon.execution.team.PipeComm`), else mpi4py's."""
    if hasattr(comm, "MAX"):
        return comm.MAX
    from mpi4py import MPI

    return MPI.MAX
