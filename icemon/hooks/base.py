"""The one shape every simulation hook has.

Every hook is made by ``attach(engine, log, *, every, oxygens, ...)`` in its module
(:mod:`icemon.hooks.lammps`, :mod:`icemon.hooks.ase`, :mod:`icemon.hooks.ipi`,
:mod:`icemon.hooks.openmm`), takes the
same keywords for the same things, is a context manager and reads back the same way:

=============== ==============================================================
``log``         HDF5 log path (created, or appended to after checks)
``every``       MD steps between classified frames
``oxygens``     which atoms are the water oxygens (LAMMPS: atom type; ASE and
                i-PI: element/atom name or indices)
``model``       model file, loaded :class:`~icemon.model.modelfile.IcemonModel`,
                or None for the shipped one
``threads``     cores the monitor may use (default: 1 under MPI or with
                ``overlap``, where the simulation keeps the cores busy); on 2 or
                more a frame of ≥ 800 oxygens is shared by helper processes
                (:mod:`icemon.execution.team`)
``device``      ``"cpu"`` or ``"cuda"``
``positions``   also log given and denoised positions (fronts, export)
``overlap``     classify in a worker thread while the simulation goes on
``denoise_steps`` denoising passes (default: the model's)
``compile``     torch.compile the network (default None: yes, unless
                ``$ICEMON_COMPILE=0``): faster frames after a one-time compilation
                (~40 s the first time on a machine, ~4 s once cached)
``source``      free text recorded in the log
``on_frame``    callable receiving each logged :class:`~icemon.execution.pipeline.Result`
``resume_from`` continue an existing log from this MD step: its frames after the
                step are dropped (recorded in the log's ``resumes``)
``fsync``       sync the log to disk after every frame (survives a node or power
                failure, not only a killed process; costs a disk sync per frame)
``clusters``    what an ice cluster is (:class:`~icemon.geometry.clusters.ClusterRule`:
                cutoff 3.5 Å, ``min_ice_neighbours``, ``min_size``); every frame's
                largest cluster, its composition, the largest per phase and the number
                of clusters are logged
``stop_when``   a condition (:mod:`icemon.hooks.stop`, e.g. ``"largest_cluster >=
                300"``) that ends the simulation cleanly at the frame that meets it;
                the step and reason are recorded in the log (``Log.stopped``)
=============== ==============================================================

Which steps: every hook logs the MD steps that are multiples of ``every`` (the start
included when it is one), whatever step the run starts at and however it is split into
runs; a step is logged once.

Restarts are branches: a hook knows the step its engine starts at (LAMMPS ``ntimestep``,
i-PI ``sim.step``, ASE ``start_step`` + the dynamics' count) and refuses, before the run,
a log that already holds later steps, naming both and the remedy (``resume_from``). A
restart exactly where the log ends continues it (the frame at that step is not logged
twice).

Read-back: ``n_frames`` (frames logged), ``errors`` ((step, message) of skipped frames),
``paths`` (the log files), ``stopped`` ((step, reason) once ``stop_when`` was met),
``close()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from icemon.hooks.monitor import Monitor


class Hook:
    """Read-back and closing shared by the hooks; a subclass fills :attr:`monitors`
    (empty on MPI ranks that do not write)."""

    monitors: list[Monitor]

    @property
    def n_frames(self) -> int:
        """Frames logged so far (with several logs, e.g. one per i-PI bead: the fewest)."""
        return min((m.n_logged for m in self.monitors), default=0)

    @property
    def errors(self) -> list[tuple[int, str]]:
        """(step, message) of every frame that was skipped, in every log."""
        return [e for m in self.monitors for e in m.errors]

    @property
    def paths(self) -> list[Path]:
        """The log file(s) this hook writes (none on ranks other than 0)."""
        return [m.path for m in self.monitors]

    def flush(self) -> None:
        """Wait until every queued frame (``overlap``) is in the log."""
        for m in self.monitors:
            m.flush()

    def close(self) -> None:
        """Wait for queued frames and close the log(s) (idempotent)."""
        for m in self.monitors:
            m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
