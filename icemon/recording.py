"""The one place where a frame is classified and appended to a log, and the one object
that says how frames are classified.

:class:`Options` (model, denoising passes, device, compile, threads) is what every entry
point takes and hands down unchanged; :class:`Recorder` is the only code that processes a
frame and appends its result to an ``icemon/1`` log: the simulation hooks' monitor
(:mod:`icemon.hooks.monitor`), :class:`~icemon.integrations.mdanalysis.IcePhases` and
``icemon classify`` all record through it, so what a log holds does not depend on how
the frame arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from icemon.execution.pipeline import Pipeline, Result
    from icemon.execution.pool import FramePool
    from icemon.geometry.clusters import ClusterRule
    from icemon.geometry.frame import Frame
    from icemon.io.log import LogWriter
    from icemon.model.modelfile import IcemonModel


@dataclass(frozen=True)
class Options:
    """How frames are classified (the keywords every hook, ``IcePhases`` and the CLI take).

    model: a model file path, a loaded model, or None for the shipped default;
    denoise_steps: override the model's denoising passes (0 = raw positions);
    device: torch device of the network ("cpu", "cuda");
    compile: run the network through ``torch.compile`` (None: the default, compiled unless
    ``$ICEMON_COMPILE=0``);
    threads: torch threads (process-wide) while classifying; None = leave as is."""

    model: str | Path | IcemonModel | None = None
    denoise_steps: int | None = None
    device: str = "cpu"
    compile: bool | None = None
    threads: int | None = None

    def __post_init__(self) -> None:
        from icemon.errors import ConfigError

        if self.threads is not None and int(self.threads) < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.denoise_steps is not None and int(self.denoise_steps) < 0:
            raise ConfigError(f"denoise_steps must be ≥ 0, got {self.denoise_steps}")

    def with_(self, **changes: Any) -> Options:
        """A copy with some options changed."""
        return replace(self, **changes)

    def pipeline(self, comm: Any | None = None) -> Pipeline:
        """A :class:`~icemon.execution.pipeline.Pipeline` with these options (``comm``: MPI
        ranks sharing each frame)."""
        from icemon.execution.pipeline import Pipeline

        return Pipeline(self.model, denoise_steps=self.denoise_steps, device=self.device,
                        comm=comm, compile=self.compile)

    def pool(self, workers: int) -> FramePool:
        """A :class:`~icemon.execution.pool.FramePool` of ``workers`` processes."""
        from icemon.execution.pool import FramePool

        return FramePool(self.model, workers, denoise_steps=self.denoise_steps,
                         compile=self.compile, device=self.device)


class Classifies(Protocol):
    """What a recorder needs of a pipeline (:class:`Pipeline` or :class:`FramePool`)."""

    def process(self, frame: Frame) -> Result: ...

    def log_settings(self) -> dict: ...


class Recorder:
    """Classify frames and append them to one log.

    Args:
        pipeline: what classifies (its :meth:`log_settings` go into the log).
        log: path of the HDF5 log; created, or appended to after the writer checked that
            it matches (never truncated).
        atom_ids: the monitored atoms' ids; None = those of the first frame (the log is
            then created with the first frame).
        source: free text recorded in the log.
        positions: also store given and denoised positions.
        start_step, resume_from, fsync: how a restarted run meets an existing log, and
            whether every frame is synced to disk (:class:`~icemon.io.log.LogWriter`).
        clusters, cluster_ids: the cluster rule of the logged cluster series, and whether
            each molecule's cluster id is logged too."""

    def __init__(self, pipeline: Classifies, log: str | Path, *,
                 atom_ids: np.ndarray | None = None, source: str = "",
                 positions: bool = True, start_step: int | None = None,
                 resume_from: int | None = None, fsync: bool = False,
                 clusters: ClusterRule | None = None, cluster_ids: bool = False) -> None:
        self.pipeline = pipeline
        self.log = Path(log)
        self.source = source
        self.positions = positions
        self._writer_options = {"start_step": start_step, "resume_from": resume_from,
                                "fsync": fsync, "clusters": clusters,
                                "cluster_ids": cluster_ids}
        self.writer: LogWriter | None = None
        self.n_logged = 0
        """Frames appended by this recorder."""
        if atom_ids is not None:
            self._open(np.asarray(atom_ids))

    def _open(self, atom_ids: np.ndarray) -> LogWriter:
        from icemon.io.log import LogWriter

        self.writer = LogWriter(self.log, atom_ids, **self.pipeline.log_settings(),
                                source=self.source, positions=self.positions,
                                **self._writer_options)
        return self.writer

    def record(self, frame: Frame) -> Result:
        """Classify ``frame`` and append it; returns the result. Raises what classifying
        or writing raised (nothing is appended then). The frame is classified before the
        log checks its step: under MPI every rank takes part in classifying it."""
        return self.append(self.pipeline.process(frame))

    def append(self, result: Result) -> Result:
        """Append a frame classified elsewhere (a :class:`FramePool` worker, an MPI rank)."""
        writer = self.writer if self.writer is not None else self._open(result.frame.atom_ids)
        writer.append(result)
        self.n_logged += 1
        return result

    def record_error(self, step: int, message: str) -> None:
        """Record a frame that could not be classified (the log's ``errors``)."""
        if self.writer is not None:
            self.writer.record_error(step, message)

    def close(self) -> None:
        """Close the log (idempotent)."""
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
