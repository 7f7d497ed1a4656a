"""Whole frames shared by worker processes: the throughput path for trajectories.

A frame of ~1,000 oxygens is too small for two threads to share well: torch's threads
and the SOAP helper process wait on each other at every stage (the shipped model,
GCIceNet frames: 1 thread 5.4×10³ O/s, 2 threads 7.3×10³, compiled). When frames are
many (``icemon classify`` on a trajectory, a benchmark), each worker process takes whole
frames with one thread of its own, and nothing is shared inside a frame.

In-situ monitoring has one frame at a time, so it shares the atoms instead
(:mod:`icemon.execution.mpi`); :class:`FramePool` (processes on one machine) and
:func:`share_frames` (MPI ranks) are for frames that are all there.

>>> with FramePool(workers=2) as pool:
...     for result in pool.imap(frames):     # results in frame order
...         print(result.fractions)
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from icemon.execution.pipeline import Pipeline, Result
    from icemon.geometry.frame import Frame
    from icemon.model.modelfile import IcemonModel

_PIPE: Pipeline | None = None
"""The worker process's pipeline (built once by :func:`_start`)."""


def _start(model: str | None, denoise_steps: int | None, compile: bool | None, device: str) -> None:
    """Worker initialiser: one torch thread, SOAP in this process, the model loaded once."""
    import torch

    torch.set_num_threads(1)
    from icemon.execution.pipeline import Pipeline

    global _PIPE
    _PIPE = Pipeline(model, denoise_steps=denoise_steps, device=device, compile=compile)


def _process(frame: Frame) -> Result:
    assert _PIPE is not None
    return _PIPE.process(frame)


class FramePool:
    """Classify frames in ``workers`` processes of one thread each, results in order.

    Args:
        model: a model file path, a loaded model, or None for the shipped default.
        workers: worker processes (one core each).
        denoise_steps, compile, device: as for :class:`~icemon.execution.pipeline.Pipeline`;
            with ``compile`` each worker compiles once (inductor's on-disk cache makes
            the second one quick).

    At most ``2 × workers`` frames are in flight, so a long trajectory is read as it is
    classified, not all at once. A frame that fails raises its error when its result is
    reached, in frame order. The workers start with the pool (spawned: a fresh
    interpreter each, no forked torch threads) and stop with :meth:`close`.
    """

    def __init__(self, model: str | Path | IcemonModel | None = None, workers: int = 2, *,
                 denoise_steps: int | None = None, compile: bool | None = None,
                 device: str = "cpu") -> None:
        from icemon.errors import ConfigError
        from icemon.model.modelfile import IcemonModel

        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._denoise_steps = denoise_steps
        self._device = device
        self._tmp: tempfile.TemporaryDirectory | None = None
        if isinstance(model, IcemonModel):
            self.model = model
            # workers load the model from a file (weights + config), never a pickled module
            if model.path is not None and model.path.exists():
                path: str | None = str(model.path)
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="icemon-pool-")
                path = str(model.save(Path(self._tmp.name) / "model.npz"))
        else:
            path = None if model is None else str(model)
            self.model = IcemonModel.load(path)  # a bad file fails here, with its message
        env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # spawned workers inherit one-thread BLAS/OpenMP pools
        try:
            self._executor = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start, initargs=(path, denoise_steps, compile, device))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def log_settings(self) -> dict:
        """What a :class:`~icemon.io.log.LogWriter` records of the workers' pipelines."""
        from icemon.execution.pipeline import log_settings

        m = self.model
        steps = m.denoise_steps if self._denoise_steps is None else self._denoise_steps
        return log_settings(m, steps, m.denoise_tol, self._device)

    def imap(self, frames: Iterable[Frame]) -> Iterator[Result]:
        """Results of ``frames``, in their order."""
        pending: deque[Future] = deque()
        for frame in frames:
            pending.append(self._executor.submit(_process, frame))
            if len(pending) >= 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Stop the workers (pending frames are dropped)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> FramePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def share_frames(pipe: Pipeline, frames: Iterable[Frame], comm: Any
                 ) -> Iterator[Result | None]:
    """Frames dealt to the MPI ranks of ``comm`` in turn (frame k to rank k mod P), each
    classified whole by its rank's own serial ``pipe``; rank 0 yields the results in frame
    order, every other rank yields None per frame. Every rank iterates the same frames.

    Why frames and not atoms: on the 54 GCIceNet frames (~1,100 O each), shipped model
    compiled, 2 ranks of one thread, alternating runs: sharing each frame's atoms 8.5, 8.9,
    9.0 and 10.6 ×10³ O/s, whole frames 9.4, 10.6 and 13.0 ×10³ (one rank: 6.4×10³).
    Small frames leave little per-atom work to share, and the atoms path synchronises the
    ranks after every network block.

    A frame that fails on any rank raises :class:`~icemon.execution.mpi.CollectiveError`
    on every rank, after the results before it have been yielded; no rank waits."""
    from icemon.execution.mpi import CollectiveError

    frames = iter(frames)
    while batch := list(itertools.islice(frames, comm.size)):
        result, error = None, None
        if comm.rank < len(batch):
            frame = batch[comm.rank]
            try:
                result = pipe.process(frame)
            except Exception as exc:  # noqa: BLE001 - reported on every rank below
                error = f"frame at step {frame.step}: {type(exc).__name__}: {exc}"
        errors = comm.allgather(error)
        results = comm.gather(result, root=0)
        for k in range(len(batch)):
            if errors[k]:
                raise CollectiveError(errors[k])
            yield results[k] if comm.rank == 0 else None
