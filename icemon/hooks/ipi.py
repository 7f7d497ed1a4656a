"""Live monitoring of i-PI simulations (classical and path-integral MD).

Through i-PI's Python scripting interface::

    from ipi.scripting import InteractiveSimulation
    sim = InteractiveSimulation(xml_string)          # sockets open here; start the drivers
    with icemon.hooks.ipi.attach(sim, "run.h5", every=100, oxygens="O") as mon:
        mon.run(10000)                               # i-PI steps, classified every 100
    sim.stop()

or for a run defined by an i-PI XML input (force engines connect through its sockets as
usual, e.g. LAMMPS with ``fix ipi``), in place of ``i-pi input.xml``::

    icemon ipi input.xml --every 100 -o run.h5       # runs total_steps of the input

Path-integral runs classify the centroid (the bead average of every oxygen, taken with
the minimum image so that a ring polymer split by the cell boundary averages correctly)
by default; ``beads="all"`` classifies every bead into its own log
(``run.bead0.h5``, ``run.bead1.h5``, ...). Only the first i-PI system is monitored.

i-PI blocks while it waits for a force engine; the monitor runs i-PI's steps in a worker
thread and raises :class:`IpiError` when no engine has been connected to a socket
forcefield for ``engine_timeout`` seconds (the engine stopped or never came), or when
i-PI has not completed a step for ``STALL_FACTOR × engine_timeout`` seconds although an
engine still looks connected (a killed engine can stay listed by i-PI while its socket
is polled; seen as an intermittent hang of the engine-stop test).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from icemon.errors import ConfigError, IcemonError
from icemon.geometry.clusters import ClusterRule
from icemon.geometry.frame import (
    Frame,
    FrameError,
    is_hydrogen_name,
    minimum_image,
    water_subset,
    wrap,
)
from icemon.hooks.base import Hook
from icemon.hooks.monitor import Monitor
from icemon.model.modelfile import IcemonModel
from icemon.recording import Options

STALL_FACTOR = 10
"""No step for this many ``engine_timeout`` s with an engine listed ⇒ the engine is gone
(default 10 × 60 s: a force call of ab initio MD can take minutes, not ten)."""


class IpiError(IcemonError, RuntimeError):
    """The i-PI run cannot be monitored (no oxygens, force engine gone, ...)."""


def _units():
    from ipi.utils.depend import dstrip
    from ipi.utils.units import unit_to_user

    return dstrip, unit_to_user("length", "angstrom", 1.0), unit_to_user("time", "picosecond", 1.0)


def centroid(beads: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """(N, 3) bead average of (P, N, 3) positions (Å), minimum image relative to bead 0."""
    ref = beads[0]
    return ref + minimum_image(beads - ref, cell).mean(axis=0)


class IpiMonitor(Hook):
    """Classify an i-PI simulation every ``every`` steps into ``icemon/1`` log(s).

    Args:
        sim: an ``ipi.scripting.InteractiveSimulation``.
        log: HDF5 log path (with ``beads="all"``: the stem of one log per bead).
        every: i-PI steps between classified frames (used by :meth:`run`).
        oxygens: element name of the oxygens in i-PI's atom names, or atom indices.
        beads: "centroid" (default) or "all".
        water_only: where i-PI's atom names include hydrogens, monitor only the selected
            oxygens with two of them within 1.25 Å (bead 0 at attach); the others are
            counted in a warning.
        engine_timeout: seconds without any connected force engine before giving up (and
            ``STALL_FACTOR`` times that without a completed step).
        model, threads, device, positions, overlap, denoise_steps, compile, source,
            on_frame: the keywords every hook shares (:mod:`icemon.hooks.base`).
    """

    def __init__(self, sim: Any, log: str | Path, *, every: int = 100,
                 oxygens: str | list[int] = "O", model: str | Path | IcemonModel | None = None,
                 threads: int | None = None, device: str = "cpu", positions: bool = True,
                 overlap: bool = False, denoise_steps: int | None = None,
                 compile: bool | None = None, source: str | None = None,
                 on_frame: Callable[[Any], None] | None = None, beads: str = "centroid",
                 engine_timeout: float = 60.0, resume_from: int | None = None,
                 fsync: bool = False, water_only: bool = True,
                 clusters: ClusterRule | None = None,
                 stop_when: str | Callable[[Any], bool] | None = None) -> None:
        if beads not in ("centroid", "all"):
            raise ConfigError(f"beads must be 'centroid' or 'all', not {beads!r}")
        if int(every) < 1:
            raise ConfigError(f"every must be a positive number of steps, not {every!r}")
        self.sim = sim
        self.system = sim.syslist[0]
        self.every = int(every)
        self.beads = beads
        self.engine_timeout = float(engine_timeout)
        self._dstrip, self._to_A, self._to_ps = _units()
        names = np.asarray(self._dstrip(self.system.beads.names)).astype(str)
        if isinstance(oxygens, str):
            self.indices = np.flatnonzero(names == oxygens)
            what = f"atoms named {oxygens!r}"
        else:
            self.indices = np.asarray(oxygens, dtype=np.int64)
            what = "the given indices"
        if self.indices.size == 0:
            raise FrameError(f"no oxygens to monitor in the i-PI system: no {what} among "
                             f"{len(names)} atoms ({', '.join(sorted(set(names)))})")
        self.nbeads = int(self.system.beads.nbeads)
        hydrogens = np.flatnonzero([is_hydrogen_name(n) for n in names])
        if water_only and hydrogens.size:  # water oxygens: two hydrogens within a bond
            q = np.asarray(self._dstrip(self.system.beads.q), dtype=np.float64)
            q = q.reshape(self.nbeads, -1, 3)[0] * self._to_A
            cell = np.asarray(self._dstrip(self.system.cell.h), dtype=np.float64).T * self._to_A
            self.indices = water_subset(self.indices, q[self.indices], q[hydrogens], cell)
        self.frames()  # validate coordinates and cell before any step
        pipe = Options(model, denoise_steps, device, compile).pipeline()
        self.pipeline = pipe
        """The pipeline every bead's monitor shares (this hook made it, so closes it)."""
        log = Path(log)
        kind = "path-integral" if self.nbeads > 1 else "classical"
        if beads == "centroid" or self.nbeads == 1:
            paths = [log]
            what = "centroid" if self.nbeads > 1 else "positions"
            sources = [f"i-PI {kind} MD, {self.nbeads} bead(s), {what}"]
        else:
            paths = [log.with_name(f"{log.stem}.bead{b}{log.suffix}") for b in range(self.nbeads)]
            sources = [f"i-PI {kind} MD, bead {b} of {self.nbeads}" for b in range(self.nbeads)]
        self.monitors = []
        try:
            for p, src in zip(paths, sources):
                self.monitors.append(Monitor(p, self.indices, pipeline=pipe,
                                             source=f"{source}; {src}" if source else src,
                                             positions=positions, overlap=overlap,
                                             # the first sets torch's threads, and
                                             # restores them last (closed in order)
                                             threads=None if self.monitors else threads,
                                             on_frame=on_frame,
                                             start_step=int(sim.step),
                                             resume_from=resume_from, fsync=fsync,
                                             clusters=clusters,
                                             stop_when=stop_when))
        except Exception:
            self.close()
            raise
        self._observed_step: int | None = None


    def close(self) -> None:
        """Wait for queued frames, close the log(s), then stop the shared pipeline's SOAP
        helper processes (idempotent)."""
        super().close()
        if getattr(self, "pipeline", None) is not None:
            self.pipeline.close()
    def frames(self) -> list[Frame]:
        """The current frame(s): one centroid frame, or one per bead with ``beads="all"``."""
        s = self.system
        q = np.asarray(self._dstrip(s.beads.q), dtype=np.float64).reshape(self.nbeads, -1, 3)
        q = q[:, self.indices] * self._to_A
        cell = np.asarray(self._dstrip(s.cell.h), dtype=np.float64).T * self._to_A
        step = int(self.sim.step)
        try:
            t = float(s.properties["time"][0]) * self._to_ps  # (value a.u., dimension, unit)
        except Exception:  # noqa: BLE001 - time is optional
            t = np.nan
        if self.beads == "centroid" or self.nbeads == 1:
            pos = centroid(q, cell) if self.nbeads > 1 else q[0]
            return [Frame(wrap(pos, cell), cell, self.indices, step=step, time=t)]
        return [Frame(q[b], cell, self.indices, step=step, time=t) for b in range(self.nbeads)]

    def observe(self) -> None:
        """Classify the current state (once per step)."""
        step = int(self.sim.step)
        if step == self._observed_step:
            return
        self._observed_step = step
        try:
            frames = self.frames()
        except Exception as exc:  # noqa: BLE001 - recorded, the simulation goes on
            for m in self.monitors:
                m.fail(step, exc)
            return
        for m, f in zip(self.monitors, frames):
            m(f)

    def _engines_connected(self) -> bool:
        sockets = [ff.socket for ff in self.sim.fflist.values() if hasattr(ff, "socket")]
        return not sockets or any(len(getattr(s, "clients", [])) > 0 for s in sockets)

    def _advance(self, steps: int) -> None:
        error: list[BaseException] = []

        def target() -> None:
            try:
                self.sim.run(steps)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                error.append(exc)

        worker = threading.Thread(target=target, name="icemon-ipi", daemon=True)
        worker.start()
        lost_since = None
        last_step, stepped_at = int(self.sim.step), time.monotonic()
        while worker.is_alive():
            worker.join(0.2)
            if not worker.is_alive():
                break
            now = time.monotonic()
            if int(self.sim.step) != last_step:
                last_step, stepped_at = int(self.sim.step), now
            if self._engines_connected():
                lost_since = None
            elif lost_since is None:
                lost_since = now
            logged = ", ".join(map(str, self.paths))
            if lost_since is not None and now - lost_since > self.engine_timeout:
                raise IpiError(f"the force engine stopped: no driver connected to i-PI for "
                               f"{self.engine_timeout:g} s (at step {self.sim.step}); the "
                               f"frames logged so far are in {logged}")
            if now - stepped_at > STALL_FACTOR * self.engine_timeout:
                raise IpiError(f"the force engine stopped: no i-PI step completed for "
                               f"{STALL_FACTOR * self.engine_timeout:g} s (at step "
                               f"{self.sim.step}; engine_timeout = {self.engine_timeout:g} s); "
                               f"the frames logged so far are in {logged}")
        if error:
            raise IpiError(f"i-PI stopped with {type(error[0]).__name__}: {error[0]}") \
                from error[0]

    def run(self, steps: int, progress: bool = False) -> None:
        """Advance i-PI by ``steps`` steps, classifying every step that is a multiple of
        ``every`` (the start included when it is one), whatever step the run starts at
        (``progress``: a tqdm bar over the steps)."""
        from tqdm.auto import tqdm

        if int(self.sim.step) % self.every == 0:
            self.observe()
            if self.stopped is not None:
                return
        done = 0
        with tqdm(total=steps, unit="step", desc="i-PI", disable=not progress) as bar:
            while done < steps:
                n = min(self.every - int(self.sim.step) % self.every, steps - done)
                self._advance(n)
                done += n
                bar.update(n)
                if int(self.sim.step) % self.every == 0:
                    self.observe()
                    if self.stopped is not None:
                        break

    @property
    def stopped(self) -> tuple[int, str] | None:
        """(step, reason) when ``stop_when`` ended the run (any bead's log), else None."""
        for m in self.monitors:
            if m.stop_requested is not None:
                return m.stop_requested
        return None


def attach(sim: Any, log: str | Path = "icemon.h5", *, every: int = 100,
           oxygens: str | list[int] = "O", **kwargs: Any) -> IpiMonitor:
    """Monitor the i-PI ``InteractiveSimulation`` ``sim`` every ``every`` steps into
    ``log``; advance it with the returned handle's ``run(steps)``. Keywords: those every
    hook shares (:mod:`icemon.hooks.base`), plus ``beads`` and ``engine_timeout``."""
    return IpiMonitor(sim, log, every=every, oxygens=oxygens, **kwargs)


def run_xml(xml: str | Path, log: str | Path, every: int = 100, steps: int | None = None,
            progress: bool = False, **kwargs: Any) -> IpiMonitor:
    """Run an i-PI XML input (``total_steps`` of it, or ``steps``) with the monitor."""
    from ipi.scripting import InteractiveSimulation

    xml = Path(xml)
    if not xml.exists():
        raise IpiError(f"no such i-PI input: {str(xml)!r}")
    sim = InteractiveSimulation(xml.read_text())
    total = int(steps if steps is not None else sim.tsteps)
    mon = attach(sim, log, every=every, **kwargs)
    try:
        mon.run(total - int(sim.step), progress=progress)
    finally:
        mon.close()
        sim.stop()
    return mon
