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
- **SOAP**: one dscribe call per rank with the own atoms as centres (by position, which
  is linear: :mod:`icemon.descriptors.soap`) in the own atoms plus a halo of ``r_cut``;
  rows of the own atoms are all-gathered. Each rank describes only its own atoms (until
  session 8 it described its halo too, all-atoms mode: 69-72 % of the 8,064-O box per
  rank on 2 ranks, because centres by index cost centres × atoms).
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
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from icemon.classification.classifier import far_average, far_pair_average, repeat_distance
from icemon.model.denoise import check_overlaps, skin_valid
from icemon.geometry.frame import Frame, fractional, wrap
from icemon.model.graph import edges_within
from icemon.geometry.neighbors import neighbor_pairs
from icemon.geometry.replicas import replica_groups
from icemon.errors import IcemonError

if TYPE_CHECKING:
    from icemon.execution.pipeline import Pipeline, Result

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
                        b[axis, 0] = _cut(frac[pieces[k - 1], axis], frac[piece, axis])
                    if k < parts - 1:
                        b[axis, 1] = _cut(frac[piece, axis], frac[pieces[k + 1], axis])
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


def _cut(below: np.ndarray, above: np.ndarray) -> float:
    """A fractional coordinate between two groups of atoms sorted along an axis."""
    return 0.5 * (float(below.max()) + float(above.min())) if len(below) and len(above) \
        else float(below.max() if len(below) else above.min())


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
        self.check(error)
        local = np.ascontiguousarray(local, dtype=dtype).reshape(len(self.own), -1)
        width = local.shape[1]
        out = np.empty((int(self.counts.sum()), width), dtype=dtype)
        self.comm.Allgatherv(local, (out, self.counts * width))
        if at is not None:
            return out[at]
        full = np.empty_like(out)
        full[self.order] = out
        return full

    def far_rows(self, local: np.ndarray, atoms: np.ndarray, width: int) -> np.ndarray:
        """(len(atoms), width) float32 rows of some atoms (sorted global indices, the same
        on every rank), each rank sending those of ``atoms`` it owns (``local``, in
        ascending index order): one gather of just those rows instead of a column of
        every atom."""
        owner = self.dec.owner[atoms]
        counts = np.bincount(owner, minlength=self.dec.size).astype(np.int64)
        mine = np.ascontiguousarray(local, dtype=np.float32).reshape(-1, width)
        out = np.empty((len(atoms), width), dtype=np.float32)
        self.comm.Allgatherv(mine, (out, counts * width))
        rows = np.empty_like(out)
        rows[np.argsort(owner, kind="stable")] = out
        return rows


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


def _local_graph(pipe: Pipeline, shared: Shared, pos: np.ndarray, moved: float,
                 cell: np.ndarray) -> LocalGraph:
    """The rank's skin list on ``pos``; ``moved``: how far (Å) any own atom is from where
    the shares were cut. The halo is ``cutoff + skin`` wide beyond that, so it holds every
    atom that can come within the cutoff of an own atom while the list is valid."""
    den = pipe.denoiser
    reach = den.model.config.cutoff + den.skin
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


def _pass(pipe: Pipeline, shared: Shared, pos: np.ndarray, graph: LocalGraph | None,
          moved: float, cell: np.ndarray, check: bool
          ) -> tuple[np.ndarray | None, LocalGraph | None, str | None]:
    """One denoising pass of the own atoms: ε (n_own, 3) float32, blocks exchanged, the
    skin list it used (``graph``, reused if still valid, else rebuilt), and this rank's
    error (then ε is None). Errors travel with the next exchange, whose check raises on
    every rank (the block exchanges here; after the last block, the caller's gather of
    the new positions), so a pass costs no collective of its own.
    ``moved``: how far (Å) any own atom is from where the shares were cut."""
    den = pipe.denoiser
    net = den.model
    rank = shared.rank
    cutoff = net.config.cutoff

    def edges():
        g = graph
        now = torch.as_tensor(pos, device=den.device)
        if g is None or not skin_valid(now, g.built_at, den.skin, cell, cutoff):
            g = _local_graph(pipe, shared, pos, moved, cell)
        p = now[torch.as_tensor(g.sub, device=den.device)]
        src, dst, shifts = edges_within(p, g.src, g.dst, g.shifts, cutoff)
        if check:
            check_overlaps(p, src, dst, shifts)
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
            eps, error = attempt(lambda: net.readout(x).cpu().numpy(), rank)
    return eps, graph, error


def process(pipe: Pipeline, frame: Frame, comm: Any) -> Result:
    """:meth:`Pipeline.process` shared by the ranks of ``comm``: every rank calls it with
    the same frame and gets the same result."""
    from icemon.execution.pipeline import Result

    t0 = time.perf_counter()
    cell = frame.cell
    start = wrap(frame.positions, cell)
    clf = pipe.classifier
    soap = pipe.soap
    dec = Decomposition.build(start, cell, comm.size, soap.config.r_cut)
    shared = Shared(comm, dec)
    rank, own = shared.rank, shared.own

    # denoising: float32 positions between passes, as the serial Denoiser keeps them
    den = pipe.denoiser
    pos = start.astype(np.float32)
    history: list[float] = []
    t_net = 0.0
    graph: LocalGraph | None = None
    for k in range(den.max_steps):
        t1 = time.perf_counter()
        moved = _largest_move(pos[own], start[own])
        eps, graph, error = _pass(pipe, shared, pos, graph, moved, cell, check=k == 0)
        t_net += time.perf_counter() - t1
        mine = None if eps is None else pos[own] - eps
        pos = shared.rows(mine, error, dtype=np.float32)  # raises on every rank on error
        step = float(np.linalg.norm(eps, axis=1).max()) if len(eps) else 0.0
        # the stopping rule is collective only where it can stop early (a model with
        # tol 0, as shipped, always makes its max_steps passes: no reduction needed)
        history.append(comm.allreduce(step, op=_max_op()) if den.tol > 0 else step)
        if history[-1] < den.tol:
            break
    moved = _largest_move(pos[own], start[own])
    denoised = wrap(pos.astype(np.float64), cell)
    t2 = time.perf_counter()

    # SOAP of the own atoms, from own + halo
    def local_soap():
        sub = dec.halo(rank, denoised, cell, soap.config.r_cut + moved + MARGIN)
        return soap.plain(denoised[sub], cell, centres=denoised[own])

    feats_own, error = attempt(local_soap, rank)
    # the classification reads the descriptors of the own atoms and a shell-wide halo:
    # gathered straight into those rows
    sub = dec.halo(rank, denoised, cell, clf.shell + moved + MARGIN)
    feats = shared.rows(feats_own, error, dtype=np.float64, at=shared.slot[sub])
    t3 = time.perf_counter()

    def local_classify():
        return clf.assess(feats, denoised[sub], cell, rows=np.searchsorted(sub, own))

    a, error = attempt(local_classify, rank)
    local = None if a is None else np.column_stack(
        [a.nearest, a.scores, a.atom_scores, *([] if a.orbits is None else [a.orbits])])
    out = shared.rows(local, error, dtype=np.float64)
    nearest, scores, atom_scores = out[:, 0].astype(np.int8), out[:, 1], out[:, 2]
    orbits = out[:, 3].astype(np.int64) if out.shape[1] > 3 else None
    far, distances = None, None
    if clf.unknown >= 0:
        far_atoms = np.flatnonzero(clf.far(scores))
        # the points the unknown-vs-liquid check compares, of the far atoms only (every
        # rank knows from the gathered scores which atoms those are and who owns them)
        far = shared.far_rows(a.coordinates, far_atoms, clf.components.shape[0] + 1)
        if len(far_atoms):
            # copies of one box written several times are one atom (every rank finds the
            # same groups from the same input)
            replicas = replica_groups(frame.positions, cell)

            # the repeat check of the far atoms (O(far × sample), every far atom of a
            # liquid frame) is shared too: each rank its own far atoms, against the same
            # sample of all of them
            def local_repeat():
                mine = np.flatnonzero(dec.owner[far_atoms] == rank)
                d = np.full(len(own), np.nan)
                d[np.searchsorted(own, far_atoms[mine])] = repeat_distance(
                    far, clf.repeat_k, rows=mine,
                    groups=None if replicas is None else replicas[far_atoms])
                return d

            d_own, error = attempt(local_repeat, rank)
            distances = shared.rows(d_own, error, dtype=np.float32)[far_atoms, 0]
            if clf.repeat_shell > 0:
                # averaged over the far atoms around: each rank its own, with every far
                # atom's distance known now, over the pairs of its classification (its
                # shell is the averaging radius; the halo holds every neighbour)
                def local_average():
                    d = np.full(len(own), np.nan)
                    if clf.repeat_shell != clf.shell:  # no pairs of that radius: all far atoms
                        mine = np.flatnonzero(dec.owner[far_atoms] == rank)
                        d[np.searchsorted(own, far_atoms[mine])] = far_average(
                            distances, denoised[far_atoms], cell, clf.repeat_shell, rows=mine)
                        return d
                    in_sub = np.isin(far_atoms, sub)
                    far_sub = np.zeros(len(sub), dtype=bool)
                    far_sub[np.searchsorted(sub, far_atoms[in_sub])] = True
                    every = np.zeros(len(sub))
                    every[far_sub] = distances[in_sub]
                    rows = np.searchsorted(sub, own)
                    d[far_sub[rows]] = far_pair_average(every, far_sub, a.pairs, rows)
                    return d

                d_own, error = attempt(local_average, rank)
                distances = shared.rows(d_own, error, dtype=np.float64)[far_atoms, 0]
    labels = clf.label(nearest, scores, far, distances, orbits, denoised, cell)
    nearest = clf.voted_nearest(nearest, labels)
    t4 = time.perf_counter()
    return Result(frame, labels, scores.astype(np.float32), denoised, nearest, len(history),
                  {"neighbors": 0.0, "network": t_net, "denoise": t2 - t0, "soap": t3 - t2,
                   "classify": t4 - t3, "total": t4 - t0}, pipe.model.phases,
                  atom_scores.astype(np.float32))


def _largest_move(pos: np.ndarray, start: np.ndarray) -> float:
    """Largest distance (Å) between current (not re-wrapped) and starting positions."""
    if not len(pos):
        return 0.0
    return float(np.linalg.norm(pos.astype(np.float64) - start, axis=1).max())


def _max_op() -> Any:
    from mpi4py import MPI

    return MPI.MAX
