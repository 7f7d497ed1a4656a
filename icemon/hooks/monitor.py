"""The live monitor: a :class:`Pipeline` plus a :class:`~icemon.recording.Recorder`.

The simulation hooks (:mod:`icemon.hooks.lammps`, :mod:`icemon.hooks.ase`, :mod:`icemon.hooks.ipi`) turn
their snapshots into :class:`Frame` objects and hand them to a :class:`Monitor`, which
classifies each one and appends it to the ``icemon/1`` log (flushed, SWMR: readable while
the run goes on; a crash loses at most the frame in progress).

With ``overlap=True`` frames go through a queue to a worker thread, so the simulation
only waits for the hand-over (and for the worker when it falls ``queue_size`` frames
behind); frames reach the log in order and :meth:`Monitor.close` waits for the last one.
Use the monitor as a context manager; if the script dies with an exception anyway, an
exit hook still empties the queue into the log before the interpreter ends, and a SIGTERM
(what batch schedulers send at the time limit, before SIGKILL) empties it too, then ends
the process as SIGTERM would have (the handler is installed from the main thread, chained
to any handler already there; Python runs it when the engine next returns to Python, at
the next frame at the latest). Closing waits at most ``close_timeout`` seconds for the
worker: frames still queued then are reported and dropped, never half-written.

A frame that cannot be classified or written (bad coordinates, a full disk...) is
reported (a warning on stderr), recorded in the log's ``errors`` dataset when possible
and skipped: the monitor never raises into the simulation after it has started, and the
frames already in the log stay intact.
"""

from __future__ import annotations

import atexit
import os
import queue
import signal
import threading
import time
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path

import numpy as np

from icemon.execution.pipeline import Pipeline, Result
from icemon.execution.threads import set_torch_threads
from icemon.geometry.clusters import ClusterRule
from icemon.geometry.frame import Frame
from icemon.hooks.stop import StopWhen, as_condition
from icemon.io.log import AlreadyLogged, LogWriter
from icemon.model.modelfile import IcemonModel
from icemon.recording import Options, Recorder


def _close_at_exit(ref: weakref.ReferenceType) -> None:
    """Interpreter exit: let an overlapping monitor's worker empty its queue into the log."""
    monitor = ref()
    if monitor is not None:
        monitor.close()


_TERMINATING: weakref.WeakSet = weakref.WeakSet()  # overlapping monitors open now
_PREVIOUS_TERM: list = []  # the SIGTERM handler before icemon's (installed once)


def _on_sigterm(signum: int, stack) -> None:
    """SIGTERM: empty every overlapping monitor's queue into its log, then do what the
    previous handler did (by default: end the process by the signal)."""
    for monitor in list(_TERMINATING):
        monitor.close()
    previous = _PREVIOUS_TERM[0] if _PREVIOUS_TERM else signal.SIG_DFL
    signal.signal(signal.SIGTERM, previous)
    _PREVIOUS_TERM.clear()
    if callable(previous):
        previous(signum, stack)
    elif previous == signal.SIG_DFL:
        os.kill(os.getpid(), signum)


def _flush_on_sigterm(monitor: Monitor) -> None:
    """Have SIGTERM flush ``monitor``'s queue (only from the main thread, where Python
    allows installing handlers; a handler set outside Python is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        return
    if not _PREVIOUS_TERM:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is None or previous == signal.SIG_IGN:
            return
        _PREVIOUS_TERM.append(previous)
        signal.signal(signal.SIGTERM, _on_sigterm)
    _TERMINATING.add(monitor)


class MonitorWarning(UserWarning):
    """A frame the monitor had to skip (the simulation goes on)."""


class Monitor:
    """Classify frames of a running simulation into a live ``icemon/1`` log.

    Args:
        log: path of the HDF5 log; created, or appended to after checking that its
            schema, model and atom ids match (never truncated).
        atom_ids: (N,) ids of the monitored atoms, fixed for the whole log.
        model: model file, loaded model, or None for the shipped one (ignored when
            ``pipeline`` is given).
        pipeline: an already configured :class:`Pipeline`.
        source: free text recorded in the log (what is being monitored).
        positions: also store given and denoised positions (needed for melting-front
            tracking and export; turn off for huge systems).
        overlap: classify in a worker thread while the simulation goes on.
        queue_size: at most this many frames wait for the worker before the
            simulation is held back (bounds memory).
        denoise_steps, device, compile: passed to :class:`Pipeline` (ignored when
            ``pipeline`` is given).
        threads: torch threads (process-wide), which is also the number of processes
            sharing a frame (:class:`Pipeline`); default 1 with ``overlap`` (measured: 2 threads beside a
            running simulation on 2 cores made each frame 2-4x slower), else unchanged.
        on_frame: called with each result after it is in the log (in the worker thread
            with ``overlap``); an exception there is warned about, the frame stays logged.
        options: an :class:`~icemon.recording.Options` instead of model, denoise_steps,
            device, compile and threads.
        start_step: the MD step the run starts at; an existing log with later steps is
            refused unless ``resume_from`` is given (:class:`~icemon.io.log.LogWriter`).
        resume_from: drop the existing log's frames after this step and continue there.
        fsync: sync the log to disk after every frame.
        close_timeout: with ``overlap``, the longest :meth:`close` waits for the worker
            (s); frames still queued then are reported and not logged.
        clusters: what an ice cluster is (:class:`~icemon.geometry.clusters.ClusterRule`;
            default rule when None); every frame's clusters are logged.
        stop_when: a stop condition (:mod:`icemon.hooks.stop`), checked on every logged
            frame; when met, :attr:`stop_requested` is set and recorded in the log, and
            the hook ends the simulation.
    """

    def __init__(self, log: str | Path, atom_ids: np.ndarray, *,
                 model: str | Path | IcemonModel | None = None,
                 pipeline: Pipeline | None = None, source: str = "",
                 positions: bool = True, overlap: bool = False, queue_size: int = 2,
                 denoise_steps: int | None = None, device: str = "cpu",
                 compile: bool | None = None,
                 threads: int | None = None,
                 on_frame: Callable[[Result], None] | None = None,
                 options: Options | None = None, start_step: int | None = None,
                 resume_from: int | None = None, fsync: bool = False,
                 close_timeout: float = 600.0, clusters: ClusterRule | None = None,
                 stop_when: str | Callable[[Result], bool] | None = None) -> None:
        if options is not None:  # one object instead of the keywords
            model, denoise_steps, device = options.model, options.denoise_steps, options.device
            compile, threads = options.compile, options.threads
        if threads is None and overlap:
            threads = 1  # the simulation keeps a core busy meanwhile; more would oversubscribe
        self._threads_before: int | None = None
        self.on_frame = on_frame
        self._own_pipeline = pipeline is None
        self._worker: threading.Thread | None = None
        self.close_timeout = float(close_timeout)
        self._abandon = False  # set when close gave up waiting: the worker drops the rest
        self._queue: queue.Queue | None = None
        self.pipeline: Pipeline | None = None
        self.recorder: Recorder | None = None
        self.errors: list[tuple[int, str]] = []
        """(step, message) of every frame that was skipped."""
        self.n_logged = 0
        """Frames appended to the log by this monitor."""
        self.seconds = 0.0
        """Wall time spent classifying and writing (s; in the worker with ``overlap``)."""
        self.last: Result | None = None
        """The most recent result."""
        self.stop_requested: tuple[int, str] | None = None
        """(step, reason) of the first frame that met ``stop_when``."""
        self.stop_when: StopWhen | None = None
        if threads:
            self._threads_before = set_torch_threads(int(threads))
        try:
            self.pipeline = pipeline or Options(model, denoise_steps, device,
                                                compile).pipeline()
            self.stop_when = as_condition(stop_when, self.pipeline.model.phases, clusters)
            self.recorder = Recorder(self.pipeline, log, atom_ids=atom_ids, source=source,
                                     positions=positions, start_step=start_step,
                                     resume_from=resume_from, fsync=fsync,
                                     clusters=clusters)
        except BaseException:
            self.close()  # torch's thread count restored, helpers stopped
            raise
        # processes that share each frame (on 2+ threads) start now, beside the engine's
        # set-up; the first frame waits for them (Pipeline.start_helpers)
        self._wait_for_helpers = self.pipeline.start_helpers(len(atom_ids), wait=False) > 1
        if overlap:
            self._queue = queue.Queue(maxsize=max(1, int(queue_size)))
            self._worker = threading.Thread(target=self._drain, args=(self._queue,),
                                            name="icemon-monitor", daemon=True)
            self._worker.start()
            # queued frames reach the log even if the user's script dies with an exception
            atexit.register(_close_at_exit, weakref.ref(self))
            _flush_on_sigterm(self)

    @property
    def writer(self) -> LogWriter | None:
        """The log's writer (None once closed or if it could not be opened)."""
        return None if self.recorder is None else self.recorder.writer

    @property
    def path(self) -> Path:
        return self.recorder.log

    @property
    def overlap(self) -> bool:
        return self._worker is not None

    def __call__(self, frame: Frame) -> Result | None:
        """Classify and log one frame (or queue it, with ``overlap``).

        Returns the result, or None when queued or skipped."""
        if self._queue is not None:
            if not self._worker.is_alive():
                self._skip(frame.step, RuntimeError("monitor worker is not running"))
                return None
            self._queue.put(frame)
            return None
        return self._process(frame)

    def fail(self, step: int, error: BaseException | str) -> None:
        """Record a frame that the hook could not even assemble (e.g. atoms lost)."""
        self._skip(step, error)

    def _process(self, frame: Frame) -> Result | None:
        t0 = time.perf_counter()
        try:
            if self._wait_for_helpers:  # the first frame only
                self._wait_for_helpers = False
                self.pipeline.start_helpers(frame.n_atoms)
            result = self.recorder.record(frame)
        except AlreadyLogged:  # a restart's first frame, logged by the run it continues
            return None
        except Exception as exc:  # noqa: BLE001 - a monitor must never stop the simulation
            if not self._abandon:  # else: close gave up on this frame and said so
                self._skip(frame.step, exc)
            return None
        finally:
            self.seconds += time.perf_counter() - t0
        self.n_logged += 1
        self.last = result
        if self.stop_when is not None and self.stop_requested is None:
            self._check_stop(result)
        if self.on_frame is not None:
            try:
                self.on_frame(result)
            except Exception as exc:  # noqa: BLE001 - the user's callback must not stop the MD
                warnings.warn(f"icemon: on_frame callback failed at step {frame.step}: "
                              f"{type(exc).__name__}: {exc}", MonitorWarning, stacklevel=2)
        return result

    def _check_stop(self, result: Result) -> None:
        """Evaluate ``stop_when`` on a logged frame; when met, note and record it."""
        step = int(result.frame.step)
        try:
            met = self.stop_when(result)
        except Exception as exc:  # noqa: BLE001 - the user's callable must not stop the MD
            warnings.warn(f"icemon: stop_when failed at step {step}: {type(exc).__name__}: "
                          f"{exc}", MonitorWarning, stacklevel=3)
            return
        if met:
            self.stop_requested = (step, self.stop_when.reason)
            try:
                self.recorder.writer.record_stop(step, self.stop_when.reason)
            except Exception as exc:  # noqa: BLE001 - the stop itself still happens
                warnings.warn(f"icemon: could not record the stop in the log: {exc}",
                              MonitorWarning, stacklevel=3)

    def _skip(self, step: int, error: BaseException | str) -> None:
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.errors.append((int(step), message))
        warnings.warn(f"icemon: frame at step {step} skipped: {message}", MonitorWarning,
                      stacklevel=3)
        try:
            self.recorder.record_error(step, message)
        except Exception:  # noqa: BLE001 - the log may be what failed; the warning stays
            pass

    def _drain(self, frames: queue.Queue) -> None:
        while True:
            frame = frames.get()
            try:
                if frame is None:
                    return
                if not self._abandon:
                    self._process(frame)
            finally:
                frames.task_done()

    def flush(self) -> None:
        """Wait until every queued frame is in the log."""
        if self._queue is not None and self._worker.is_alive():
            self._queue.join()

    def close(self) -> None:
        """Wait for queued frames, then close the log, stop the SOAP helpers of a pipeline
        this monitor made and restore torch's thread count (idempotent)."""
        if self._worker is not None:
            if self._worker.is_alive():
                deadline = time.monotonic() + self.close_timeout
                try:
                    self._queue.put(None, timeout=self.close_timeout)
                except queue.Full:
                    pass
                self._worker.join(max(0.0, deadline - time.monotonic()))
                if self._worker.is_alive():
                    self._abandon = True
                    warnings.warn(f"icemon: the monitor worker did not finish within "
                                  f"{self.close_timeout:g} s; about {self._queue.qsize()} "
                                  "queued frame(s) are not logged (every frame completed "
                                  f"before is in {self.path})", MonitorWarning, stacklevel=2)
            _TERMINATING.discard(self)
            self._worker = None
            self._queue = None
        if self.recorder is not None:
            self.recorder.close()
        if self._own_pipeline and self.pipeline is not None:
            self.pipeline.close()
        if self._threads_before is not None:
            set_torch_threads(self._threads_before)
            self._threads_before = None

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
