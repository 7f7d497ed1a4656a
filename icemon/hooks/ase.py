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
        dyn: the dynamics object, to record step (``dyn.nsteps``) and time (ps).
        model, threads, device, positions, overlap, denoise_steps, compile, source,
            on_frame: the keywords every hook shares (:mod:`icemon.hooks.base`).
    """

    def __init__(self, atoms: Atoms, log: str | Path, *, oxygens: str | Sequence[int] = "O",
                 dyn: Any | None = None, model: str | Path | IcemonModel | None = None,
                 threads: int | None = None, device: str = "cpu", positions: bool = True,
                 overlap: bool = False, denoise_steps: int | None = None,
                 compile: bool = False, source: str | None = None,
                 on_frame: Callable[[Any], None] | None = None,
                 water_only: bool = True) -> None:
        self.atoms = atoms
        self.dyn = dyn
        self.indices = ase_oxygens(atoms, oxygens, water_only)
        what = f"element {oxygens!r}" if isinstance(oxygens, str) else "the given selection"
        if self.indices.size == 0:
            raise FrameError(f"no oxygens to monitor: no atom matches {what}")
        if not np.all(atoms.pbc):
            raise FrameError("icemon needs a fully periodic cell (atoms.pbc all True)")
        self._frame(0)  # validate cell and coordinates before the run starts
        self.n_calls = 0
        self.monitor = Monitor(log, self.indices, model=model, positions=positions,
                               overlap=overlap, denoise_steps=denoise_steps, threads=threads,
                               device=device, compile=compile, on_frame=on_frame,
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

    def __call__(self) -> None:
        step = int(getattr(self.dyn, "nsteps", self.n_calls)) if self.dyn else self.n_calls
        self.n_calls += 1
        try:
            frame = self._frame(step)
        except Exception as exc:  # noqa: BLE001 - never stop the dynamics
            self.monitor.fail(step, exc)
            return
        self.monitor(frame)



def attach(dyn: Any, log: str | Path = "icemon.h5", *, every: int = 1,
           oxygens: str | Sequence[int] = "O", atoms: Atoms | None = None,
           **kwargs: Any) -> Observer:
    """Monitor the ASE dynamics ``dyn`` every ``every`` steps into ``log``.

    ``atoms`` defaults to the dynamics' own atoms; the other keywords are those every hook
    shares (:mod:`icemon.hooks.base`). The state before the first step is classified too
    (ASE calls observers at step 0)."""
    if isinstance(every, bool) or int(every) != every or every < 1:
        raise ConfigError(f"every must be a positive number of steps, not {every!r}")
    atoms = atoms if atoms is not None else getattr(dyn, "atoms", None)
    if atoms is None:
        raise ConfigError("the dynamics object has no atoms; pass atoms=...")
    obs = Observer(atoms, log, oxygens=oxygens, dyn=dyn, **kwargs)
    dyn.attach(obs, interval=int(every))
    return obs
