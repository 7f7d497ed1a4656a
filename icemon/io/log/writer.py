"""Appending frames to an ``icemon/1`` log (:mod:`icemon.io.log.schema`), flushed and SWMR.

A restarted writer cuts the datasets back to ``n_frames`` before appending. Logs written
before ``n_frames`` existed (no counter, no fill values) count ``len(step)`` frames, as
they always did ('step' was written last); appending to one adds the counter.

One log, one run: appending checks the model (sha256), the liquid threshold, the atom ids
and the denoising settings (``denoise``: maximum number of passes, tolerance, device);
anything that differs is a :class:`LogError` naming it. Settings a log does not record
(older logs) are unknown and not checked. Steps must go forward: a frame whose step is not
larger than every step already in the log is refused with a :class:`LogError` (a run
restarted from an earlier point would otherwise mix two trajectories in one time series).
Frames of unknown step (-1) are accepted anywhere.

Restarts are branches. A writer told the step its run starts at (``start_step``: what
every hook passes) refuses, before the run, a log that already holds later steps, naming
both steps and the remedy; with ``resume_from=S`` it drops the log's frames after step S
instead (the run continues the trajectory from S) and records the drop in the log's
``resumes`` attribute (:attr:`~icemon.io.log.reader.Log.resumes`). A first frame at
exactly the log's last step (a restart file written where the log ended) is the frame
already logged and is skipped silently (:class:`AlreadyLogged`).

A log whose writer was killed is taken over as :mod:`icemon.io.log.recovery` says.

Size: one class, because every check it makes (model, settings, atoms, steps, branches,
clusters) and every append share one open HDF5 file and its write order; split, the
order that makes a frame complete (the counter last) would be spread over modules.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from icemon.geometry.clusters import ClusterRule
from icemon.io.log.reader import open_log
from icemon.io.log.recovery import check_writer_gone, clear_write_mark, shared_filesystem
from icemon.io.log.schema import (
    CLUSTER_SERIES,
    COUNTER,
    ERROR_DTYPE,
    FILL,
    SCHEMA,
    SERIES,
    STEP_FILL,
    UNKNOWN_STEP,
    LogError,
    check_schema,
    complete_frames,
    log_phases,
)
from icemon.phases import LIQUID_NAME

CELL_JUMP = 0.05
"""Largest relative change of a lattice vector's length between a log's last frame and
the first frame a new run appends (NPT fluctuations of a continued run: < 1 %)."""


class LogWarning(UserWarning):
    """Something about where or how a log is written that a user should know."""


class AlreadyLogged(LogError):
    """The frame's step is the log's last step, which a restarted run reaches first: the
    frame is in the log already (monitors skip it without an error)."""


def _rules(version: str) -> tuple[str, ...]:
    """The labelling-rule part of a package version: major.minor."""
    return tuple(version.split(".")[:2])


def _version() -> str:
    from icemon import __version__

    return __version__


def _publish(part: Path, path: Path) -> None:
    """Give the finished file ``part`` the name ``path`` as well (a hard link: never
    replaces a file there); the caller removes ``part``."""
    try:
        os.link(part, path)
    except OSError as exc:
        if isinstance(exc, FileExistsError) or path.exists():
            raise LogError(f"cannot create log {str(path)!r}: another process created it "
                           "meanwhile") from exc
        os.rename(part, path)  # a file system without hard links (not atomic against a race)


_DENOISE_TYPES = {"max_steps": int, "tol": float, "device": str}


def _denoise_settings(denoise: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The denoising settings as recorded (JSON types: int passes, float Å, device str)."""
    if denoise is None:
        return None
    return {k: _DENOISE_TYPES[k](v) if k in _DENOISE_TYPES else v
            for k, v in sorted(denoise.items())}


class LogWriter:
    """Appends classified frames to an ``icemon/1`` file.

    A new file is created; an existing one is appended to after checking that its schema,
    model (sha256), liquid threshold, denoising settings and atom ids match (a
    :class:`LogError` names what differs). It is never truncated or overwritten, except
    for the unfinished rows a killed writer left after the last complete frame.

    Args:
        path: the ``.h5`` file.
        atom_ids: (N,) ids of the monitored atoms (fixed for the whole log).
        model_name, model_sha256, threshold: the model that labels the frames.
        source: free text naming the producer (e.g. the trajectory or the LAMMPS run).
        positions: also store the given and the denoised positions.
        atom_scores: also store the scores of each atom's own descriptor (for models
            that average descriptors, :attr:`Result.atom_scores`).
        denoise: the run's denoising settings, ``{"max_steps": int, "tol": float,
            "device": str}`` (e.g. of :class:`~icemon.model.denoise.Denoiser`); recorded in a new
            log, compared with an existing one's. None: unknown, neither recorded nor
            checked.
        start_step: the MD step the run starts at (None: unknown). Appending to a log
            whose last step is later is refused unless ``resume_from`` is given.
        resume_from: drop the existing log's frames after this step (recorded in its
            ``resumes`` attribute) and continue from it.
        fsync: after every frame, also ask the operating system to put the file on the
            disk (``os.fsync``): a frame then survives a power or node failure, not only a
            killed process, at the cost of a disk sync per frame.
        clusters: what an ice cluster is (default :class:`~icemon.geometry.clusters.
            ClusterRule`); every frame's largest cluster, its composition, the largest
            cluster per phase and the number of clusters above ``min_size`` are logged.
            An existing log with another rule is refused.
        cluster_ids: also log each molecule's cluster id per frame (a new log only).
    """

    _open_paths: set[str] = set()  # logs this process is writing (HDF5 shares handles)

    def __init__(self, path: str | Path, atom_ids: np.ndarray, *, model_name: str,
                 model_sha256: str, threshold: float, source: str = "",
                 positions: bool = True, denoise: Mapping[str, Any] | None = None,
                 atom_scores: bool = False, phases: Sequence[str],
                 start_step: int | None = None, resume_from: int | None = None,
                 fsync: bool = False, clusters: ClusterRule | None = None,
                 cluster_ids: bool = False) -> None:
        self.path = Path(path)
        self.atom_ids = np.asarray(atom_ids, dtype=np.int64)
        self.n_atoms = len(self.atom_ids)
        self.model = {"name": model_name, "sha256": model_sha256}
        self.threshold = float(threshold)
        self.phases = tuple(str(p) for p in phases)
        if LIQUID_NAME not in self.phases:
            raise LogError(f"the phase vocabulary {list(self.phases)} has no {LIQUID_NAME!r}")
        self.denoise = _denoise_settings(denoise)
        self._n = 0
        self._last_step: int | None = None  # the largest known step in the log
        self._continues_at: int | None = None  # the log's last step when it was opened
        self._last_time: float | None = None  # ps, the largest known time in the log
        self._last_cell: np.ndarray | None = None  # Å, the cell of the log's last frame
        self._first_append = True  # the run's first frame is checked against the log's cell
        self.fsync = bool(fsync)
        self.cluster_rule = clusters or ClusterRule()
        for name, value in (("start_step", start_step), ("resume_from", resume_from)):
            if value is not None and (isinstance(value, bool) or int(value) != value):
                raise LogError(f"{name} must be an MD step (an integer), not {value!r}")
        key = str(self.path.resolve())
        if key in LogWriter._open_paths:
            raise LogError(f"{str(self.path)!r} is already being written by this process")
        network = shared_filesystem(self.path)
        if network is not None:
            warnings.warn(f"{self.path}: on a network file system ({network}), which does not "
                          "give the write ordering HDF5's SWMR readers need: read the log "
                          "(icemon watch, Log) on the node that writes it or after the run, "
                          "and never write one log from jobs on two hosts", LogWarning,
                          stacklevel=3)
        # a new log is built under a hidden name and published once in SWMR mode, so that
        # a reader never finds a half-made log (locked, or its end address past its bytes)
        part = None if self.path.exists() else self.path.with_name(
            f".{self.path.name}.{os.getpid()}.part")
        try:
            if part is None:
                self._open_existing()
                self._branch(start_step, resume_from)
                self._add_source(source)
            else:
                self._create(part, source, positions, atom_scores, cluster_ids)
            self.file.attrs["writer"] = json.dumps({"host": socket.gethostname(),
                                                    "pid": os.getpid()})
            self.file.swmr_mode = True
            if part is not None:
                _publish(part, self.path)
        except BaseException:
            self.close()
            raise
        finally:
            if part is not None:
                part.unlink(missing_ok=True)  # published under its name, or abandoned
        self._key = key
        LogWriter._open_paths.add(key)

    def _create(self, part: Path, source: str, positions: bool, atom_scores: bool,
                cluster_ids: bool) -> None:
        """Create the log's layout in ``part`` (published under the log's path by the
        caller)."""
        try:
            self.file = h5py.File(part, "w-", libver="latest")
        except OSError as exc:
            raise LogError(f"cannot create log {str(self.path)!r}: {exc}") from exc
        f, n = self.file, self.n_atoms
        f.attrs["schema"] = SCHEMA
        f.attrs["phases"] = np.array(self.phases, dtype=h5py.string_dtype())
        f.attrs["model"] = json.dumps(self.model)
        f.attrs["threshold"] = self.threshold
        if self.denoise is not None:
            f.attrs["denoise"] = json.dumps(self.denoise)
        f.attrs["source"] = source
        f.attrs["icemon_version"] = _version()
        f.attrs["clusters"] = self.cluster_rule.to_json()
        f.create_dataset("atom_ids", data=self.atom_ids)
        f.create_dataset(COUNTER, data=np.zeros(1, np.int64), maxshape=(None,), chunks=(1,))

        # no compression: float32 coordinates of a thermal frame shrink only to 88 %
        # under gzip level 1, which cost 4-5 ms per dataset and frame (8,064 atoms), most
        # of the time a frame spends in the log
        def series(name: str, shape: tuple[int, ...], dtype: Any):
            f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                             chunks=(1, *shape), fillvalue=FILL.get(name, np.nan))

        series("step", (), np.int64)
        series("time", (), np.float64)
        series("cell", (3, 3), np.float32)
        series("fractions", (len(self.phases),), np.float32)
        series("labels", (n,), np.int8)
        series("scores", (n,), np.float32)
        if atom_scores:
            series("atom_scores", (n,), np.float32)
        if positions:
            series("positions", (n, 3), np.float32)
            series("denoised", (n, 3), np.float32)
        self._cluster_series(0)
        if cluster_ids:
            series("cluster_ids", (n,), np.int32)
        for name in ("errors", "stops"):
            self._events(name)
        f.flush()

    def _cluster_series(self, rows: int) -> None:
        """Create the per-frame cluster datasets with ``rows`` rows of -1 ("not recorded":
        the frames of a log written before clusters were logged)."""
        shapes = {"largest_cluster": (), "n_clusters": (),
                  "cluster_composition": (len(self.phases),),
                  "largest_by_phase": (len(self.phases),)}
        for name in CLUSTER_SERIES:
            self.file.create_dataset(name, shape=(rows, *shapes[name]),
                                     maxshape=(None, *shapes[name]), dtype=np.int32,
                                     chunks=(1, *shapes[name]), fillvalue=FILL[name])

    def _events(self, name: str) -> None:
        """Create an empty (step, message) dataset: ``errors`` or ``stops``."""
        self.file.create_dataset(name, shape=(0,), maxshape=(None,), dtype=ERROR_DTYPE,
                                 chunks=(16,),
                                 fillvalue=np.array((STEP_FILL, b""), ERROR_DTYPE))

    def _open_existing(self) -> None:
        try:
            self.file = h5py.File(self.path, "r+", libver="latest")
        except OSError as exc:
            if "already open for write" not in str(exc):
                raise LogError(f"cannot open existing log {str(self.path)!r} for appending "
                               f"(not HDF5, or no permission?): {exc}") from exc
            try:
                check_writer_gone(self.path)
            except LogError as refused:
                raise refused from exc
            open_log(self.path).close()  # readable and icemon/1, else LogError
            clear_write_mark(self.path)
            warnings.warn(f"{self.path}: the previous writer stopped without closing the "
                          "log (crash or kill); its complete frames are kept and new frames "
                          "are appended after them", stacklevel=3)
            self._open_existing()
            return
        try:
            check_schema(self.file, self.path)
            model = json.loads(self.file.attrs["model"])
            if model.get("sha256") != self.model["sha256"]:
                raise LogError(f"{str(self.path)!r} was written with model {model.get('name')!r} "
                               f"(sha256 {model.get('sha256', '')[:12]}…), not with "
                               f"{self.model['name']!r} (sha256 {self.model['sha256'][:12]}…)")
            if log_phases(self.file) != self.phases:
                raise LogError(f"{str(self.path)!r} has the phases "
                               f"{list(log_phases(self.file))}, this model "
                               f"{list(self.phases)}")
            self._check_settings()
            ids = self.file["atom_ids"][()]
            if not np.array_equal(ids, self.atom_ids):
                raise LogError(f"{str(self.path)!r} monitors {len(ids)} other atoms than this "
                               f"run ({self.n_atoms} atoms): atom ids differ")
            self._resume()
        except Exception:
            self.file.close()
            raise

    def _check_settings(self) -> None:
        """Refuse to extend a log written with another threshold, denoising settings or
        labelling rules (the ``icemon_version``'s major.minor: semantic versioning, a
        change of labelling rules is a minor release); what the log does not record is
        unknown and passes."""
        f, differ = self.file, []
        logged = f.attrs.get("icemon_version")
        if logged is not None and _rules(str(logged)) != _rules(_version()):
            differ.append(f"labelling rules of icemon {str(logged)} in the log, "
                          f"{_version()} now")
        logged = f.attrs.get("threshold")
        if logged is not None and float(logged) != self.threshold:
            differ.append(f"threshold {float(logged)!r} in the log, {self.threshold!r} now")
        logged = f.attrs.get("clusters")
        if logged is not None and ClusterRule.from_json(logged) != self.cluster_rule:
            differ.append(f"cluster rule {logged} in the log, {self.cluster_rule.to_json()} "
                          "now")
        logged = f.attrs.get("denoise")
        if logged is not None and self.denoise is not None:
            logged = json.loads(logged)
            for key in sorted(set(logged) & set(self.denoise)):
                if logged[key] != self.denoise[key]:
                    differ.append(f"denoising {key} {logged[key]!r} in the log, "
                                  f"{self.denoise[key]!r} now")
        if differ:
            raise LogError(f"{str(self.path)!r} was written with other settings than this "
                           f"run: {'; '.join(differ)}. Start a new log for this run")

    def _resume(self) -> None:
        """Continue after the last complete frame: cut unfinished rows, add the frame
        counter to a log written before it existed, note the last known step."""
        f = self.file
        n = complete_frames(f)
        if COUNTER not in f:
            f.create_dataset(COUNTER, data=np.array([n], np.int64), maxshape=(None,),
                             chunks=(1,))
        for name in SERIES:
            if name in f and f[name].shape[0] > n:
                f[name].resize(n, axis=0)
        if "largest_cluster" not in f:  # a log written before clusters were logged
            self._cluster_series(n)
            f.attrs["clusters"] = self.cluster_rule.to_json()
        if "stops" not in f:
            self._events("stops")
        self._n = n
        self._note_last()

    def _note_last(self) -> None:
        """The largest known step and time of the log's frames and its last frame's cell:
        what the next frame is checked against."""
        f, n = self.file, self._n
        steps, times = f["step"][:n], f["time"][:n]
        known = steps[steps != UNKNOWN_STEP]
        self._last_step = int(known.max()) if known.size else None
        finite = times[np.isfinite(times)]
        self._last_time = float(finite.max()) if finite.size else None
        self._last_cell = f["cell"][n - 1].astype(np.float64) if n else None

    def _branch(self, start_step: int | None, resume_from: int | None) -> None:
        """Make a restarted run a branch of the log: drop frames after ``resume_from``
        (recorded), then refuse a run that starts before the log's last step."""
        last = self._last_step
        if resume_from is not None and last is not None:  # what would stay after the drop
            steps = self.file["step"][: self._n]
            kept = steps[(steps != UNKNOWN_STEP) & (steps <= int(resume_from))]
            last = int(kept.max()) if kept.size else None
        if resume_from is not None and start_step is not None \
                and int(start_step) < int(resume_from):
            raise LogError(  # checked before anything in the log changes
                f"resume_from={int(resume_from)}, but this run starts at step "
                f"{int(start_step)}: a run that resumes the log at step {int(resume_from)} "
                f"starts there (ASE: pass start_step={int(resume_from)}); the log is unchanged")
        if start_step is not None and last is not None and last > int(start_step):
            raise LogError(
                f"{str(self.path)!r} already holds frames up to step {self._last_step}, and "
                f"this run starts at step {int(start_step)}: appending would splice two "
                "trajectories into one time series. If the run continues the logged one from "
                f"a restart at step {int(start_step)}, pass resume_from={int(start_step)} to "
                f"drop the log's frames after step {int(start_step)} (the drop is recorded in "
                "the log); otherwise write to a new log")
        if resume_from is not None:
            self._drop_after(int(resume_from))
        self._continues_at = self._last_step

    def _add_source(self, source: str) -> None:
        """Name an appending run's producer in the ``source`` attribute too, when it is
        another one (a later trajectory file, another engine)."""
        logged = str(self.file.attrs.get("source", ""))
        if source and source not in logged.split("; then "):
            self.file.attrs["source"] = f"{logged}; then {source}" if logged else source

    def _drop_after(self, step: int) -> None:
        """Cut the frames after the last one at or before ``step`` (frames of unknown step
        in between go with them) and record the cut in the ``resumes`` attribute."""
        f, n = self.file, self._n
        steps = f["step"][:n]
        later = np.flatnonzero((steps != UNKNOWN_STEP) & (steps > step))
        record = {"from_step": step, "dropped_frames": 0, "dropped_steps": None,
                  "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if later.size:
            keep = int(later[0])
            known = steps[keep:][steps[keep:] != UNKNOWN_STEP]
            record.update(dropped_frames=n - keep,
                          dropped_steps=[int(known.min()), int(known.max())])
            counter = f[COUNTER]
            counter[0] = keep  # first the count, so a reader never counts a cut row
            counter.flush()
            for name in SERIES:
                if name in f:
                    f[name].resize(keep, axis=0)
            self._n = keep
            self._note_last()
        if "stops" in f:  # a stop after the resume point ended the dropped branch
            stops = f["stops"][()]
            keep_stops = stops[(stops["step"] != STEP_FILL) & (stops["step"] <= step)]
            if len(keep_stops) != len(stops):
                f["stops"].resize(len(keep_stops), axis=0)
                f["stops"][:] = keep_stops
                record["dropped_stops"] = int(len(stops) - len(keep_stops))
        resumes = json.loads(f.attrs.get("resumes", "[]"))
        f.attrs["resumes"] = json.dumps([*resumes, record])
        f.flush()

    @property
    def last_step(self) -> int | None:
        """The largest known step in the log (None: none yet)."""
        return self._last_step

    @property
    def n_frames(self) -> int:
        """Complete frames in the log."""
        return self._n

    @property
    def has_positions(self) -> bool:
        return "positions" in self.file

    def check_step(self, step: int, time: float = float("nan")) -> None:
        """Raise unless a frame at ``step`` and ``time`` (ps) may be appended next:
        :class:`AlreadyLogged` for a restart's first frame at the log's last step,
        :class:`LogError` for a known step or time that is not after the last known one
        (frames of unknown step and time, -1 and NaN, are accepted anywhere)."""
        step = int(step)
        if step != UNKNOWN_STEP and step == self._continues_at:
            self._continues_at = None
            raise AlreadyLogged(f"step {step} is already the last frame of {str(self.path)!r}")
        if step != UNKNOWN_STEP and self._last_step is not None and step <= self._last_step:
            raise LogError(f"step {step} is not after the last logged step {self._last_step} "
                           f"of {str(self.path)!r}: steps must go forward in one log (a run "
                           "restarted from an earlier point: attach with resume_from, or "
                           "write a new log)")
        if np.isfinite(time) and self._last_time is not None and time <= self._last_time:
            raise LogError(f"time {time:g} ps is not after the last logged time "
                           f"{self._last_time:g} ps of {str(self.path)!r}: times must go "
                           "forward in one log (the same frames appended twice, or another "
                           "run: write a new log)")

    def check_cell(self, cell: np.ndarray) -> None:
        """Refuse a run's first frame whose cell differs from the log's last frame's by
        more than :data:`CELL_JUMP` in a lattice vector's length: another simulation (a
        continued run starts from the cell it ended with)."""
        if self._last_cell is None:
            return
        old = np.linalg.norm(self._last_cell, axis=1)
        new = np.linalg.norm(np.asarray(cell, dtype=np.float64), axis=1)
        change = np.abs(new - old) / np.maximum(old, 1e-9)
        if np.any(change > CELL_JUMP):
            raise LogError(
                f"this run's first frame has a cell of {', '.join(f'{x:.2f}' for x in new)} Å, "
                f"the last frame of {str(self.path)!r} "
                f"{', '.join(f'{x:.2f}' for x in old)} Å ({100 * change.max():.0f} % apart): "
                "another simulation, not the logged one continued; write it to a new log")

    def append(self, result) -> None:
        """Append one :class:`~icemon.execution.pipeline.Result` and flush it to disk.

        Raises :class:`LogError` (and leaves the log as it was) for a frame of other atoms
        or one whose step is not after the log's last known step."""
        fr = result.frame
        if fr.n_atoms != self.n_atoms or not np.array_equal(fr.atom_ids, self.atom_ids):
            raise LogError(f"frame atoms (N={fr.n_atoms}) do not match the log's atom ids "
                           f"(N={self.n_atoms})")
        step = int(fr.step)
        self.check_step(step, float(fr.time))
        if self._last_cell is not None and self._first_append:
            self.check_cell(fr.cell)
        self._first_append = False
        self._continues_at = None
        f = self.file
        k = self._n
        values = {
            "step": step, "time": fr.time, "cell": fr.cell, "fractions": result.fractions,
            "labels": result.labels, "scores": result.scores,
        }
        if "atom_scores" in f:
            values["atom_scores"] = (result.scores if result.atom_scores is None
                                     else result.atom_scores)
        if self.has_positions:
            values["positions"] = fr.positions
            values["denoised"] = result.denoised
        clusters = result.clusters(self.cluster_rule)
        values["largest_cluster"] = clusters.largest
        values["n_clusters"] = clusters.n_clusters
        values["cluster_composition"] = clusters.composition
        values["largest_by_phase"] = clusters.largest_by_phase
        if "cluster_ids" in f:
            values["cluster_ids"] = clusters.ids
        order = [n for n in values if n != "step"] + ["step"]
        for name in order:
            ds = f[name]
            ds.resize(k + 1, axis=0)
            ds[k] = values[name]
        for name in order:
            f[name].flush()
        # only now, with the row on disk in every dataset, does the frame count
        counter = f[COUNTER]
        counter[0] = k + 1
        counter.flush()
        f.flush()
        if self.fsync:
            self._sync()
        self._n = k + 1
        if step != UNKNOWN_STEP:
            self._last_step = step
        if np.isfinite(fr.time):
            self._last_time = float(fr.time)

    def record_stop(self, step: int, reason: str) -> None:
        """Record that a stop condition ended the run at ``step`` (``Log.stopped``; a
        dataset row, since a SWMR writer cannot add attributes)."""
        ds = self.file["stops"]
        k = ds.shape[0]
        ds.resize(k + 1, axis=0)
        ds[k] = (int(step), str(reason).encode("utf-8", "replace")[:512])
        ds.flush()

    def _sync(self) -> None:
        """Put the flushed file on the disk (fsync of HDF5's own file descriptor)."""
        os.fsync(self.file.id.get_vfd_handle())

    def record_error(self, step: int, message: str) -> None:
        """Note a frame that could not be classified (the frame itself is not logged)."""
        if "errors" not in self.file:  # a log written before errors were recorded
            return
        ds = self.file["errors"]
        k = ds.shape[0]
        ds.resize(k + 1, axis=0)
        ds[k] = (int(step), message.encode("utf-8", "replace")[:512])
        ds.flush()

    def close(self) -> None:
        if getattr(self, "file", None) is not None and self.file.id.valid:
            self.file.close()
        LogWriter._open_paths.discard(getattr(self, "_key", ""))

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
