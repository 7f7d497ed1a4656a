"""One frame shared by processes of one machine, without MPI: how a :class:`Pipeline` on
more than one core shares a frame by default.

Threads cannot share a frame's work well here: the compiled network gains nothing from a
second torch thread at these sizes, and dscribe holds Python's GIL. So a
:class:`~icemon.execution.pipeline.Pipeline` allowed ``k`` threads starts ``k - 1`` helper
processes (one torch thread each) and shares every large enough frame with them exactly
as MPI ranks share one (:mod:`icemon.execution.mpi`: spatial shares, features exchanged
after each network block, SOAP of the own atoms, labels gathered). The helpers talk to
this process through :class:`PipeComm`, a stand-in for the few collective operations of
an mpi4py communicator that the MPI path uses, over pipes; the labelling path is the one
every other executor runs. Measured on 2 cores against one process with 1 thread: 1.3× on
~1,100-O frames, 2.2–2.4× on 8,192–37,632-O frames, at twice the memory
(benchmarks/README.md).

Helpers start in the background at the first large frame (which runs alone meanwhile,
so a run of one frame never waits for them), or when a hook's monitor attaches
(:meth:`~icemon.execution.pipeline.Pipeline.start_helpers`).

Failure rules: a frame that fails on any process fails on all of them at the same point
(the MPI path's collective errors), and the calling process then runs it again alone, so
the caller sees the same error (type and message) as without helpers. A helper that dies
is noticed at the next exchange (its pipe closes): one warning, the helpers are stopped
and this and every later frame run in one process. An interruption (Ctrl-C, a signal)
in the middle of a shared frame stops the helpers too, so that no later frame reads an
exchange of this one; the next large frame starts them again.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import warnings
import weakref
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from icemon.errors import IcemonError

MIN_ATOMS_PER_PROCESS = 400
"""A frame is shared by at most ``n_atoms // MIN_ATOMS_PER_PROCESS`` processes; smaller
frames run in one (their halos would be most of each share)."""

MAX_TEAM = 8
"""At most this many processes share one frame, whatever torch's thread count says."""


READY = "ready"
"""What a helper sends once it has started (frames are shared from then on)."""


class TeamError(IcemonError, RuntimeError):
    """A helper process stopped (its pipe closed) in the middle of a shared frame."""


def _max(values: list[Any]) -> Any:
    return max(values)


class PipeComm:
    """The collective operations :mod:`icemon.execution.mpi` uses (``rank``, ``size``,
    ``allgather``, ``Allgatherv``, ``allreduce`` with :attr:`MAX`), over pipes between
    the processes of one machine: a star around rank 0, which gathers every rank's part
    and sends the whole back (every rank sends before it receives, rank 0 receives from
    all before it sends, so no two processes ever wait on each other's send).

    ``links``: on rank 0, the connections to ranks 1 … size-1 in rank order; on any
    other rank, the one connection to rank 0."""

    MAX = staticmethod(_max)
    """The reduction :func:`icemon.execution.mpi` asks for (``op=comm.MAX``)."""

    def __init__(self, rank: int, size: int, links: list[Connection]) -> None:
        self.rank = rank
        self.size = size
        self.links = links

    def _recv(self, link: Connection) -> Any:
        try:
            return link.recv()
        except (EOFError, OSError) as exc:
            raise TeamError(f"a frame-sharing process stopped ({type(exc).__name__})") from exc

    def _send(self, link: Connection, obj: Any) -> None:
        try:
            link.send(obj)
        except OSError as exc:
            raise TeamError(f"a frame-sharing process stopped ({type(exc).__name__})") from exc

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.rank != 0:
            self._send(self.links[0], obj)
            return self._recv(self.links[0])
        parts = [obj] + [self._recv(link) for link in self.links[:self.size - 1]]
        for link in self.links[:self.size - 1]:
            self._send(link, parts)
        return parts

    def Allgatherv(self, sendbuf: np.ndarray, recv: tuple[np.ndarray, Any]) -> None:  # noqa: N802 - mpi4py's name
        """Every rank's rows of ``sendbuf`` concatenated in rank order into ``recv[0]``
        (``recv[1]``, the per-rank counts, is implied by the parts)."""
        out = recv[0]
        if self.rank != 0:
            self._send(self.links[0], np.ascontiguousarray(sendbuf))
            out[...] = self._recv(self.links[0])
            return
        parts = [np.asarray(sendbuf)] + [self._recv(link) for link in self.links[:self.size - 1]]
        whole = np.concatenate([p.reshape(-1) for p in parts]).reshape(out.shape)
        for link in self.links[:self.size - 1]:
            self._send(link, whole)
        out[...] = whole

    def allreduce(self, obj: Any, op: Any = None) -> Any:
        """``op`` (default :attr:`MAX`) of every rank's ``obj``, on every rank."""
        return (op or _max)(self.allgather(obj))

    def bcast(self, obj: Any = None, root: int = 0) -> Any:
        """Rank 0's ``obj`` on every rank (rank 0 only: ``root`` must be 0)."""
        if root != 0:
            raise ValueError("PipeComm broadcasts from rank 0 only")
        if self.rank != 0:
            return self._recv(self.links[0])
        for link in self.links[:self.size - 1]:
            self._send(link, obj)
        return obj

    def sub(self, size: int) -> PipeComm:
        """The first ``size`` ranks as a communicator of their own (rank 0's view)."""
        return PipeComm(self.rank, size, self.links)


class Team:
    """``size - 1`` helper processes that share frames with this one (rank 0).

    Each helper is a fresh interpreter (``python -c``, so neither forked torch threads
    nor a re-import of the user's script, which ``multiprocessing``'s spawn would do)
    holding a :class:`~icemon.execution.pipeline.Pipeline` of the same model file and
    settings with one torch thread; it waits for frames and takes its share of each. It
    talks to this process over a socket pair. ``model_path``: the model file (None: the
    shipped one)."""

    def __init__(self, size: int, model_path: str | None, denoise_steps: int | None,
                 tol: float | None, compile: bool | None) -> None:
        self.size = size
        self.procs: list[subprocess.Popen] = []
        links: list[Connection] = []
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   MKL_NUM_THREADS="1")
        settings = json.dumps({"model": model_path, "denoise_steps": denoise_steps,
                               "tol": tol, "compile": compile})
        for rank in range(1, size):
            mine, theirs = socket.socketpair()
            proc = subprocess.Popen(
                [sys.executable, "-c", "from icemon.execution.team import main; main()",
                 str(theirs.fileno()), str(rank), str(size), settings],
                pass_fds=(theirs.fileno(),), env=env)
            theirs.close()  # only the helper holds its end: its exit closes the pipe
            self.procs.append(proc)
            links.append(Connection(mine.detach()))
        self.comm = PipeComm(0, size, links)
        self._ready = [False] * (size - 1)
        # helpers of a team that is collected without close() stop too
        self._finalizer = weakref.finalize(self, _stop, links, self.procs, self._ready)

    def ready(self) -> bool:
        """Whether every helper has started (imported torch, loaded the model); never
        waits. A helper that died while starting raises :class:`TeamError`."""
        for k, link in enumerate(self.comm.links):
            if not self._ready[k] and link.poll(0):
                if self.comm._recv(link) != READY:
                    raise TeamError("a frame-sharing process sent something unexpected")
                self._ready[k] = True
        return all(self._ready)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until :meth:`ready` (at most ``timeout`` s, then :class:`TeamError`)."""
        for k, link in enumerate(self.comm.links):
            if not self._ready[k] and not link.poll(timeout):
                raise TeamError(f"a frame-sharing process did not start within {timeout:g} s")
        if not self.ready():
            raise TeamError("a frame-sharing process did not start")

    def share(self, frame: Any, size: int) -> PipeComm:
        """Hand ``frame`` to the first ``size - 1`` helpers (the others wait for the next
        one); returns rank 0's communicator of those ``size`` processes."""
        self.comm.bcast((frame, size))
        return self.comm.sub(size)

    def close(self) -> None:
        """Stop the helpers (idempotent): a ``None`` frame, then a kill after 5 s."""
        self._finalizer()


def _stop(links: list[Connection], procs: list[subprocess.Popen], ready: list[bool]) -> None:
    for link, proc, started in zip(links, procs, ready):
        if not started:  # still starting: it holds nothing yet
            proc.kill()
            continue
        try:
            link.send(None)
        except (OSError, ValueError):
            pass
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for link in links:
        link.close()
    procs.clear()


class Sharing:
    """A pipeline's helpers: how many processes share a frame of a given size, starting
    them in the background, and giving up on them for good when one stops.

    ``processes``: None = torch's thread count; ``model`` and the denoising settings are
    what every helper's pipeline is built with (the model is handed over as a copy in a
    temporary file: weights + config, never a pickled module)."""

    def __init__(self, processes: int | None, model: Any, max_steps: int, tol: float,
                 compile: bool) -> None:
        from icemon.errors import ConfigError

        if processes is not None and int(processes) < 1:
            raise ConfigError(f"processes must be at least 1, got {processes}")
        self.processes = processes
        self.model = model
        self.settings = (max_steps, tol, compile)
        self.team: Team | None = None
        self.failed = False
        """A helper stopped or could not start: frames run alone from then on."""
        self._model_file: tempfile.TemporaryDirectory | None = None

    def size(self, n_atoms: int) -> int:
        """Processes for a frame of ``n_atoms`` oxygens: ``processes`` (or torch's thread
        count), at most :data:`MAX_TEAM` and one per :data:`MIN_ATOMS_PER_PROCESS`."""
        import torch

        if self.failed:
            return 1
        allowed = self.processes if self.processes is not None else torch.get_num_threads()
        return max(1, min(int(allowed), MAX_TEAM, n_atoms // MIN_ATOMS_PER_PROCESS))

    def start(self, size: int, wait: bool, timeout: float = 120.0) -> bool:
        """Start helpers for ``size`` processes if they are not running; with ``wait``,
        wait for them (at most ``timeout`` s). Whether they are up; False for good, with
        one warning, when one could not start."""
        try:
            if self.team is not None and self.team.size < size:
                self.stop()
            if self.team is None:
                self._model_file = tempfile.TemporaryDirectory(prefix="icemon-team-")
                path = self.model.save(Path(self._model_file.name) / "model.npz", adopt=False)
                self.team = Team(size, str(path), *self.settings)
            if wait:
                self.team.wait_ready(timeout)
            return self.team.ready()
        except (TeamError, OSError) as exc:
            self.give_up(exc)
            return False

    def share(self, frame: Any, size: int) -> PipeComm:
        """Hand ``frame`` to the helpers (:meth:`Team.share`)."""
        assert self.team is not None
        return self.team.share(frame, size)

    def give_up(self, exc: BaseException) -> None:
        """One warning; the helpers stop and every later frame runs alone."""
        warnings.warn(f"{exc}; classifying in one process from now on", RuntimeWarning,
                      stacklevel=4)
        self.failed = True
        self.stop()

    def stop(self) -> None:
        """Stop the helpers (idempotent; a later frame starts them again)."""
        if self.team is not None:
            self.team.close()
            self.team = None
        if self._model_file is not None:
            self._model_file.cleanup()
            self._model_file = None


def main() -> None:
    """A helper's entry point: ``fd rank size settings-json`` from :class:`Team`."""
    fd, rank, size, settings = sys.argv[1:5]
    c = json.loads(settings)
    _serve(int(rank), int(size), Connection(int(fd)), c["model"], c["denoise_steps"],
           c["tol"], c["compile"])


def _serve(rank: int, size: int, link: Connection, model_path: str | None,
           denoise_steps: int | None, tol: float | None, compile: bool | None) -> None:
    """A helper's life: take a share of every frame rank 0 hands over, until ``None`` or
    rank 0's end of the pipe closes."""
    import signal

    import torch

    # Ctrl-C in a terminal reaches the whole process group: rank 0 alone handles it (and
    # stops the helpers), so that a caller that carries on still has its helpers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    from icemon.execution.mpi import CollectiveError, Ranks
    from icemon.execution.pipeline import Pipeline

    pipe = Pipeline(model_path, denoise_steps=denoise_steps, tol=tol, compile=compile,
                    processes=1)
    comm = PipeComm(rank, size, [link])
    try:
        link.send(READY)
        while True:
            try:
                job = comm.bcast()
            except TeamError:
                return
            if job is None:
                return
            frame, n = job
            if rank >= n:
                continue
            sub = comm.sub(n)
            try:
                pipe.process_with(frame, Ranks.for_frame(sub, frame, pipe.soap.config.reach))
            except CollectiveError:
                continue  # every process raised it at the same point: rank 0 reruns it
            except TeamError:
                return
    except Exception:  # noqa: BLE001 - outside the collective protocol: leave it, so that
        return         # rank 0 sees the pipe close and runs its frames alone
    finally:
        pipe.close()
        link.close()
