"""Live monitoring of ASE molecular dynamics.

>>> with icemon.hooks.ase.attach(dyn, "run.h5", every=100, oxygens="O") as obs:
...     dyn.run(10000)

(``attach`` makes an :class:`Observer` and registers it with ``dyn.attach(obs,
interval=every)``; an :class:`Observer` can also be called by hand.)

Every call takes the selected oxygens of ``atoms`` (by element, default "O", or by
index), builds a :class:`~icemon.geometry.frame.Frame` (Å; time in ps from ``dyn`` when given)
and hands it to a :class:`~icemon.hooks.monitor.Monitor`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from icemon.errors import ConfigError
from icemon.geometry.clusters import ClusterRule
from icemon.geometry.frame import Frame, FrameError, ase_oxygens
from icemon.hooks.base import Hook
from icemon.hooks.monitor import Monitor
from icemon.model.modelfile import IcemonModel


class Observer(Hook):
    """An ASE dynamics observer that appends each call's classification to a log.

    Args:
        atoms: the simulated atoms (the same object the dynamics moves).
        log: ``icemon/1`` HDF5 log (created, or appended to after checks).
        oxygens: element symbol of the water oxygens, a boolean mask (one entry per
            atom) or a sequence of atom indices.
        water_only: where the atoms hold hydrogens, monitor only the selected oxygens
            with two of them within 1.25 Å (water); the others are counted in a warning.
        dyn: the dynamics object, to record step (``start_step + dyn.nsteps``) and time
            (ps).
        every: log only steps that are multiples of ``every`` (calls at other steps are
            ignored), as the other hooks do.
        start_step: the MD step of the dynamics' step 0 (ASE counts every new dynamics
            object from 0: a run restarted from step 5000 passes 5000).
        resume_from, fsync, clusters, stop_when: see :mod:`icemon.hooks.base`; a met
            ``stop_when`` ends ``dyn.run`` after the current step.
        model, threads, device, positions, overlap, denoise_steps, compile, source,
            on_frame: the keywords every hook shares (:mod:`icemon.hooks.base`).
    """

    def __init__(self, atoms: Atoms, log: str | Path, *, oxygens: str | Sequence[int] = "O",
                 dyn: Any | None = None, model: str | Path | IcemonModel | None = None,
                 threads: int | None = None, device: str = "cpu", positions: bool = True,
                 overlap: bool = False, denoise_steps: int | None = None,
                 compile: bool | None = None, source: str | None = None,
                 on_frame: Callable[[Any], None] | None = None,
                 water_only: bool = True, every: int = 1, start_step: int = 0,
                 resume_from: int | None = None, fsync: bool = False,
                 clusters: ClusterRule | None = None,
                 stop_when: str | Callable[[Any], bool] | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ConfigError(f"every must be a positive number of steps, not {every!r}")
        if isinstance(start_step, bool) or not isinstance(start_step, (int, np.integer)) \
                or start_step < 0:
            raise ConfigError(f"start_step must be an MD step (an integer ≥ 0), not {start_step!r}")
        self.atoms = atoms
        self.dyn = dyn
        self.every = int(every)
        self.start_step = int(start_step)
        self.indices = ase_oxygens(atoms, oxygens, water_only)
        what = f"element {oxygens!r}" if isinstance(oxygens, str) else "the given selection"
        if self.indices.size == 0:
            raise FrameError(f"no oxygens to monitor: no atom matches {what}")
        if not np.all(atoms.pbc):
            raise FrameError("icemon needs a fully periodic cell (atoms.pbc all True)")
        self.n_calls = 0
        self._frame(0)  # validate cell and coordinates before the run starts
        self.monitor = Monitor(log, self.indices, model=model, positions=positions,
                               overlap=overlap, denoise_steps=denoise_steps, threads=threads,
                               device=device, compile=compile, on_frame=on_frame,
                               start_step=self._step(), resume_from=resume_from, fsync=fsync,
                               clusters=clusters, stop_when=stop_when,
                               source=source or
                               f"ASE {type(dyn).__name__ if dyn else 'dynamics'}, "
                               f"{self.indices.size} oxygens ({what})")
        self.monitors = [self.monitor]

    def _frame(self, step: int) -> Frame:
        time = np.nan
        if self.dyn is not None and hasattr(self.dyn, "dt"):
            time = step * self.dyn.dt / (1000 * units.fs)
        return Frame(self.atoms.positions[self.indices], np.asarray(self.atoms.cell[:]),
                     self.indices, step=step, time=time)

    def _step(self) -> int:
        """The MD step now: ``start_step`` + the dynamics' own count (or + the calls so far,
        without a dynamics object)."""
        count = int(getattr(self.dyn, "nsteps", self.n_calls)) if self.dyn else self.n_calls
        return self.start_step + count

    def __call__(self) -> None:
        step = self._step()
        self.n_calls += 1
        if step % self.every:
            return
        try:
            frame = self._frame(step)
        except Exception as exc:  # noqa: BLE001 - never stop the dynamics
            self.monitor.fail(step, exc)
            return
        self.monitor(frame)
        if self.monitor.stop_requested is not None and self.dyn is not None:
            # ASE's run loop ends once nsteps reaches max_steps: after this step
            self.dyn.max_steps = self.dyn.nsteps

    @property
    def stopped(self) -> tuple[int, str] | None:
        """(step, reason) when ``stop_when`` ended the dynamics, else None."""
        return self.monitor.stop_requested



def attach(dyn: Any, log: str | Path = "icemon.h5", *, every: int = 1,
           oxygens: str | Sequence[int] = "O", atoms: Atoms | None = None,
           **kwargs: Any) -> Observer:
    """Monitor the ASE dynamics ``dyn`` every ``every`` steps into ``log``.

    ``atoms`` defaults to the dynamics' own atoms; the other keywords are those every hook
    shares (:mod:`icemon.hooks.base`), plus ``start_step`` (the MD step of the dynamics'
    step 0, for restarts). Frames are logged at the steps that are multiples of
    ``every``, the start included when it is one (ASE calls observers at step 0)."""
    if isinstance(every, bool) or int(every) != every or every < 1:
        raise ConfigError(f"every must be a positive number of steps, not {every!r}")
    atoms = atoms if atoms is not None else getattr(dyn, "atoms", None)
    if atoms is None:
        raise ConfigError("the dynamics object has no atoms; pass atoms=...")
    obs = Observer(atoms, log, oxygens=oxygens, dyn=dyn, every=every, **kwargs)
    # called every step: the observer keeps the multiples of ``every`` of the MD step
    # (start_step + nsteps), which ASE's own interval counting (of nsteps) would miss
    dyn.attach(obs, interval=1)
    return obs
