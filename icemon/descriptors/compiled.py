"""SOAP power spectra compiled with numba: dscribe's numbers at about a third of its cost.

The same descriptor as :class:`~icemon.descriptors.soap.Soap`'s dscribe call (one
species, GTO radial basis, periodic, no weighting, no compression; the expansion is
written out in :mod:`icemon.descriptors.torch_soap`'s docstring), evaluated in a way that
suits one species and small ``n_max``, ``l_max``:

* every neighbour pair within :attr:`SoapConfig.reach` once (vesin's half list), adding
  to both atoms' coefficients (the reversed vector flips the sign of odd l);
* the radial part of a pair, Σ_k β'_{lnk} exp(α'_{lk} r²) for every (l, n), read from a
  table in r² (4-point Lagrange interpolation, step 0.02 Å²: within ~1e-8 of a
  feature's spread over a frame of dscribe's values) instead of n_max × (l_max + 1)
  exponentials;
* the angular part from straight-line solid harmonics
  (:mod:`icemon.descriptors.harmonics`).

Measured on the GCIceNet frames (1 thread, shipped model's settings): ~40 pairs per
oxygen within 7.86 Å, ~100 ns each. numba comes with dscribe (through ``sparse``). The
kernels are compiled for each (n_max, l_max) (:func:`_kernels`): the first call on a
machine takes ~2 s, later processes load them from numba's disk cache in ~0.4 s. If
numba cannot compile here, :class:`~icemon.descriptors.soap.Soap` says so once and uses
dscribe. Memory: the half list (~40 pairs per O, 40 bytes each) and the coefficients
(0.8 kB per O) beside the (N, 50) result.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from icemon.descriptors.harmonics import L_MAX
from icemon.descriptors.soap import SoapConfig, gaussian_projection

STEP = 0.02
"""Å², spacing of the radial table in r²."""


def supports(config: SoapConfig) -> bool:
    """Whether these kernels can compute ``config``'s descriptor (l_max ≤ 8)."""
    return 0 <= config.l_max <= L_MAX and config.n_max >= 1


class CompiledSoap:
    """Per-atom SOAP power spectra of a periodic oxygen structure, numba-compiled.

    ``CompiledSoap(config)(positions, cell)`` → (N, n_features) float64, dscribe's
    numbers and feature order; ``rows`` (indices) describes only those atoms (an MPI
    rank's own atoms among its own + halo), in that order."""

    def __init__(self, config: SoapConfig) -> None:
        if not supports(config):
            raise ValueError(f"compiled SOAP needs l_max ≤ {L_MAX}, not {config.l_max}")
        from vesin import NeighborList

        c = self.config = config
        a, b = gaussian_projection(c)  # (L, K), (L, N, K)
        # rows k - 1 .. k + 2 around every r² up to the reach
        s = (np.arange(int(math.ceil(c.reach**2 / STEP)) + 4) - 1.0) * STEP
        table = (b[None] * np.exp(a[None, :, None, :] * s[:, None, None, None])).sum(-1)
        self._table = np.ascontiguousarray(table.reshape(len(s), -1))
        self._self = b[0].sum(axis=1) * 0.5 / math.sqrt(math.pi)  # the centre, r = 0
        degrees = np.repeat(np.arange(c.l_max + 1), 2 * np.arange(c.l_max + 1) + 1)
        self._sign = np.repeat((-1.0) ** degrees, c.n_max)  # per coefficient: (-1)^l
        self._pref = math.pi**3 * np.pi * np.sqrt(8.0 / (2.0 * np.arange(c.l_max + 1) + 1.0))
        self._list = NeighborList(cutoff=c.reach, full_list=False)

    def __call__(self, positions: np.ndarray, cell: np.ndarray,
                 rows: np.ndarray | None = None) -> np.ndarray:
        positions = np.asarray(positions, dtype=np.float64)
        n = len(positions)
        row_of = np.full(n, -1, dtype=np.int64)
        if rows is None:
            row_of[:] = np.arange(n)
            n_rows = n
        else:
            rows = np.asarray(rows, dtype=np.int64)
            row_of[rows] = np.arange(len(rows))
            n_rows = len(rows)
        if n == 0 or n_rows == 0:
            return np.zeros((n_rows, self.config.n_features))
        i, j, d = self._list.compute(points=positions, box=np.asarray(cell, dtype=np.float64),
                                     periodic=True, quantities="ijD")
        coefficients, power = _kernels(self.config.n_max, self.config.l_max)
        coeff = coefficients(i, j, np.ascontiguousarray(d, dtype=np.float64), row_of, n_rows,
                             self._table, 1.0 / STEP, self._sign)
        return power(coeff, self._self, self._pref)


def kernel_dir() -> Path:
    """Where the per-size kernel modules and numba's cache of them live:
    ``$ICEMON_CACHE_DIR``, else ``$XDG_CACHE_HOME/icemon`` (``~/.cache/icemon``), else a
    per-user folder in the temporary directory when that cannot be written."""
    base = os.environ.get("ICEMON_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "icemon")
    for folder in (Path(base) / "kernels",
                   Path(tempfile.gettempdir()) / f"icemon-{os.getuid()}" / "kernels"):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
        except OSError:
            continue
    raise OSError(f"no writable folder for icemon's compiled kernels (tried {base})")


@functools.cache
def _kernels(n_max: int, l_max: int):
    """The two kernels for one (n_max, l_max), compiled with both as module constants: the
    inner loops then unroll and vectorise (measured 98 against 215 ns per pair with the
    sizes as run-time arguments). The kernels of one size are a small module written from
    :data:`_TEMPLATE` into :func:`kernel_dir` (named by a hash of the code they run, the
    harmonics included), so numba's disk cache serves every later process (numba's cache
    of closures mixed up kernels of different sizes: measured, a crash)."""
    from icemon.descriptors import harmonics

    text = _TEMPLATE.format(n_max=int(n_max), l_max=int(l_max))
    digest = hashlib.sha256((text + harmonics.source()).encode()).hexdigest()[:12]
    name = f"icemon_soap_n{n_max}_l{l_max}_{digest}"
    path = kernel_dir() / f"{name}.py"
    if not path.exists():
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)  # atomic: MPI ranks and helpers may write it at once
    if name in sys.modules:
        module = sys.modules[name]
    else:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # numba's cache finds the kernels' module by name
        spec.loader.exec_module(module)
    return module.coefficients, module.power


_TEMPLATE = '''"""SOAP kernels for n_max = {n_max}, l_max = {l_max}, written by icemon.descriptors.compiled."""

import numpy as np
from numba import njit

from icemon.descriptors.harmonics import solid_harmonics

N_MAX = {n_max}
L_MAX = {l_max}
N_L = L_MAX + 1
N_LM = N_L * N_L
WIDTH = N_LM * N_MAX
N_FEAT = N_L * N_MAX * (N_MAX + 1) // 2


@njit(cache=True, nogil=True)
def coefficients(i, j, d, row_of, n_rows, table, inv_step,
                 sign):
    """c[row, (l*l + l + m) * N_MAX + n] without π^{{3/2}}: every pair (i, j) of the
    half list adds its expansion to i's row and, odd l sign-flipped (``sign``), to
    j's. The pairs arrive grouped by i (vesin), so i's sums gather in a buffer."""
    c = np.zeros((n_rows, WIDTH))
    acc = np.zeros(WIDTH)
    prod = np.empty(WIDTH)
    g = np.empty(N_L * N_MAX)
    sh = np.empty(N_LM)
    last = table.shape[0] - 3
    cur = -1
    for e in range(len(i)):
        ie = np.int64(i[e])  # vesin's indices are unsigned: no mixed-sign comparisons
        if ie != cur:
            if cur >= 0 and row_of[cur] >= 0:
                r = row_of[cur]
                for q in range(WIDTH):
                    c[r, q] += acc[q]
                    acc[q] = 0.0
            cur = ie
        ri = row_of[cur]
        rj = row_of[np.int64(j[e])]
        if ri < 0 and rj < 0:
            continue
        x = d[e, 0]
        y = d[e, 1]
        z = d[e, 2]
        u = (x * x + y * y + z * z) * inv_step + 1.0
        k = min(int(u), last)
        t = u - k
        w0 = -t * (t - 1.0) * (t - 2.0) * (1.0 / 6.0)
        w1 = (t + 1.0) * (t - 1.0) * (t - 2.0) * 0.5
        w2 = -(t + 1.0) * t * (t - 2.0) * 0.5
        w3 = (t + 1.0) * t * (t - 1.0) * (1.0 / 6.0)
        for q in range(N_L * N_MAX):
            g[q] = (w0 * table[k - 1, q] + w1 * table[k, q] + w2 * table[k + 1, q]
                    + w3 * table[k + 2, q])
        solid_harmonics(x, y, z, L_MAX, sh)
        for deg in range(N_L):
            for lm in range(deg * deg, (deg + 1) * (deg + 1)):
                s = sh[lm]
                for n in range(N_MAX):
                    prod[lm * N_MAX + n] = g[deg * N_MAX + n] * s
        if ri >= 0:
            for q in range(WIDTH):
                acc[q] += prod[q]
        if rj >= 0:
            for q in range(WIDTH):
                c[rj, q] += prod[q] * sign[q]
    if cur >= 0 and row_of[cur] >= 0:
        r = row_of[cur]
        for q in range(WIDTH):
            c[r, q] += acc[q]
    return c


@njit(cache=True, nogil=True)
def power(c, self_term, pref):
    """p[l, n ≤ n'] = pref_l Σ_m c_nlm c_n'lm, the centre's own Gaussian added to
    l = 0, l-major with (n, n') in row-major upper-triangle order (dscribe's)."""
    out = np.empty((c.shape[0], N_FEAT))
    for a in range(c.shape[0]):
        for n in range(N_MAX):
            c[a, n] += self_term[n]
        col = 0
        for deg in range(N_L):
            for n in range(N_MAX):
                for n2 in range(n, N_MAX):
                    s = 0.0
                    for lm in range(deg * deg, (deg + 1) * (deg + 1)):
                        s += c[a, lm * N_MAX + n] * c[a, lm * N_MAX + n2]
                    out[a, col] = s * pref[deg]
                    col += 1
    return out
'''
