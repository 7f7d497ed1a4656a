"""One object, configured once, applied per frame: denoise → SOAP → nearest reference.

>>> pipe = Pipeline()                      # the shipped pretrained model
>>> result = pipe.process(Frame(positions, cell))
>>> result.labels, result.scores, result.fractions
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from icemon.classification.checks.base import Serial
from icemon.classification.device import DeviceReference, OnDevice
from icemon.descriptors.soap import Soap, finite_descriptors
from icemon.descriptors.torch_soap import TorchSoap
from icemon.execution.team import Sharing
from icemon.geometry.clusters import ClusterRule, Clusters, find_clusters
from icemon.geometry.frame import Frame
from icemon.model.denoise import Denoiser, DenoiseResult
from icemon.model.modelfile import IcemonModel
from icemon.phases import LIQUID_NAME, is_ice, liquid_code, unknown_code


@dataclass
class Result:
    """Per-atom phase labels of one frame."""

    frame: Frame
    labels: np.ndarray
    """(N,) int8 phase codes: indices into :attr:`phases`."""
    scores: np.ndarray
    """(N,) float32 score behind the liquid decision: the distance (standardised SOAP) to
    the nearest reference environment, of the atom's descriptor averaged over its
    neighbours when the model says so (:attr:`PhaseClassifier.shell`); for an atom the
    growth check made ice, of the descriptor it was re-scored with, or of its own one for an
    ordered core's (:class:`~icemon.classification.checks.growth.GrowthCheck`)."""
    denoised: np.ndarray
    """(N, 3) float64 denoised positions in Å."""
    nearest: np.ndarray
    """(N,) int8 phase of the nearest reference environment, before the liquid threshold
    (after the family vote where the atom is labelled with an ice; see
    :meth:`~icemon.classification.checks.family.FamilyVote.voted_nearest`)."""
    n_denoise_steps: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds per stage: neighbors and network (both inside denoise), denoise,
    soap, classify, total."""
    phases: tuple[str, ...] = ()
    """The model's phase vocabulary (name of each code): required (a result without it
    cannot say what its codes mean)."""
    atom_scores: np.ndarray | None = None
    """(N,) float32 distance of the atom's own, not averaged, descriptor to the nearest
    reference: a diagnostic of single-atom order at interfaces, not the decision (None =
    the same as :attr:`scores`)."""
    _clusters: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        from icemon.errors import PhaseError

        if LIQUID_NAME not in self.phases:
            raise PhaseError(f"a Result needs its model's phase vocabulary (phases=...), got "
                             f"{list(self.phases)}")
        self.phases = tuple(self.phases)

    @property
    def liquid(self) -> int:
        """Code of ``liquid`` in :attr:`phases`."""
        return liquid_code(self.phases)

    @property
    def unknown(self) -> int:
        """Code of ``unknown`` in :attr:`phases` (-1: the model has no such label)."""
        return unknown_code(self.phases)

    @property
    def ice(self) -> np.ndarray:
        """(N,) bool: atoms labelled with an ice (not liquid, not unknown)."""
        return is_ice(self.labels, self.liquid, self.unknown)

    def clusters(self, rule: ClusterRule | None = None) -> Clusters:
        """The frame's ice clusters on the denoised positions
        (:func:`~icemon.geometry.clusters.find_clusters`; ``rule``: default
        :class:`~icemon.geometry.clusters.ClusterRule`), computed once per rule."""
        rule = rule or ClusterRule()
        if rule not in self._clusters:
            self._clusters[rule] = find_clusters(self.denoised, self.frame.cell, self.labels,
                                                 self.ice, len(self.phases), rule)
        return self._clusters[rule]

    @property
    def counts(self) -> np.ndarray:
        """(n_phases,) number of atoms of each phase."""
        return np.bincount(self.labels.astype(np.int64), minlength=len(self.phases))

    @property
    def fractions(self) -> np.ndarray:
        """(n_phases,) float32 fraction of atoms of each phase (sums to 1)."""
        return (self.counts / len(self.labels)).astype(np.float32)

    def table(self) -> str:
        """A human-readable phase table."""
        lines = [f"{'phase':>8s} {'atoms':>8s} {'fraction':>9s}"]
        for name, n, f in zip(self.phases, self.counts, self.fractions):
            lines.append(f"{name:>8s} {n:8d} {100 * f:8.2f}%")
        return "\n".join(lines)


def log_settings(model: IcemonModel, max_steps: int, tol: float, device: str) -> dict:
    """What a :class:`~icemon.io.log.LogWriter` records of a pipeline running ``model``
    with these denoising settings (shared by :class:`Pipeline` and, for the pipelines its
    workers build, :class:`~icemon.execution.pool.FramePool`)."""
    return {"model_name": model.name, "model_sha256": model.sha256,
            "threshold": model.threshold,
            "denoise": {"max_steps": max_steps, "tol": tol, "device": device},
            "atom_scores": model.classifier.shell > 0, "phases": model.phases}


class SerialRun(Serial):
    """One process does a frame's whole work (the :class:`Pipeline` without MPI, and each
    :class:`~icemon.execution.pool.FramePool` worker)."""

    def denoise(self, denoiser: Denoiser, frame: Frame) -> DenoiseResult:
        return denoiser(frame.positions, frame.cell)

    def describe(self, soap: Soap, positions: np.ndarray, cell: np.ndarray,
                 halo: float) -> tuple[np.ndarray, None, None]:
        """SOAP of every atom (no halo needed: the descriptors are the whole frame's)."""
        return finite_descriptors(soap(positions, cell)), None, None


class DeviceRun(SerialRun):
    """One process does a frame's whole work on a torch device (the device path): neighbour
    lists, network, SOAP (:class:`~icemon.descriptors.torch_soap.TorchSoap`) and the
    nearest-reference search stay there; the regional checks run on the host on what
    comes back (:class:`~icemon.classification.device.OnDevice`)."""

    def __init__(self, soap: TorchSoap, reference: DeviceReference) -> None:
        self.torch_soap = soap
        self.reference = reference

    def describe(self, soap: Soap, positions: np.ndarray, cell: np.ndarray,
                 halo: float) -> tuple[OnDevice, None, None]:
        import torch

        from icemon.geometry.device_neighbors import device_pairs

        pos = torch.as_tensor(positions, dtype=torch.float64, device=self.reference.refs.device)
        i, j, shifts = device_pairs(pos, cell, self.torch_soap.radius)
        feats = finite_descriptors(self.torch_soap(pos, cell, (i, j, shifts)))
        if halo > 0:
            near = ((pos[j] + shifts - pos[i]).norm(dim=1) < halo).nonzero()[:, 0]
            i, j = i[near], j[near]
        return OnDevice(feats, i, j, self.reference), None, None


class Pipeline:
    """Denoise and classify oxygen frames with an :class:`IcemonModel`.

    Args:
        model: a model file path, a loaded model, or None for the shipped default.
        denoise_steps: override the model's maximum number of denoising updates
            (0 = classify the raw positions).
        tol: override the model's convergence tolerance (Å) on the largest update.
        device: torch device for the network ("cpu" or "cuda").
        compile: run the network through ``torch.compile`` (faster per frame after a
            one-time compilation: ~40 s the first time on a machine, ~4 s once inductor's
            cache holds it; :class:`~icemon.model.network.Compiled`). None (default):
            compiled unless ``$ICEMON_COMPILE=0``; False: eager.
        on_device: the device path: neighbour lists, network, SOAP (in torch, equal to
            dscribe's within 1e-6) and the nearest-reference search all on ``device``, no
            host round trip between passes (:class:`DeviceRun`). None (default): on any
            device but the CPU; True on the CPU runs the same path there (what the tests
            compare with the host path).
        comm: an mpi4py communicator: every rank of it calls :meth:`process` with the
            same frame, each does the per-atom work of a share of the atoms, and every
            rank gets the same result (:mod:`icemon.execution.mpi`; no SOAP helper
            processes then).
        processes: processes sharing each frame on this machine (this one plus helper
            processes, one torch thread each; :mod:`icemon.execution.team`). None
            (default): as many as torch has threads, at most 8, and at most one per
            400 oxygens of the frame (smaller frames run in this process alone); 1: never.
            Only on the host path (the CPU) without ``comm``.

    On one core, or with ``processes=1``, the network uses ``torch.get_num_threads()``
    threads and SOAP as many processes (see :mod:`icemon.descriptors.soap`); set them with
    ``torch.set_num_threads``. On more, a large enough frame is shared by helper
    processes the way MPI ranks share it (same labels; threads sharing one frame gain
    little here: the compiled network does not use a second thread at these sizes).

    One pipeline may be shared by threads (e.g. one monitor per i-PI bead): frames are
    processed one at a time, since the helper processes hold one request each.
    ``close()`` (or a ``with`` block) stops the helpers.
    """

    def __init__(self, model: str | Path | IcemonModel | None = None,
                 denoise_steps: int | None = None, tol: float | None = None,
                 device: str = "cpu", comm: Any | None = None, compile: bool | None = None,
                 on_device: bool | None = None, processes: int | None = None) -> None:
        import torch

        from icemon.errors import ConfigError

        self.model = model if isinstance(model, IcemonModel) else IcemonModel.load(model)
        m = self.model
        self.comm = comm if comm is not None and comm.size > 1 else None
        self.on_device = (torch.device(device).type != "cpu" and self.comm is None
                          if on_device is None else bool(on_device))
        if self.on_device and self.comm is not None:
            raise ConfigError("the device path (on_device=True) runs a frame in one process; "
                              "with an MPI communicator use on_device=False")
        self.denoiser = Denoiser(m.net, m.denoise_steps if denoise_steps is None else denoise_steps,
                                 m.denoise_tol if tol is None else tol, device,
                                 compile=compile, lists_on_device=self.on_device)
        self.soap = Soap(m.soap, processes=1 if self.comm is not None else None)
        self.classifier = m.classifier
        self._device_run = (DeviceRun(TorchSoap(m.soap), DeviceReference(
            m.classifier.reference, self.denoiser.device)) if self.on_device else None)
        # numpy/scikit-learn BLAS runs single-threaded here: its idle OpenBLAS threads
        # keep spinning after a call and steal the cores from the next network pass
        # (measured: first forward of each frame 3-8x slower with 2 BLAS threads).
        self._threadpools = ThreadpoolController()
        self._lock = threading.Lock()
        d = self.denoiser
        self.sharing = Sharing(processes, m, d.max_steps, d.tol, d.compiled)
        """The helper processes that share frames with this one (:mod:`.team`)."""

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def log_settings(self) -> dict:
        """What a :class:`~icemon.io.log.LogWriter` records of this pipeline (keyword args):
        the model, its threshold, the denoising settings, whether scores are averaged."""
        d = self.denoiser
        return log_settings(self.model, d.max_steps, d.tol, str(d.device))

    def process(self, frame: Frame) -> Result:
        """Labels, scores, fractions and denoised positions of one frame."""
        with self._lock, self._threadpools.limit(limits=1, user_api="blas"):
            return self._process(frame)

    def close(self) -> None:
        """Stop the helper processes (a later frame starts them again)."""
        with self._lock:
            self.soap.close()
            self.sharing.stop()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _process(self, frame: Frame) -> Result:
        if self.comm is not None:
            from icemon.execution.mpi import Ranks

            return self.process_with(frame, Ranks.for_frame(self.comm, frame,
                                                            self.soap.config.reach))
        size = self.team_size(len(frame.positions))
        if size > 1 and self.sharing.start(size, wait=False):  # started now if not
            return self._shared(frame, size)
        return self.process_with(frame, self._device_run or SerialRun())

    def start_helpers(self, n_atoms: int, wait: bool = True, timeout: float = 120.0) -> int:
        """Start the helper processes that would share a frame of ``n_atoms`` oxygens and,
        with ``wait``, wait until they are up (at most ``timeout`` s); returns how many
        processes will share such a frame. Optional: without it the helpers start at the
        first large frame, which runs alone meanwhile. The hooks start them when they
        attach and wait at the first frame, so that every frame of a run is shared and
        the network is compiled once per process (its pieces, not also the whole)."""
        size = self.team_size(n_atoms)
        if size > 1:
            with self._lock:
                self.sharing.start(size, wait, timeout)
            return 1 if self.sharing.failed else size
        return size

    def team_size(self, n_atoms: int) -> int:
        """How many processes share a frame of ``n_atoms`` oxygens (1: this one alone):
        only on the host path of the CPU, without MPI."""
        if self.comm is not None or self.on_device or self.denoiser.device.type != "cpu":
            return 1
        return self.sharing.size(n_atoms)

    def _shared(self, frame: Frame, size: int) -> Result:
        """``frame`` shared by ``size`` processes (:mod:`icemon.execution.team`); a frame
        that fails is run again here alone (the caller sees its own error), a helper that
        stops ends sharing for this pipeline (one warning)."""
        import torch

        from icemon.execution.mpi import CollectiveError, Ranks
        from icemon.execution.team import TeamError

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # one core per process while they share the frame
        try:
            comm = self.sharing.share(frame, size)
            return self.process_with(frame, Ranks.for_frame(comm, frame,
                                                            self.soap.config.reach))
        except CollectiveError:
            pass  # every process stopped at the same point: rerun alone, for the real error
        except TeamError as exc:
            self.sharing.give_up(exc)
        except BaseException:
            self.sharing.stop()  # stopped mid-exchange: no later frame may read this one's
            raise
        finally:
            torch.set_num_threads(threads)
        return self.process_with(frame, SerialRun())

    def process_with(self, frame: Frame, run: SerialRun | Any) -> Result:
        """:meth:`process` by an executor: :class:`SerialRun`, or the
        :class:`~icemon.execution.mpi.Ranks` of a communicator. The one path: only who
        owns which atoms differs."""
        t0 = time.perf_counter()
        den = run.denoise(self.denoiser, frame)
        t1 = time.perf_counter()
        feats, sub, rows = run.describe(self.soap, den.positions, frame.cell,
                                        self.classifier.shell)
        t2 = time.perf_counter()
        out = self.classifier.label_frame(feats, den.positions, frame.cell,
                                          given=frame.positions, share=run, sub=sub, rows=rows)
        t3 = time.perf_counter()
        return Result(frame, out.labels, out.scores.astype(np.float32), den.positions,
                      out.nearest, den.n_steps,
                      {"neighbors": den.seconds_neighbors, "network": den.seconds_network,
                       "denoise": t1 - t0, "soap": t2 - t1, "classify": t3 - t2,
                       "total": t3 - t0}, self.model.phases, out.atom_scores.astype(np.float32))

    def __call__(self, positions: np.ndarray, cell: np.ndarray,
                 atom_ids: np.ndarray | None = None) -> Result:
        return self.process(Frame(positions, cell, atom_ids))
