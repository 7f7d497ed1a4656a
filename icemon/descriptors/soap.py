"""SOAP descriptors (dscribe's definition) of oxygen environments.

The settings are much smaller than the paper's (r_cut 12 Å, n_max 10, l_max 8) because on
denoised structures a short descriptor already separates the ices (the shipped model:
r_cut 6 Å, n_max 4, l_max 4, averaged over neighbours; see
:mod:`icemon.classification.reference`); they are stored in every model file (``icemon
info`` prints them).

:class:`Soap` computes them with numba kernels by default
(:mod:`icemon.descriptors.compiled`, the same numbers at about a third of the cost, in
one process) and with dscribe itself where numba cannot compile or when asked; what
follows is about the dscribe backend.

dscribe's C++ keeps Python's GIL, so threads cannot share the work; on more than one
core the atoms of a frame are split between this process and helper processes
(:mod:`icemon.descriptors.soap_worker`), as many in all as torch has threads — the one knob
(``--threads``, ``Monitor(threads=...)``) that says how many cores icemon may use — and at
most :data:`MAX_PROCESSES`. A call interrupted while helpers hold its rows stops them, so
no later call reads another call's rows.

A share of the atoms is always passed to dscribe as the Cartesian positions of its
centres, never as atom indices: dscribe turns each index into a position with
``system.get_positions()[i]``, a copy of every position per centre, so index centres cost
centres × atoms (measured, 16,000 O: half of them as indices 7.1 s and 3.4 GB against
0.73 s for all atoms), while position centres cost what the same atoms cost in one plain
call (8,192 O, r_cut 6 Å: all 0.50 s, every second one by position 0.29 s; 65,536 O: all
2.98 s, half by position 1.51 s; descriptors identical to the bit).
"""

from __future__ import annotations

import math
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

from icemon.geometry.frame import FrameError

PARALLEL_MIN_ATOMS = 256
"""Frames smaller than this are described in one process (helpers would not pay off)."""

MAX_PROCESSES = 8
"""At most this many processes share one frame's SOAP (this one plus helpers), whatever
torch's thread count says: on a 128-core node torch's default would start ~60
interpreters; past a few processes the frame is split too finely to gain."""


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

    @property
    def reach(self) -> float:
        """Å: how far a neighbour still changes an atom's descriptor, ``r_cut`` plus
        dscribe's padding (:func:`cutoff_padding`), 1.86 Å for σ = 0.5 Å. A share of a
        frame described apart from the rest (an MPI rank, a helper process) needs every
        atom within this distance of its centres: with only ``r_cut`` the descriptors of
        atoms near the share's edge differ from the whole frame's by 2-3 % of a
        feature's spread (GCIceNet liquid)."""
        return self.r_cut + cutoff_padding(self.sigma)

    @property
    def n_features(self) -> int:
        """Length of one atom's power spectrum (one species): (l_max + 1) × the pairs
        n ≤ n'."""
        return (self.l_max + 1) * self.n_max * (self.n_max + 1) // 2


THRESHOLD = 1e-3
"""dscribe's decay threshold: of each GTO at its radius, and of the Gaussians (padding)."""


def cutoff_padding(sigma: float) -> float:
    """Å beyond r_cut within which neighbours still count (dscribe's padding: where a
    Gaussian of width ``sigma`` has decayed to :data:`THRESHOLD`)."""
    return sigma * math.sqrt(-2.0 * math.log(THRESHOLD))


def gto_basis(r_cut: float, n_max: int, l_max: int) -> tuple[np.ndarray, np.ndarray]:
    """(α (l_max+1, n_max) Å⁻², β (l_max+1, n_max, n_max)): the GTO exponents, decaying
    to :data:`THRESHOLD` at radii evenly spaced from 1 Å to ``r_cut``, and the Löwdin
    factors that make each l's set orthonormal."""
    from scipy.linalg import sqrtm
    from scipy.special import gamma

    radii = np.linspace(1.0, r_cut, n_max)
    alphas = np.zeros((l_max + 1, n_max))
    betas = np.zeros((l_max + 1, n_max, n_max))
    for deg in range(l_max + 1):
        a = -np.log(THRESHOLD / radii**deg) / radii**2
        overlap = 0.5 * gamma(deg + 1.5) * (a[:, None] + a[None, :]) ** (-deg - 1.5)
        b = sqrtm(np.linalg.inv(overlap))
        if np.iscomplexobj(b):
            if np.abs(b.imag).max() > 1e-10 * np.abs(b.real).max():
                raise ValueError(f"the GTO basis (r_cut {r_cut} Å, n_max {n_max}) cannot be "
                                 "orthonormalised in real numbers: lower n_max or raise r_cut")
            b = b.real
        alphas[deg], betas[deg] = a, b
    return alphas, betas


def gaussian_projection(config: SoapConfig) -> tuple[np.ndarray, np.ndarray]:
    """(a (l_max+1, K) Å⁻², b (l_max+1, n_max, K)): a neighbour at distance r adds
    Σ_k b[l, n, k] exp(a[l, k] r²) r^l Y_lm(r̂) to coefficient c_nlm (without π^{3/2}):
    its Gaussian of width σ projected analytically on the GTO basis (:func:`gto_basis`),
    α' = α / (1 + 2σ²α), β' = (2σ²)^{3/2} β (1 + 2σ²α)^{-(l+3/2)}. What the torch and the
    compiled descriptors evaluate."""
    alphas, betas = gto_basis(config.r_cut, config.n_max, config.l_max)
    two_s2 = 2.0 * config.sigma**2
    shrink = 1.0 + two_s2 * alphas  # (L, K)
    ls = np.arange(config.l_max + 1)[:, None, None]
    return -alphas / shrink, two_s2**1.5 * betas * shrink[:, None, :] ** (-(ls + 1.5))


class _Helper:
    """One helper process running :mod:`icemon.descriptors.soap_worker`."""

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

    Two backends give the same numbers (within ~2e-7 of a feature's spread over a
    frame, measured on the GCIceNet frames; no label differs): ``"compiled"``, numba
    kernels (:mod:`icemon.descriptors.compiled`, about a third of dscribe's cost, one
    process), the default wherever numba compiles; and ``"dscribe"``, dscribe's C++
    with the frame's atoms split over helper processes. Training builds its references
    with dscribe, so that a model file's arrays are
    reproducible to the bit.

    Args:
        config: the descriptor settings.
        processes: processes sharing a frame's atoms with dscribe (this one plus
            helpers); None follows ``torch.get_num_threads()``. The compiled backend runs
            in this process.
        backend: ``"auto"`` (compiled if it can be, else dscribe), ``"compiled"`` or
            ``"dscribe"``; ``$ICEMON_SOAP`` (``compiled`` or ``dscribe``) overrides
            ``"auto"``.
    """

    def __init__(self, config: SoapConfig | None = None, processes: int | None = None,
                 backend: str = "auto") -> None:
        from icemon.descriptors.soap_worker import make_soap

        self.config = config or SoapConfig()
        self.processes = processes
        self._soap = make_soap(self.config.to_dict())
        self._helpers: list[_Helper] = []
        self._finalizer = weakref.finalize(self, _close_all, self._helpers)
        self._compiled = self._make_compiled(resolve_backend(backend))

    @property
    def backend(self) -> str:
        """The backend in use: ``"compiled"`` or ``"dscribe"``."""
        return "dscribe" if self._compiled is None else "compiled"

    def _make_compiled(self, backend: str):
        if backend == "dscribe":
            return None
        try:
            from icemon.descriptors.compiled import CompiledSoap, supports

            if backend == "auto" and not supports(self.config):
                return None
            return CompiledSoap(self.config)  # raises for settings it cannot compute
        except Exception as exc:  # noqa: BLE001 — numba missing or broken: dscribe
            if backend == "compiled":
                raise
            self._fallback(exc)
            return None

    def _fallback(self, exc: BaseException) -> None:
        warnings.warn(f"compiled SOAP unavailable ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); computing "
                      "SOAP with dscribe (the same numbers, slower)", RuntimeWarning,
                      stacklevel=3)
        self._compiled = None

    def _run_compiled(self, positions: np.ndarray, cell: np.ndarray,
                      rows: np.ndarray | None) -> np.ndarray | None:
        """The compiled descriptors, or None when this process cannot compile them (said
        once; dscribe from then on). Input errors (a cell without volume) are raised."""
        _check_cell(cell)
        try:
            return self._compiled(positions, cell, rows)
        except Exception as exc:
            if not _is_compile_error(exc):
                raise
            self._fallback(exc)
            return None

    @property
    def n_features(self) -> int:
        return int(self._soap.get_number_of_features())

    def n_processes(self) -> int:
        """Processes sharing a frame: ``processes``, or torch's thread count, at most
        :data:`MAX_PROCESSES`."""
        if self.processes is not None:
            return max(1, min(int(self.processes), MAX_PROCESSES))
        import torch

        return max(1, min(torch.get_num_threads(), MAX_PROCESSES))

    def close(self) -> None:
        """Stop the helper processes (they also stop when this object is collected)."""
        _close_all(self._helpers)

    def plain(self, positions: np.ndarray, cell: np.ndarray,
              rows: np.ndarray | None = None) -> np.ndarray:
        """Descriptors computed in this process: of every atom, (N, n_features), or of the
        atoms ``rows`` (indices), (M, n_features) — what each MPI rank does for its own
        atoms, with ``positions`` its own atoms plus a halo of :attr:`SoapConfig.reach`.
        Linear time and memory either way (dscribe gets the rows' positions as centres,
        see the module doc)."""
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        if rows is not None and len(rows) == 0:  # an MPI rank that owns no atom
            return np.zeros((0, self.n_features), dtype=np.float64)
        if self._compiled is not None:
            out = self._run_compiled(positions, cell, rows)
            if out is not None:
                return out
        atoms = Atoms(numbers=np.full(len(positions), 8), positions=positions, cell=cell,
                      pbc=True)
        if rows is None:
            return self._soap.create(atoms)
        return self._soap.create(atoms, centers=positions[np.asarray(rows)])

    def __call__(self, positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
        """(N, n_features) descriptors of every atom of a periodic structure (Å)."""
        if self._compiled is not None:  # one process (dscribe's if it cannot compile)
            return self.plain(positions, cell)
        positions = np.asarray(positions, dtype=np.float64)
        cell = np.asarray(cell, dtype=np.float64)
        atoms = Atoms(numbers=np.full(len(positions), 8), positions=positions, cell=cell,
                      pbc=True)
        # at least PARALLEL_MIN_ATOMS / 2 atoms per process
        n_proc = min(self.n_processes(), len(positions) // (PARALLEL_MIN_ATOMS // 2))
        if n_proc < 2:
            return self._soap.create(atoms)
        # centres by position (linear), never by index (centres × atoms; module doc)
        chunks = np.array_split(positions, n_proc)
        try:
            helpers = self._start(n_proc - 1)
        except OSError as exc:
            self._serial_from_now_on(f"cannot start a SOAP helper process ({exc})")
            return self._soap.create(atoms)
        try:
            return self._shared(atoms, positions, cell, chunks, helpers)
        except BaseException:
            # an interruption (Ctrl-C, a signal) with replies still in the pipes: stop the
            # helpers, so that no later call reads this call's rows as its own
            self.close()
            raise

    def _shared(self, atoms: Atoms, positions: np.ndarray, cell: np.ndarray,
                chunks: list[np.ndarray], helpers: list[_Helper]) -> np.ndarray:
        sent = []
        for helper, centers in zip(helpers, chunks[1:]):
            try:
                helper.send((positions, cell, centers))
                sent.append((helper, centers))
            except OSError:
                sent.append((None, centers))
        failure: Exception | None = None  # raised after every reply is read (no stale ones)
        try:
            parts = [self._soap.create(atoms, centers=chunks[0])]
        except Exception as exc:
            failure, parts = exc, []
        for helper, centers in sent:
            reply = None
            if helper is not None:
                try:
                    reply = helper.receive()
                except (OSError, EOFError, pickle.UnpicklingError):
                    reply = None
            if reply is None:  # the helper died: do its share here, and stop using helpers
                self._serial_from_now_on("a SOAP helper process stopped")
                reply = self._soap.create(atoms, centers=centers)
            elif isinstance(reply, Exception):
                failure = failure or reply
                continue
            parts.append(np.asarray(reply).reshape(len(centers), -1))
        if failure is not None:
            raise failure
        return np.concatenate(parts)

    def _serial_from_now_on(self, reason: str) -> None:
        warnings.warn(f"{reason}; computing SOAP in one process from now on", RuntimeWarning,
                      stacklevel=3)
        self.close()
        self.processes = 1

    def _start(self, n: int) -> list[_Helper]:
        while len(self._helpers) < n:
            self._helpers.append(_Helper(self.config))
        return self._helpers[:n]


BACKEND_ENV = "ICEMON_SOAP"
"""Environment variable choosing the SOAP backend where a caller leaves it to "auto"."""


def resolve_backend(backend: str) -> str:
    """``backend`` checked ("auto", "compiled", "dscribe"); "auto" becomes
    ``$ICEMON_SOAP`` when that is set."""
    if backend == "auto":
        backend = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
        where = f"${BACKEND_ENV}"
    else:
        where = "backend"
    if backend not in ("auto", "compiled", "dscribe"):
        raise ValueError(f"{where} must be auto, compiled or dscribe, not {backend!r}")
    return backend


def _check_cell(cell: np.ndarray) -> None:
    """dscribe's refusal of a cell without volume, for both backends."""
    if abs(float(np.linalg.det(cell))) < 1e-9:
        raise ValueError("System doesn't have cell to justify periodicity (a zero-volume "
                         "cell)")


def _is_compile_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from numba failing to compile or load its kernels here."""
    mod = type(exc).__module__ or ""
    return mod.startswith(("numba", "llvmlite")) or isinstance(exc, (ImportError, OSError))


def finite_descriptors(features):
    """``features`` (a numpy array, or a torch tensor on any device), or
    :class:`FrameError` if any is NaN or infinite (a frame with such descriptors is
    recorded as an error, never labelled: a NaN score is not "near")."""
    finite = (features.isfinite().all() if hasattr(features, "isfinite")
              else np.isfinite(features).all())
    if not bool(finite):
        raise FrameError("non-finite SOAP descriptors for this frame (NaN or infinity): "
                         "it is recorded as an error, not classified")
    return features
