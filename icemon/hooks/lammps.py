"""Live monitoring of a LAMMPS run through the LAMMPS Python module (``fix external``).

>>> from lammps import lammps
>>> lmp = lammps()
>>> lmp.file("in.melt")                       # set up the system, do not run yet
>>> mon = icemon.hooks.lammps.attach(lmp, "run.h5", every=1000, oxygens=1)  # atom type 1
>>> lmp.command("run 100000")
>>> mon.close()

``attach`` adds ``fix icemon all external pf/callback EVERY 1`` (or uses a
``fix external pf/callback`` of your input script, ``fix_id=...``) whose callback, every
EVERY steps, takes each rank's local oxygens (tags and positions), gathers them on rank 0
with mpi4py (``Gatherv``), orders them by tag, and hands the frame to a
:class:`~icemon.hooks.monitor.Monitor`. Only rank 0 opens the log. The callback zeroes the
external force, so the dynamics are exactly those without the monitor.

Units: positions and the box are converted from the LAMMPS ``units`` style (read from
LAMMPS) to Å, and the frame time, LAMMPS' own elapsed simulation time (thermo keyword
``time``: follows ``timestep`` changes, ``fix dt/reset`` and ``reset_timestep``), to ps.
``units lj`` has no physical scale: pass ``lj_length`` (Å per σ) and ``lj_time`` (ps per
τ), or ``attach`` refuses it.

Everything that can be checked before the run is checked in ``attach``, on every rank
at once (so all ranks raise the same :class:`LammpsError`): units style, oxygen type
present, fix exists and is a ``fix external``, log writable and compatible. Problems
during the run are recorded by the monitor and the run goes on; every rank always takes
part in the gather, so a failure on one rank cannot dead-lock the others.

Size: the units, the box, the oxygen type and the callback are one adapter of one
engine (LAMMPS's own conventions, read once at attach), kept together as the other
hooks are.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from icemon.errors import IcemonError
from icemon.execution.pipeline import Pipeline
from icemon.execution.threads import set_torch_threads
from icemon.geometry.clusters import ClusterRule
from icemon.geometry.frame import Frame
from icemon.hooks.base import Hook
from icemon.hooks.monitor import Monitor
from icemon.model.modelfile import IcemonModel
from icemon.recording import Options

#: LAMMPS distance unit of each ``units`` style with a physical scale, in Å
#: (electron: Bohr).
LENGTH_UNIT_A = {"real": 1.0, "metal": 1.0, "nano": 10.0, "electron": 0.52917721067,
                 "si": 1e10, "cgs": 1e8, "micro": 1e4}
#: LAMMPS time unit of each ``units`` style with a physical scale, in ps.
TIME_UNIT_PS = {"real": 1e-3, "metal": 1.0, "nano": 1e3, "electron": 1e-3, "si": 1e12,
                "cgs": 1e12, "micro": 1e6}


class LammpsError(IcemonError, RuntimeError):
    """The LAMMPS instance cannot be monitored as asked (raised before the run)."""


class _SerialComm:
    """The few mpi4py calls used here, for a single process without mpi4py."""

    rank, size = 0, 1

    def gather(self, obj: Any, root: int = 0) -> list:
        return [obj]

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def allreduce(self, obj: Any) -> Any:
        return obj


def _communicator(lmp: Any, comm: Any | None) -> Any:
    if comm is not None:
        return comm
    size = int(lmp.extract_setting("world_size"))
    try:
        from mpi4py import MPI  # noqa: F401
    except ImportError:
        if size > 1:
            raise LammpsError("LAMMPS runs on several MPI ranks but mpi4py is not "
                              "installed; pip install mpi4py") from None
        return _SerialComm()
    if lmp.has_mpi4py:
        return lmp.get_mpi_comm()
    if size > 1:
        raise LammpsError("this LAMMPS library was not built with mpi4py support; "
                          "pass comm=... explicitly")
    return _SerialComm()


OXYGEN_MASSES = (15.0, 21.0)
"""g/mol: the masses of a water oxygen (15.999; ¹⁸O 18.0) or of a one-site water model
(mW 18.015, heavy water 20.03). Hydrogens (1.008), deuterium, massless M sites and ions
fall outside."""
MASS_IN_G_PER_MOL = ("real", "metal", "electron")
"""``units`` styles whose masses are g/mol (amu): the only ones whose masses say which
type is an oxygen."""


def oxygen_type(lmp: Any, oxygens: int | None) -> int:
    """The LAMMPS atom type of the water oxygens: ``oxygens`` after checking its mass, or,
    when None, the only type whose mass lies in :data:`OXYGEN_MASSES`. Raises
    :class:`LammpsError` naming the types and masses when the mass says it is not an
    oxygen (a data file that numbers types alphabetically makes type 1 hydrogen) or when
    no single type qualifies."""
    ntypes = int(lmp.extract_global("ntypes"))
    style = str(lmp.extract_global("units"))
    masses = None
    if style in MASS_IN_G_PER_MOL:
        try:
            raw = lmp.numpy.extract_atom("mass")
            masses = None if raw is None else np.asarray(raw, dtype=float)[1:ntypes + 1]
        except Exception:  # noqa: BLE001 - per-atom masses (rmass): no per-type masses
            masses = None
        if masses is not None and not np.any(masses > 0):
            masses = None
    lo, hi = OXYGEN_MASSES
    listing = ("" if masses is None else
               "; masses by type: " + ", ".join(f"{t + 1}: {m:g}" for t, m in enumerate(masses)))
    if oxygens is not None:
        if 1 <= oxygens <= ntypes and masses is not None and \
                not lo <= masses[oxygens - 1] <= hi:
            raise LammpsError(f"oxygens={oxygens}: atom type {oxygens} has mass "
                              f"{masses[oxygens - 1]:g} g/mol, not a water oxygen's "
                              f"({lo:g}–{hi:g}){listing}; pass the oxygen type")
        return int(oxygens)
    if masses is None:
        raise LammpsError(f"pass oxygens=TYPE, the LAMMPS atom type of the water oxygens "
                          f"(units {style}: the masses do not say which type it is)")
    found = np.flatnonzero((masses >= lo) & (masses <= hi)) + 1
    if len(found) != 1:
        raise LammpsError(f"pass oxygens=TYPE: {len(found)} atom types have a water "
                          f"oxygen's mass ({lo:g}–{hi:g} g/mol){listing}")
    return int(found[0])


def units_scale(style: str, lj_length: float | None = None,
                lj_time: float | None = None) -> tuple[float, float]:
    """(Å per LAMMPS distance unit, ps per LAMMPS time unit) of the ``units`` ``style``.

    ``lj`` has no physical scale: it needs ``lj_length`` (σ in Å) and ``lj_time``
    (τ = σ·sqrt(m/ε) in ps); they are refused for every other style."""
    given = {k: v for k, v in (("lj_length", lj_length), ("lj_time", lj_time))
             if v is not None}
    if style == "lj":
        missing = [k for k in ("lj_length", "lj_time") if k not in given]
        if missing:
            raise LammpsError(
                "LAMMPS 'units lj' has no length or time scale, so icemon cannot compare "
                "the structure with its references (in Å): pass lj_length=σ in Å and "
                f"lj_time=τ=σ·sqrt(m/ε) in ps to attach (missing: {', '.join(missing)})")
        for name, value in given.items():
            try:
                v = float(value)
            except (TypeError, ValueError):
                v = math.nan
            if not (math.isfinite(v) and v > 0):
                raise LammpsError(f"{name} must be a positive number, not {value!r}")
        return float(lj_length), float(lj_time)
    if given:
        raise LammpsError(f"{' and '.join(given)}: only for 'units lj', and this LAMMPS "
                          f"system uses 'units {style}' (its scale is known: leave them unset)")
    if style not in LENGTH_UNIT_A:
        raise LammpsError(f"unknown LAMMPS units style {style!r}; icemon knows "
                          f"{', '.join([*LENGTH_UNIT_A, 'lj'])}")
    return LENGTH_UNIT_A[style], TIME_UNIT_PS[style]


HALT_VARIABLE = "icemon_stop"
"""LAMMPS internal variable that ``fix ... halt`` watches (1 once ``stop_when`` is met)."""


def box_cell(lmp: Any, length: float) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,), cell (3, 3) with lattice vectors as rows), both in Å, for orthogonal
    and triclinic boxes; ``length`` is the Å per LAMMPS distance unit (:func:`units_scale`)."""
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lo, hi = np.asarray(boxlo, dtype=float), np.asarray(boxhi, dtype=float)
    cell = np.array([[hi[0] - lo[0], 0.0, 0.0],
                     [xy, hi[1] - lo[1], 0.0],
                     [xz, yz, hi[2] - lo[2]]])
    if not all(periodicity):
        raise LammpsError(f"icemon needs a fully periodic box (boundary p p p); "
                          f"periodicity is {list(periodicity)}")
    return lo * length, cell * length


def elapsed_time(lmp: Any, step: int) -> float:
    """LAMMPS' elapsed simulation time at ``step``, in LAMMPS time units: what its thermo
    keyword ``time`` reports (``atime`` + (step − ``atimestep``)·``dt``; LAMMPS updates
    ``atime`` when ``timestep`` or ``fix dt/reset`` change ``dt`` and on ``reset_timestep``)."""
    atime = float(lmp.extract_global("atime"))
    atimestep = int(lmp.extract_global("atimestep"))
    return atime + (int(step) - atimestep) * float(lmp.extract_global("dt"))


class LammpsMonitor(Hook):
    """The handle returned by :func:`attach`; call :meth:`close` after the run
    (or use it as a context manager). Keywords: see :mod:`icemon.hooks.base`."""

    def __init__(self, lmp: Any, log: str | Path, *, every: int | None,
                 oxygens: int | None = None,
                 model: str | Path | IcemonModel | None = None, threads: int | None = None,
                 device: str = "cpu", positions: bool = True, overlap: bool = False,
                 denoise_steps: int | None = None, compile: bool | None = None,
                 source: str | None = None, on_frame: Callable[[Any], None] | None = None,
                 fix_id: str | None = None, comm: Any | None = None,
                 lj_length: float | None = None, lj_time: float | None = None,
                 resume_from: int | None = None, fsync: bool = False,
                 clusters: ClusterRule | None = None,
                 stop_when: str | Callable[[Any], bool] | None = None) -> None:
        self.lmp = lmp
        self._halt_id: str | None = None
        self.comm = _communicator(lmp, comm)
        self.rank = self.comm.rank
        if overlap and self.comm.size >= (os.cpu_count() or 1):
            warnings.warn("overlap=True needs a core that no MPI rank uses: with every core "
                          "running a rank the monitor thread competes with the MD and slows "
                          "the run (measured 3-4x on 2 ranks / 2 cores)", stacklevel=3)
        if threads is None and (self.comm.size > 1 or overlap):
            threads = 1  # every core already runs an MPI rank (which busy-waits meanwhile)
        options = Options(model, denoise_steps, device, compile, threads)
        if oxygens is not None and (isinstance(oxygens, bool)
                                    or not isinstance(oxygens, (int, np.integer))):
            raise LammpsError(f"oxygens must be the LAMMPS atom type (an integer) of the water "
                              f"oxygens, not {oxygens!r}")
        oxygens = oxygen_type(lmp, oxygens)
        self.oxygen_type = int(oxygens)
        self.monitor: Monitor | None = None
        self.monitors: list[Monitor] = []
        self._owns_fix = fix_id is None
        self._last_step: int | None = None
        self.fix_id = fix_id or "icemon"

        if not lmp.extract_setting("box_exist"):
            raise LammpsError("the LAMMPS box does not exist yet: attach after read_data / "
                              "create_box")
        # Å per LAMMPS distance unit, ps per LAMMPS time unit
        self._length, self._time_unit = units_scale(str(lmp.extract_global("units")),
                                                    lj_length, lj_time)
        ntypes = int(lmp.extract_global("ntypes"))
        if not 1 <= self.oxygen_type <= ntypes:
            raise LammpsError(f"oxygens={oxygens}: not an atom type of this system "
                              f"(types 1..{ntypes})")
        box_cell(lmp, self._length)  # periodic?
        tags, _ = self._local_oxygens()
        n_total = self.comm.allreduce(len(tags))
        if n_total == 0:
            raise LammpsError(f"oxygens={oxygens}: no atoms of oxygen type {oxygens} in the system")

        if self._owns_fix:
            if every is None or int(every) < 1:
                raise LammpsError(f"every must be a positive number of steps, not {every!r}")
            if lmp.has_id("fix", self.fix_id):
                raise LammpsError(f"a fix with ID {self.fix_id!r} already exists; pass "
                                  f"fix_id={self.fix_id!r} to use it")
        elif not lmp.has_id("fix", self.fix_id):
            raise LammpsError(f"no fix with ID {self.fix_id!r}: define 'fix {self.fix_id} all "
                              f"external pf/callback N 1' in the input, or leave fix_id unset")
        self.every = every

        # Under MPI (without overlap) every rank loads the model and takes a share of
        # each frame's atoms (icemon.execution.mpi); rank 0 alone writes the log.
        self.collective = self.comm.size > 1 and not overlap
        self.pipeline: Pipeline | None = None
        self._threads_before: int | None = None
        all_tags = self.comm.gather(tags, root=0)
        error = None
        try:
            if self.collective:
                if threads:
                    self._threads_before = set_torch_threads(int(threads))
                self.pipeline = options.pipeline(self.comm)
            if self.rank == 0:
                ids = np.sort(np.concatenate(all_tags))
                self.monitor = Monitor(
                    log, ids, pipeline=self.pipeline, positions=positions, overlap=overlap,
                    options=options.with_(threads=None) if self.collective else options,
                    on_frame=on_frame, start_step=int(lmp.extract_global("ntimestep")),
                    resume_from=resume_from, fsync=fsync, clusters=clusters,
                    stop_when=stop_when,
                    source=source or f"LAMMPS {lmp.version()}, oxygen type {oxygens}, "
                                     f"{self.comm.size} MPI rank(s)")
                self.monitors = [self.monitor]
        except Exception as exc:  # noqa: BLE001 - raised on every rank below
            error = f"rank {self.rank}: {type(exc).__name__}: {exc}"
        errors = [e for e in self.comm.allgather(error) if e]
        if errors:
            self._release()
            raise LammpsError(f"cannot start the icemon monitor: {'; '.join(errors)}")

        if self._owns_fix:
            lmp.command(f"fix {self.fix_id} all external pf/callback {int(every)} 1")
        if stop_when is not None:  # fix halt ends the run when the monitor sets the variable
            self._halt_id = f"{self.fix_id}_halt"
            lmp.command(f"variable {HALT_VARIABLE} internal 0")
            lmp.command(f"fix {self._halt_id} all halt {int(every) if self._owns_fix else 1} "
                        f"v_{HALT_VARIABLE} > 0 error continue")
        try:
            lmp.set_fix_external_callback(self.fix_id, self._callback)
        except Exception as exc:
            self._release()
            raise LammpsError(f"fix {self.fix_id!r} cannot take the icemon callback (is it "
                              f"'fix ... external pf/callback'?): {exc}") from exc

    def _local_oxygens(self, nlocal: int | None = None, tag: np.ndarray | None = None,
                       x: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        lmp = self.lmp
        if nlocal is None:
            nlocal = int(lmp.extract_global("nlocal"))
            tag = lmp.numpy.extract_atom("id", nelem=nlocal)
            x = lmp.numpy.extract_atom("x", nelem=nlocal, dim=3)
        types = lmp.numpy.extract_atom("type", nelem=nlocal)
        mask = np.asarray(types[:nlocal]) == self.oxygen_type
        return (np.asarray(tag[:nlocal])[mask].astype(np.int64),
                np.ascontiguousarray(np.asarray(x[:nlocal])[mask], dtype=np.float64))

    def _gather(self, tags: np.ndarray, x: np.ndarray, error: str | None
                ) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """All ranks' oxygen tags and positions on rank 0 (Gatherv), or on every rank
        (Allgatherv) when the ranks share the work, plus any rank's error.

        Every rank calls this exactly once per callback, whatever happened before."""
        if self.comm.size == 1:
            return tags, x, [error] if error else []
        if self.collective:
            counts = self.comm.allgather((len(tags), error))
            n = np.array([c for c, _ in counts], dtype=np.int64)
            all_tags = np.empty(n.sum(), dtype=np.int64)
            all_x = np.empty((n.sum(), 3), dtype=np.float64)
            self.comm.Allgatherv(tags, (all_tags, n))
            self.comm.Allgatherv(np.ascontiguousarray(x).ravel(), (all_x.ravel(), 3 * n))
            return all_tags, all_x, [e for _, e in counts if e]
        counts = self.comm.gather((len(tags), error), root=0)
        if self.rank == 0:
            n = np.array([c for c, _ in counts], dtype=np.int64)
            all_tags = np.empty(n.sum(), dtype=np.int64)
            all_x = np.empty((n.sum(), 3), dtype=np.float64)
            self.comm.Gatherv(tags, (all_tags, n), root=0)
            self.comm.Gatherv(x.ravel(), (all_x.ravel(), 3 * n), root=0)
            return all_tags, all_x, [e for _, e in counts if e]
        self.comm.Gatherv(tags, None, root=0)
        self.comm.Gatherv(x.ravel(), None, root=0)
        return None

    def _time(self, step: int) -> float:
        """Simulation time at ``step`` in ps (NaN if LAMMPS cannot tell)."""
        try:
            return elapsed_time(self.lmp, step) * self._time_unit
        except Exception:  # noqa: BLE001
            return math.nan

    def _callback(self, caller: Any, ntimestep: int, nlocal: int, tag: np.ndarray,
                  x: np.ndarray, f: np.ndarray) -> None:
        f[:] = 0.0  # the monitor adds no force
        step = int(ntimestep)
        if step == self._last_step:  # a new `run` calls back again at the step it starts on
            return
        self._last_step = step  # the same on every rank: all skip or all gather
        self._classify(step, nlocal, tag, x)
        if self._halt_id is not None:  # every rank: rank 0's monitor decides
            stop = self.monitor is not None and self.monitor.stop_requested is not None
            if self.comm.size > 1:
                stop = self.comm.bcast(stop, root=0)
            if stop:
                self.lmp.set_internal_variable(HALT_VARIABLE, 1.0)

    @property
    def stopped(self) -> tuple[int, str] | None:
        """(step, reason) when ``stop_when`` ended the run (rank 0; None elsewhere)."""
        return None if self.monitor is None else self.monitor.stop_requested

    def _classify(self, step: int, nlocal: int, tag: np.ndarray, x: np.ndarray) -> None:
        """Gather the oxygens and classify the frame (every rank calls this once)."""
        error = None
        try:
            my_tags, my_x = self._local_oxygens(nlocal, tag, x)
        except Exception as exc:  # noqa: BLE001 - must still take part in the gather
            my_tags, my_x = np.zeros(0, np.int64), np.zeros((0, 3))
            error = f"rank {self.rank}: {type(exc).__name__}: {exc}"
        gathered = self._gather(my_tags, my_x, error)
        if gathered is None:  # rank > 0 of a run that rank 0 classifies alone
            return
        tags, pos, errors = gathered
        if errors:  # the same on every rank that has the frame
            if self.monitor is not None:
                self.monitor.fail(step, "; ".join(errors))
            return
        try:  # the same data on every rank: the same frame or the same error
            order = np.argsort(tags)
            origin, cell = box_cell(self.lmp, self._length)
            frame = Frame(pos[order] * self._length - origin, cell, tags[order], step=step,
                          time=self._time(step))
        except Exception as exc:  # noqa: BLE001
            if self.monitor is not None:
                self.monitor.fail(step, exc)
            return
        if self.monitor is not None:
            self.monitor(frame)  # with collective, the other ranks take part here ...
        elif self.pipeline is not None:
            try:  # ... and here: a failure is raised on every rank and rank 0 records it
                self.pipeline.process(frame)
            except Exception:  # noqa: BLE001, S110 - recorded by rank 0's monitor
                pass

    def _release(self) -> None:
        """Close the log and pipeline and restore torch's threads (idempotent)."""
        super().close()
        if self.pipeline is not None:
            self.pipeline.close()
        if self._threads_before is not None:
            set_torch_threads(self._threads_before)
            self._threads_before = None

    def close(self) -> None:
        """Wait for the last frame, close the log and remove the fix icemon added."""
        self._release()
        if self._owns_fix and self.lmp.has_id("fix", self.fix_id):
            self.lmp.command(f"unfix {self.fix_id}")
            self._owns_fix = False
        if self._halt_id is not None and self.lmp.has_id("fix", self._halt_id):
            self.lmp.command(f"unfix {self._halt_id}")
            self.lmp.command(f"variable {HALT_VARIABLE} delete")
            self._halt_id = None


def attach(lmp: Any, log: str | Path = "icemon.h5", *, every: int | None = None,
           oxygens: int | None = None, **kwargs: Any) -> LammpsMonitor:
    """Monitor the LAMMPS instance ``lmp`` every ``every`` steps into ``log``; the water
    oxygens are the atoms of LAMMPS type ``oxygens`` (None: the one type whose mass is
    an oxygen's or a one-site water's, :func:`oxygen_type`; never guessed otherwise).

    Call after the system is defined and before ``run``; close the returned handle after
    the last run (or use it as a context manager). The shared keywords (``model``,
    ``threads``, ``device``, ``positions``, ``overlap``, ``denoise_steps``, ``compile``,
    ``source``, ``on_frame``) are those of every hook (:mod:`icemon.hooks.base`); ``threads``
    defaults to 1 under MPI, where every core already runs a rank. LAMMPS only:
    ``fix_id`` (use your own ``fix external pf/callback``), ``comm`` (an mpi4py
    communicator), and, for ``units lj`` only (required there), ``lj_length`` (σ: Å per
    LJ distance unit) and ``lj_time`` (τ: ps per LJ time unit).

    ``stop_when`` (a condition of :mod:`icemon.hooks.stop`) ends the run at the frame that
    meets it, on every rank, through ``fix ... halt ... error continue``: the ``run``
    command returns early and the input script goes on; with ``overlap`` the run ends
    within ``queue_size`` + 1 frames of the one that met it. Later runs under the same
    hook end at their first frame; close it to run on.

    Positions and box are logged in Å and times in ps whatever the ``units`` style
    (real, metal, nano, electron, si, cgs, micro; lj with the two scales above).
    """
    return LammpsMonitor(lmp, log, every=every, oxygens=oxygens, **kwargs)
