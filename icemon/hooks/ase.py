"""Live monitoring of ASE molecular dynamics.

>>> obs = icemon.hooks.ase.Observer(atoms, log="run.h5", dyn=dyn)   # oxygens = element O
>>> dyn.attach(obs, interval=100)
>>> dyn.run(10000)
>>> obs.close()

Every call takes the selected oxygens of ``atoms`` (by element, default "O", or by
index), builds a :class:`~icemon.core.frame.Frame` (Å; time in ps from ``dyn`` when given)
and hands it to a :class:`~icemon.hooks.monitor.Monitor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units

from icemon.core.frame import Frame, FrameError
from icemon.core.modelfile import IcemonModel
from icemon.hooks.monitor import Monitor


class Observer:
    """An ASE dynamics observer that appends each call's classification to a log.

    Args:
        atoms: the simulated atoms (the same object the dynamics moves).
        log: ``icemon/1`` HDF5 log (created, or appended to after checks).
        oxygens: element symbol of the water oxygens, or a sequence of atom indices.
        dyn: the dynamics object, to record step (``dyn.nsteps``) and time (ps).
        model, positions, overlap, denoise_steps: as for :class:`Monitor`.
    """

    def __init__(self, atoms: Atoms, log: str | Path, *, oxygens: str | Sequence[int] = "O",
                 dyn: Any | None = None, model: str | Path | IcemonModel | None = None,
                 positions: bool = True, overlap: bool = False,
                 denoise_steps: int | None = None) -> None:
        self.atoms = atoms
        self.dyn = dyn
        if isinstance(oxygens, str):
            self.indices = np.flatnonzero(np.asarray(atoms.get_chemical_symbols()) == oxygens)
            what = f"element {oxygens!r}"
        else:
            self.indices = np.asarray(oxygens, dtype=np.int64)
            what = "the given indices"
            if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= len(atoms)):
                raise FrameError(f"oxygen indices out of range for {len(atoms)} atoms")
        if self.indices.size == 0:
            raise FrameError(f"no oxygens to monitor: no atom matches {what}")
        if not np.all(atoms.pbc):
            raise FrameError("icemon needs a fully periodic cell (atoms.pbc all True)")
        self._frame(0)  # validate cell and coordinates before the run starts
        self.n_calls = 0
        self.monitor = Monitor(log, self.indices, model=model, positions=positions,
                               overlap=overlap, denoise_steps=denoise_steps,
                               source=f"ASE {type(dyn).__name__ if dyn else 'dynamics'}, "
                                      f"{self.indices.size} oxygens ({what})")

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

    @property
    def errors(self) -> list[tuple[int, str]]:
        return self.monitor.errors

    def close(self) -> None:
        self.monitor.close()

    def __enter__(self) -> Observer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
