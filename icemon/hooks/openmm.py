"""Live monitoring of OpenMM simulations through OpenMM's reporter interface.

>>> with icemon.hooks.openmm.attach(simulation, "run.h5", every=1000, oxygens="O") as mon:
...     simulation.step(100000)          # or mon.run(100000): stops at a met stop_when

``attach`` adds an :class:`OpenMMMonitor` to ``simulation.reporters`` (OpenMM calls its
``describeNextReport`` and ``report``) and classifies the current state when its step is a
multiple of ``every``, as every hook does: frames fall on the multiples of ``every``. Units
come from OpenMM (positions and box vectors in nm → Å, time in ps); the water oxygens are
chosen by element (default ``"O"``), by atom name (e.g. ``"OW"``) or by indices, and, where
the topology has hydrogens, only those with two of them within 1.25 Å (``water_only``).
``close()`` (or leaving the ``with`` block) removes the reporter and closes the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from icemon.errors import ConfigError
from icemon.geometry.clusters import ClusterRule
from icemon.geometry.frame import Frame, FrameError, water_subset
from icemon.hooks.base import Hook
from icemon.hooks.monitor import Monitor
from icemon.model.modelfile import IcemonModel

NM = 10.0
"""Å per nm (OpenMM's length unit)."""


def select_oxygens(topology: Any, oxygens: str | Sequence[int]) -> np.ndarray:
    """Indices of the atoms ``oxygens`` names in an OpenMM ``Topology``: an element symbol
    ("O"), else an atom name ("OW"), or atom indices."""
    atoms = list(topology.atoms())
    if isinstance(oxygens, str):
        by_element = [a.index for a in atoms
                      if a.element is not None and a.element.symbol == oxygens]
        chosen = by_element or [a.index for a in atoms if a.name == oxygens]
        if not chosen:
            names = sorted({a.name for a in atoms})[:10]
            raise FrameError(f"no atom of element or name {oxygens!r} in the OpenMM topology "
                             f"(atom names: {', '.join(names)}); pass oxygens= the water "
                             "oxygens' element, name or indices")
        return np.asarray(chosen, dtype=np.int64)
    idx = np.asarray(oxygens, dtype=np.int64).ravel()
    if not idx.size or idx.min() < 0 or idx.max() >= len(atoms):
        raise FrameError(f"oxygen indices out of range for {len(atoms)} atoms")
    return idx


class OpenMMMonitor(Hook):
    """An OpenMM reporter that classifies every ``every`` steps into an ``icemon/1`` log.

    Args:
        simulation: an ``openmm.app.Simulation`` with a periodic box.
        log: the HDF5 log (created, or appended to after checks).
        every: MD steps between classified frames (the multiples of ``every``).
        oxygens: element symbol, atom name or indices of the water oxygens.
        water_only: where the topology has hydrogens, monitor only the selected oxygens
            with two of them within 1.25 Å at attach (water); the others are counted in a
            warning.
        model, threads, device, positions, overlap, denoise_steps, compile, source,
            on_frame, resume_from, fsync, clusters, stop_when: the keywords every hook
            shares (:mod:`icemon.hooks.base`); a met ``stop_when`` ends :meth:`run`.
    """

    def __init__(self, simulation: Any, log: str | Path, *, every: int,
                 oxygens: str | Sequence[int] = "O",
                 model: str | Path | IcemonModel | None = None, threads: int | None = None,
                 device: str = "cpu", positions: bool = True, overlap: bool = False,
                 denoise_steps: int | None = None, compile: bool | None = None,
                 source: str | None = None, on_frame: Callable[[Any], None] | None = None,
                 water_only: bool = True, resume_from: int | None = None,
                 fsync: bool = False, clusters: ClusterRule | None = None,
                 stop_when: str | Callable[[Any], bool] | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ConfigError(f"every must be a positive number of steps, not {every!r}")
        self.simulation = simulation
        self.every = int(every)
        topology = simulation.topology
        if topology.getPeriodicBoxVectors() is None:
            raise FrameError("icemon needs a periodic OpenMM system (the topology has no "
                             "periodic box vectors)")
        self.indices = select_oxygens(topology, oxygens)
        state = simulation.context.getState(getPositions=True)
        if water_only:
            hydrogens = np.asarray([a.index for a in topology.atoms()
                                    if a.element is not None and a.element.symbol == "H"],
                                   dtype=np.int64)
            if hydrogens.size:
                pos, cell = self._geometry(state)
                self.indices = water_subset(self.indices, pos[self.indices], pos[hydrogens],
                                            cell)
        self.frame(state)  # cell and coordinates checked before the run
        self.monitor = Monitor(log, self.indices, model=model, positions=positions,
                               overlap=overlap, denoise_steps=denoise_steps, threads=threads,
                               device=device, compile=compile, on_frame=on_frame,
                               start_step=int(simulation.currentStep), resume_from=resume_from,
                               fsync=fsync, clusters=clusters, stop_when=stop_when,
                               source=source or f"OpenMM {_version()}, {self.indices.size} "
                                                "water oxygens")
        self.monitors = [self.monitor]
        self._last_step: int | None = None

    @staticmethod
    def _geometry(state: Any) -> tuple[np.ndarray, np.ndarray]:
        """(positions (N, 3), cell (3, 3), both Å) of an OpenMM ``State``."""
        from openmm import unit

        pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer) * NM
        cell = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer) * NM
        return np.asarray(pos, dtype=np.float64), np.asarray(cell, dtype=np.float64)

    def frame(self, state: Any) -> Frame:
        """The oxygen frame of an OpenMM ``State`` (Å, ps, the simulation's step)."""
        from openmm import unit

        pos, cell = self._geometry(state)
        time = float(state.getTime().value_in_unit(unit.picosecond))
        return Frame(pos[self.indices], cell, self.indices,
                     step=int(self.simulation.currentStep), time=time)

    # OpenMM's reporter interface
    def describeNextReport(self, simulation: Any) -> tuple:  # noqa: N802 - OpenMM's name
        """Steps to the next multiple of ``every``; positions wanted, wrapped into the box
        (OpenMM's tuple form: steps, positions, velocities, forces, energies, enforce
        periodic box)."""
        steps = self.every - int(simulation.currentStep) % self.every
        return (steps, True, False, False, False, True)

    def report(self, simulation: Any, state: Any) -> None:
        """Classify the state at this step (once per step)."""
        step = int(simulation.currentStep)
        if step == self._last_step:
            return
        self._last_step = step
        try:
            frame = self.frame(state)
        except Exception as exc:  # noqa: BLE001 - recorded, the simulation goes on
            self.monitor.fail(step, exc)
            return
        self.monitor(frame)

    def observe(self) -> None:
        """Classify the current state now (``attach`` does when its step is a multiple of
        ``every``)."""
        self.report(self.simulation, self.simulation.context.getState(
            getPositions=True, enforcePeriodicBox=True))

    @property
    def stopped(self) -> tuple[int, str] | None:
        """(step, reason) once ``stop_when`` was met, else None."""
        return self.monitor.stop_requested

    def run(self, steps: int) -> None:
        """Advance the simulation by ``steps`` steps, in pieces that end on the frames,
        returning early at the frame that meets ``stop_when``."""
        done = 0
        while done < steps and self.stopped is None:
            n = min(self.every - int(self.simulation.currentStep) % self.every, steps - done)
            self.simulation.step(n)
            done += n

    def close(self) -> None:
        """Remove the reporter, wait for queued frames and close the log (idempotent)."""
        reporters = getattr(self.simulation, "reporters", [])
        if self in reporters:
            reporters.remove(self)
        super().close()


def _version() -> str:
    try:
        import openmm

        return openmm.__version__
    except Exception:  # noqa: BLE001
        return "?"


def attach(simulation: Any, log: str | Path = "icemon.h5", *, every: int = 1000,
           oxygens: str | Sequence[int] = "O", **kwargs: Any) -> OpenMMMonitor:
    """Monitor the OpenMM ``simulation`` every ``every`` steps into ``log`` (the shared
    keywords of :mod:`icemon.hooks.base`, plus ``water_only``); the current state is
    classified now when its step is a multiple of ``every``."""
    mon = OpenMMMonitor(simulation, log, every=every, oxygens=oxygens, **kwargs)
    simulation.reporters.append(mon)
    if int(simulation.currentStep) % mon.every == 0:
        mon.observe()
    return mon
