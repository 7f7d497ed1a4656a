"""SOAP descriptors (dscribe) of oxygen environments.

The settings are smaller than the paper's (r_cut 12 Å, n_max 10, l_max 8) because on
denoised structures a 7 Å descriptor already separates the ices, and it is ~10x faster
(1.4e4 vs ~1.2e3 atoms/s on one core); they are stored in every model file.

dscribe's C++ keeps Python's GIL, so threads cannot share the work; on more than one
core the atoms of a frame are split between this process and helper processes
(:mod:`icemon.soap_worker`), as many in all as torch has threads — the one knob
(``--threads``, ``Monitor(threads=...)``) that says how many cores icemon may use.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
import weakref
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

PARALLEL_MIN_ATOMS = 256
"""Frames smaller than this are described in one process (helpers would not pay off)."""

BLOCK_ATOMS = 2048
"""Atoms per spatial block. dscribe's memory and time grow as (centres × atoms) when it is
given ``centers``, and 9.4 GB were measured for half of a 27,648-O periodic frame; a block
of ~2000 own atoms plus its halo stays near 0.1 GB whatever the frame size, and blocks are
the unit of work shared by helper processes."""

GAUSSIAN_THRESHOLD = 0.001
"""dscribe extends r_cut by σ·sqrt(−2 ln 0.001) so that each Gaussian has decayed to this
value; a block's halo must reach that far to reproduce the periodic descriptors."""


def halo_blocks(positions: np.ndarray, cell: np.ndarray, reach: float,
                n_blocks: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a periodic frame into about ``n_blocks`` spatially compact blocks.

    Each block is ``(own, local)``: the row indices of the atoms it owns, and the Cartesian
    positions (Å) of those atoms followed by every atom or periodic image within ``reach``
    Å of the block (its halo), as an isolated cluster. Describing the first ``len(own)``
    atoms of that cluster gives their periodic descriptors; every atom is owned once.
    Works for triclinic cells and cells smaller than ``reach`` (several images)."""
    cell = np.asarray(cell, dtype=np.float64)
    frac = np.linalg.solve(cell.T, np.asarray(positions, dtype=np.float64).T).T
    frac -= np.floor(frac)
    volume = abs(np.linalg.det(cell))
    heights = volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
    # grid: blocks as cubic as the cell allows, never thinner than the halo is thick
    edge = (volume / max(1, n_blocks)) ** (1 / 3)
    most = np.maximum(1, np.floor(heights / reach))
    grid = np.maximum(1, np.minimum(np.round(heights / edge), most)).astype(np.int64)
    while np.prod(grid) < n_blocks and (grid < most).any():
        grow = np.where(grid < most, heights / grid, 0.0)
        grid[int(np.argmax(grow))] += 1
    ext = reach / heights  # halo thickness in fractional units
    span = np.ceil(ext * grid).astype(np.int64)  # neighbouring grid cells to look into
    ijk = np.minimum((frac * grid).astype(np.int64), grid - 1)
    cell_id = (ijk[:, 0] * grid[1] + ijk[:, 1]) * grid[2] + ijk[:, 2]
    order = np.argsort(cell_id, kind="stable")
    bounds = np.searchsorted(cell_id[order], np.arange(np.prod(grid) + 1))
    offsets = np.array(np.meshgrid(*[np.arange(-k, k + 1) for k in span], indexing="ij")
                       ).reshape(3, -1).T
    blocks = []
    for b in np.ndindex(*grid):
        b = np.array(b)
        flat = (b[0] * grid[1] + b[1]) * grid[2] + b[2]
        own = order[bounds[flat]:bounds[flat + 1]]
        if len(own) == 0:
            continue
        lo, hi = b / grid - ext, (b + 1) / grid + ext
        halo = []
        for d in offsets:
            if not d.any():
                continue
            nb = b + d
            image = np.floor_divide(nb, grid)
            nbw = nb - image * grid
            f2 = (nbw[0] * grid[1] + nbw[1]) * grid[2] + nbw[2]
            atoms = order[bounds[f2]:bounds[f2 + 1]]
            f = frac[atoms] + image
            halo.append(f[np.all((f >= lo) & (f < hi), axis=1)])
        local = np.concatenate([frac[own], *halo]) @ cell
        blocks.append((own, local))
    return blocks


@dataclass
class SoapConfig:
    r_cut: float = 7.0
    """Cutoff radius in Å (beyond the second O–O shell that tells Ih from Ic)."""
    n_max: int = 8
    l_max: int = 6
    sigma: float = 0.5
    """Width (Å) of the Gaussians smearing each oxygen."""

    def to_dict(self) -> dict:
        return asdict(self)


def describe_block(soap, local: np.ndarray, n_own: int) -> np.ndarray:
    """(n_own, F) descriptors of the first ``n_own`` atoms of an isolated cluster (Å);
    ``soap`` is a non-periodic dscribe SOAP. Shared with :mod:`icemon.soap_worker`."""
    atoms = Atoms(numbers=np.full(len(local), 8), positions=local)
    return np.asarray(soap.create(atoms, centers=np.arange(n_own))).reshape(n_own, -1)


def _balance(blocks: list, n: int) -> list[list]:
    """Blocks dealt to ``n`` processes, largest first to the least loaded (by atoms)."""
    shares: list[list] = [[] for _ in range(n)]
    load = np.zeros(n)
    for k in np.argsort([-len(local) for _, local in blocks], kind="stable"):
        i = int(np.argmin(load))
        shares[i].append(blocks[k])
        load[i] += len(blocks[k][1])
    return shares


class _Helper:
    """One helper process running :mod:`icemon.soap_worker`."""

    def __init__(self, config: SoapConfig) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        # run_path, not "python soap_worker.py": the latter would put icemon/ first on
        # sys.path, where icemon/ase.py shadows the ase package
        script = str(Path(__file__).with_name("soap_worker.py"))
        self.proc = subprocess.Popen(
            [sys.executable, "-c",
             f"import runpy; runpy.run_path({script!r}, run_name='__main__')"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.send(config.to_dict())

    def send(self, obj) -> None:
        pickle.dump(obj, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.flush()

    def receive(self):
        return pickle.load(self.proc.stdout)

    def close(self) -> None:
        try:
            self.send(None)
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def _close_all(helpers: list[_Helper]) -> None:
    for h in helpers:
        h.close()
    helpers.clear()


class Soap:
    """Per-atom SOAP power spectra of a periodic oxygen structure.

    Args:
        config: the descriptor settings.
        processes: processes sharing a frame's atoms (this one plus helpers); None
            follows ``torch.get_num_threads()``.
    """

    def __init__(self, config: SoapConfig | None = None, processes: int | None = None) -> None:
        from dscribe.descriptors import SOAP

        self.config = config or SoapConfig()
        self.processes = processes
        c = self.config
        self._soap = SOAP(species=["O"], r_cut=c.r_cut, n_max=c.n_max, l_max=c.l_max,
                          sigma=c.sigma, periodic=True, sparse=False, dtype="float64")
        self._cluster = SOAP(species=["O"], r_cut=c.r_cut, n_max=c.n_max, l_max=c.l_max,
                             sigma=c.sigma, periodic=False, sparse=False, dtype="float64")
        self._helpers: list[_Helper] = []
        self._finalizer = weakref.finalize(self, _close_all, self._helpers)

    @property
    def n_features(self) -> int:
        return int(self._soap.get_number_of_features())

    def n_processes(self) -> int:
        if self.processes is not None:
            return max(1, int(self.processes))
        import torch

        return max(1, torch.get_num_threads())

    def close(self) -> None:
        """Stop the helper processes (they also stop when this object is collected)."""
        _close_all(self._helpers)

    @property
    def reach(self) -> float:
        """Å: how far a block's halo reaches (r_cut plus dscribe's Gaussian padding)."""
        c = self.config
        return c.r_cut + c.sigma * float(np.sqrt(-2 * np.log(GAUSSIAN_THRESHOLD)))

    def blocks(self, positions: np.ndarray, cell: np.ndarray,
               n_blocks: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """:func:`halo_blocks` with this descriptor's reach."""
        return halo_blocks(positions, cell, self.reach, n_blocks)

    def describe_blocks(self, blocks: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """Descriptors of each block's own atoms, here in this process."""
        return [describe_block(self._cluster, local, len(own)) for own, local in blocks]

    def __call__(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """(N, n_features) descriptors of every atom of a periodic structure (Å).

        A small frame in one process is one dscribe call; otherwise the frame is cut into
        blocks of about :data:`BLOCK_ATOMS` atoms with halos (:func:`halo_blocks`), which
        keeps memory flat, and the blocks are shared between this process and helpers."""
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        n = len(positions)
        # at least PARALLEL_MIN_ATOMS / 2 atoms per process
        n_proc = max(1, min(self.n_processes(), n // (PARALLEL_MIN_ATOMS // 2)))
        if n_proc == 1:
            return self._serial(positions, cell)
        try:
            helpers = self._start(n_proc - 1)
        except OSError as exc:
            self._serial_from_now_on(f"cannot start a SOAP helper process ({exc})")
            return self._serial(positions, cell)
        blocks = self.blocks(positions, cell, max(n_proc, round(n / BLOCK_ATOMS)))
        shares = _balance(blocks, n_proc)
        sent = []
        for helper, share in zip(helpers, shares[1:]):
            try:
                helper.send([(local, len(own)) for own, local in share])
                sent.append((helper, share))
            except OSError:
                sent.append((None, share))
        out = np.empty((n, self.n_features))
        failure: Exception | None = None  # raised after every reply is read (no stale ones)
        try:
            for (own, _), f in zip(shares[0], self.describe_blocks(shares[0])):
                out[own] = f
        except Exception as exc:
            failure = exc
        for helper, share in sent:
            reply = None
            if helper is not None:
                try:
                    reply = helper.receive()
                except (OSError, EOFError, pickle.UnpicklingError):
                    reply = None
            if reply is None:  # the helper died: do its share here, and stop using helpers
                self._serial_from_now_on("a SOAP helper process stopped")
                reply = self.describe_blocks(share)
            elif isinstance(reply, Exception):
                failure = failure or reply
                continue
            for (own, _), f in zip(share, reply):
                out[own] = np.asarray(f).reshape(len(own), -1)
        if failure is not None:
            raise failure
        return out

    def _serial(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        if len(positions) <= 2 * BLOCK_ATOMS:
            atoms = Atoms(numbers=np.full(len(positions), 8), positions=positions, cell=cell,
                          pbc=True)
            return self._soap.create(atoms)
        out = np.empty((len(positions), self.n_features))
        blocks = self.blocks(positions, cell, round(len(positions) / BLOCK_ATOMS))
        for (own, _), f in zip(blocks, self.describe_blocks(blocks)):
            out[own] = f
        return out

    def _serial_from_now_on(self, reason: str) -> None:
        warnings.warn(f"{reason}; computing SOAP in one process from now on", RuntimeWarning,
                      stacklevel=3)
        self.close()
        self.processes = 1

    def _start(self, n: int) -> list[_Helper]:
        while len(self._helpers) < n:
            self._helpers.append(_Helper(self.config))
        return self._helpers[:n]
