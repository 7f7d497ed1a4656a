"""Whole frames shared by worker processes: the throughput path for trajectories.

A frame of ~1,000 oxygens is too small for two threads to share well: torch's threads
and the SOAP helper process wait on each other at every stage (the shipped model,
GCIceNet frames: 1 thread 5.4×10³ O/s, 2 threads 7.3×10³, compiled). When frames are
many (``icemon classify`` on a trajectory, a benchmark), each worker process takes whole
frames with one thread of its own, and nothing is shared inside a frame.

In-situ monitoring has one frame at a time, so it shares the atoms instead
(:mod:`icemon.core.parallel`); :class:`FramePool` is for frames that are all there.

>>> with FramePool(workers=2) as pool:
...     for result in pool.imap(frames):     # results in frame order
...         print(result.fractions)
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from icemon.core.frame import Frame
    from icemon.core.modelfile import IcemonModel
    from icemon.core.pipeline import Pipeline, Result

_PIPE: Pipeline | None = None
"""The worker process's pipeline (built once by :func:`_start`)."""


def _start(model: str | None, denoise_steps: int | None, compile: bool, device: str) -> None:
    """Worker initialiser: one torch thread, SOAP in this process, the model loaded once."""
    import torch

    torch.set_num_threads(1)
    from icemon.core.pipeline import Pipeline

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
        denoise_steps, compile, device: as for :class:`~icemon.core.pipeline.Pipeline`;
            with ``compile`` each worker compiles once (inductor's on-disk cache makes
            the second one quick).

    At most ``2 × workers`` frames are in flight, so a long trajectory is read as it is
    classified, not all at once. A frame that fails raises its error when its result is
    reached, in frame order. The workers start with the pool (spawned: a fresh
    interpreter each, no forked torch threads) and stop with :meth:`close`.
    """

    def __init__(self, model: str | Path | IcemonModel | None = None, workers: int = 2, *,
                 denoise_steps: int | None = None, compile: bool = False,
                 device: str = "cpu") -> None:
        from icemon.core.modelfile import IcemonModel
        from icemon.errors import ConfigError

        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._tmp: tempfile.TemporaryDirectory | None = None
        if isinstance(model, IcemonModel):
            # workers load the model from a file (weights + config), never a pickled module
            if model.path is not None and model.path.exists():
                path: str | None = str(model.path)
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="icemon-pool-")
                path = str(model.save(Path(self._tmp.name) / "model.npz"))
        else:
            path = None if model is None else str(model)
            IcemonModel.load(path)  # a bad model file fails here, with its own message
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
