"""The ``icemon/1`` HDF5 log, written by ``icemon classify`` and the live monitors.

Layout (first axis of every per-frame dataset = monitored frame, chunked, resizable)::

    /                      attrs: schema="icemon/1", phases (the model's vocabulary:
                                  names, index = code; the seven-ice models: Ih Ic II
                                  III VI VII sI liquid),
                                  model (JSON {"name", "sha256"}), threshold, source,
                                  icemon_version, denoise (JSON {"max_steps", "tol",
                                  "device"}; absent = unknown)
    /atom_ids   int64 (N)          the atom behind each column
    /n_frames   int64 (1)          number of complete frames (written after their data)
    /step       int64 (n)          MD step (-1 if unknown)
    /time       float64 (n)        ps (NaN if unknown)
    /cell       float32 (n, 3, 3)  Å, lattice vectors as rows
    /fractions  float32 (n, P)     fraction of each phase (P = len(phases))
    /labels     int8 (n, N)        phase code per atom
    /scores     float32 (n, N)     the score behind the liquid decision: distance to the
                                   nearest reference environment (of the shell-averaged
                                   descriptor when the model averages; the threshold
                                   attribute applies to it)
    /atom_scores float32 (n, N)    distance of each atom's own descriptor (optional:
                                   models that average descriptors)
    /positions  float32 (n, N, 3)  Å, as given (optional)
    /denoised   float32 (n, N, 3)  Å, after denoising (optional)
    /errors     (m,) {step int64, message S512}  monitor failures (frames not logged)

Every append is flushed, and the file is written in HDF5 SWMR mode, so it can be read
while it grows (open it with ``h5py.File(path, "r", swmr=True)`` or :func:`open_log`) and a
crash loses at most the frame in progress.

Complete frames: an append resizes every per-frame dataset, writes and flushes the row,
and only then writes and flushes ``n_frames``. The per-frame datasets can therefore be a
row longer than ``n_frames`` (a reader catching an append half-way, or a writer killed
mid-frame); that row is not a frame. Readers take :func:`complete_frames` (``n_frames``
read first, then the datasets refreshed, never more rows than any of them holds). Rows that
were resized but not yet written read as fill values that no frame has — labels -1; NaN
scores, fractions, cell and positions; step ``STEP_FILL`` (the int64 minimum, since -1 is
a real "unknown" step); time NaN (as an unknown time); errors ``(STEP_FILL, b"")`` — so
even a reader that ignores ``n_frames`` cannot take such a row for "ice Ih, score 0".
A restarted writer cuts the datasets back to ``n_frames`` before appending. Logs written
before ``n_frames`` existed (no counter, no fill values) count ``len(step)`` frames, as
they always did ('step' was written last); appending to one adds the counter.

One log, one run: appending checks the model (sha256), the liquid threshold, the atom ids
and the denoising settings (``denoise``: maximum number of passes, tolerance, device);
anything that differs is a :class:`LogError` naming it. Settings a log does not record
(older logs) are unknown and not checked. Steps must go forward: a frame whose step is not
larger than every step already in the log is refused with a :class:`LogError` (a run
restarted from an earlier point would otherwise mix two trajectories in one time series;
start a new log for it). Frames of unknown step (-1) are accepted anywhere.

A writer killed without closing leaves HDF5's "open for SWMR write" mark in the
superblock, which makes plain HDF5 (and h5py) refuse to open the file. Re-opening it with
:class:`LogWriter` clears that mark (what ``h5clear -s`` does) once it has checked that
the process recorded as the writer is gone, and appends after the last complete frame.
"""

from __future__ import annotations

import errno
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

from icemon.errors import IcemonError
from icemon.phases import LIQUID_NAME, PHASES

SCHEMA = "icemon/1"
ERROR_DTYPE = np.dtype([("step", np.int64), ("message", "S512")])
REQUIRED = ("atom_ids", "step", "time", "cell", "fractions", "labels", "scores")
SERIES = ("step", "time", "cell", "fractions", "labels", "scores", "atom_scores", "positions",
          "denoised")
"""The per-frame datasets ('atom_scores', 'positions' and 'denoised' are optional)."""
COUNTER = "n_frames"
STEP_FILL = int(np.iinfo(np.int64).min)
"""What an unwritten 'step' (or error step) reads as; -1 is a real step ("unknown")."""
UNKNOWN_STEP = -1
FILL = {"step": STEP_FILL, "labels": -1}
"""Fill values of the per-frame datasets; every other one is floating point: NaN."""


class LogError(IcemonError, ValueError):
    """A log that is not ``icemon/1``, or does not match the run that wants to extend it."""


def _version() -> str:
    from icemon import __version__

    return __version__


def check_schema(f: h5py.File, path: str | Path) -> None:
    """Raise :class:`LogError` unless ``f`` is a complete ``icemon/1`` log."""
    schema = f.attrs.get("schema")
    if isinstance(schema, bytes):
        schema = schema.decode()
    if schema != SCHEMA:
        raise LogError(f"{str(path)!r} is not an icemon log (schema attribute {schema!r}, "
                       f"expected {SCHEMA!r})")
    missing = [k for k in REQUIRED if k not in f]
    if missing:
        raise LogError(f"{str(path)!r} is an incomplete icemon/1 log: missing {missing}")
    phases = log_phases(f)
    if LIQUID_NAME not in phases or f["fractions"].shape[1:] != (len(phases),):
        raise LogError(f"{str(path)!r}: its phase vocabulary {list(phases)} does not match its "
                       f"fractions ({f['fractions'].shape[1:]} columns) or has no liquid")


def log_phases(f: h5py.File) -> tuple[str, ...]:
    """The phase names of an open log (its ``phases`` attribute: the model's vocabulary;
    label k is ``phases[k]``, fractions column k its fraction)."""
    return tuple(p.decode() if isinstance(p, bytes) else str(p)
                 for p in f.attrs.get("phases", []))


def complete_frames(f: h5py.File, refresh: bool = False) -> int:
    """The number of complete frames of an open log.

    That is the ``n_frames`` counter, bounded by the rows every per-frame dataset holds;
    a log written before the counter existed has ``len(step)`` frames. With ``refresh``
    (SWMR readers), the counter is re-read first and the datasets are refreshed after it,
    so every row it counts is visible in all of them."""
    def fresh(name: str) -> None:
        if refresh:
            try:
                f[name].refresh()
            except (RuntimeError, ValueError, OSError):  # a file not opened in SWMR mode
                pass

    rows = []
    if COUNTER in f:
        fresh(COUNTER)
        rows.append(int(f[COUNTER][0]))
    for name in SERIES:
        if name in f:
            fresh(name)
            rows.append(int(f[name].shape[0]))
    return min(rows)


def open_log(path: str | Path, wait: float = 2.0) -> h5py.File:
    """Open an ``icemon/1`` log for reading, also while a run is still writing it (SWMR).

    A writer that is reopening the log to append (after a restart) holds HDF5's file lock
    until it switches to SWMR mode, and meanwhile its end-of-file address may run ahead of
    the bytes on disk; both are retried for up to ``wait`` seconds.

    Raises :class:`LogError` for a missing, non-HDF5, truncated, foreign or still-locked
    file."""
    path = Path(path)
    deadline = time.monotonic() + wait
    while True:
        try:
            return _open_log_once(path)
        except _Busy as exc:
            if time.monotonic() >= deadline:
                raise LogError(_lock_message(path) or str(exc)) from exc.__cause__
            time.sleep(0.05)


def _lock_message(path: Path) -> str | None:
    """Why ``path`` cannot be opened if another process holds HDF5's lock on it, else None."""
    try:
        h5py.File(path, "r").close()
    except OSError as exc:
        if _locked(exc):
            return (f"{str(path)!r} is locked (HDF5 file lock) by a process that holds it "
                    "open for writing without SWMR mode; icemon's writers switch to SWMR "
                    f"within a second, so another program holds it ({exc})")
    return None


class _Busy(Exception):
    """A log a writer is setting up right now (lock held or not all bytes flushed)."""


def _open_log_once(path: Path) -> h5py.File:
    if not path.exists():
        raise LogError(f"no such log: {str(path)!r}")
    _check_not_truncated(path)
    try:
        f = h5py.File(path, "r", swmr=True, libver="latest")
    except OSError as first:
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            if _locked(first) or _locked(exc):
                raise _Busy(str(exc)) from exc  # named by open_log if it stays locked
            raise LogError(f"{str(path)!r} is not a readable HDF5 file (truncated or not "
                           f"HDF5?): {exc}") from exc
    try:
        check_schema(f, path)
        n = complete_frames(f)
        if n:  # the last complete frame must be readable
            for name in REQUIRED[1:]:
                f[name][n - 1]
    except OSError as exc:
        f.close()
        raise LogError(f"{str(path)!r} is damaged (truncated copy?): {exc}") from exc
    except Exception:
        f.close()
        raise
    return f


def _locked(exc: OSError) -> bool:
    """Whether an h5py open failed on another process's file lock."""
    return exc.errno == errno.EAGAIN or "lock" in str(exc).lower()


def _superblock(path: str | Path) -> bytes | None:
    """The 48 bytes of a version 2/3 HDF5 superblock with 8-byte addresses at offset 0
    (what icemon writes), or None for anything else. Bytes 11: file-consistency flags,
    28–36: end-of-file address, 44–48: checksum."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if len(head) == 48 and head[:8] == b"\x89HDF\r\n\x1a\n" and head[8] in (2, 3) \
            and head[9] == 8:
        return head
    return None


def open_for_writing(path: str | Path) -> bool:
    """Whether a writer holds the log open (or was killed without closing it)."""
    head = _superblock(path)
    return head is not None and head[11] != 0


def _check_not_truncated(path: Path) -> None:
    """Compare the file size with the end-of-file address in the superblock (a log still
    marked open for writing may be mid-flush: :class:`_Busy`, retried)."""
    head = _superblock(path)
    if head is not None:
        eof = int.from_bytes(head[28:36], "little")
        size = path.stat().st_size
        if size < eof:
            message = f"{str(path)!r} is truncated: {size} bytes of {eof}"
            if head[11] != 0:
                raise _Busy(message + " (marked open for writing: a copy of a live log, or "
                            "a writer killed mid-write)")
            raise LogError(message)


def _lookup3(data: bytes) -> int:
    """Bob Jenkins' lookup3 hash, HDF5's metadata checksum (H5_checksum_lookup3, seed 0)."""
    m = 0xFFFFFFFF

    def rot(x: int, k: int) -> int:
        return ((x << k) | (x >> (32 - k))) & m

    n = len(data)
    a = b = c = (0xDEADBEEF + n) & m
    k = 0
    while n > 12:
        a = (a + int.from_bytes(data[k:k + 4], "little")) & m
        b = (b + int.from_bytes(data[k + 4:k + 8], "little")) & m
        c = (c + int.from_bytes(data[k + 8:k + 12], "little")) & m
        a = (a - c) & m; a ^= rot(c, 4); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 6); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 8); b = (b + a) & m
        a = (a - c) & m; a ^= rot(c, 16); c = (c + b) & m
        b = (b - a) & m; b ^= rot(a, 19); a = (a + c) & m
        c = (c - b) & m; c ^= rot(b, 4); b = (b + a) & m
        n -= 12
        k += 12
    if n == 0:
        return c
    tail = data[k:] + bytes(12 - n)
    a = (a + int.from_bytes(tail[0:4], "little")) & m
    b = (b + int.from_bytes(tail[4:8], "little")) & m
    c = (c + int.from_bytes(tail[8:12], "little")) & m
    c ^= b; c = (c - rot(b, 14)) & m
    a ^= c; a = (a - rot(c, 11)) & m
    b ^= a; b = (b - rot(a, 25)) & m
    c ^= b; c = (c - rot(b, 16)) & m
    a ^= c; a = (a - rot(c, 4)) & m
    b ^= a; b = (b - rot(a, 14)) & m
    c ^= b; c = (c - rot(b, 24)) & m
    return c


def clear_write_mark(path: str | Path) -> None:
    """Clear the superblock's "open for (SWMR) write" flags left by a killed writer,
    like ``h5clear -s``. Only version 2/3 superblocks at offset 0 (what icemon writes);
    the stored checksum is verified before anything is changed."""
    head = _superblock(path)
    if head is None:
        raise LogError(f"{str(path)!r}: unexpected HDF5 superblock; clear it with "
                       "'h5clear -s' before appending")
    with open(path, "r+b") as fh:
        if int.from_bytes(head[44:48], "little") != _lookup3(head[:44]):
            raise LogError(f"{str(path)!r}: superblock checksum mismatch; not touching it")
        fixed = head[:11] + b"\x00" + head[12:44]
        fh.seek(0)
        fh.write(fixed + _lookup3(fixed).to_bytes(4, "little"))
        fh.flush()
        os.fsync(fh.fileno())


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


def _writer_alive(path: Path) -> str | None:
    """Who is recorded as writing ``path``, if that process still runs on this host."""
    try:
        with h5py.File(path, "r", swmr=True, libver="latest") as f:
            writer = json.loads(f.attrs.get("writer", "{}"))
    except (OSError, ValueError):
        return None
    if writer.get("host") != socket.gethostname() or not writer.get("pid"):
        return None
    try:
        os.kill(int(writer["pid"]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return f"pid {writer['pid']} on {writer['host']}"


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
            "device": str}`` (e.g. of :class:`~icemon.core.denoise.Denoiser`); recorded in a new
            log, compared with an existing one's. None: unknown, neither recorded nor
            checked.
    """

    _open_paths: set[str] = set()  # logs this process is writing (HDF5 shares handles)

    def __init__(self, path: str | Path, atom_ids: np.ndarray, *, model_name: str,
                 model_sha256: str, threshold: float, source: str = "",
                 positions: bool = True, denoise: Mapping[str, Any] | None = None,
                 atom_scores: bool = False, phases: Sequence[str] = PHASES) -> None:
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
        key = str(self.path.resolve())
        if key in LogWriter._open_paths:
            raise LogError(f"{str(self.path)!r} is already being written by this process")
        # a new log is built under a hidden name and published once in SWMR mode, so that
        # a reader never finds a half-made log (locked, or its end address past its bytes)
        part = None if self.path.exists() else self.path.with_name(
            f".{self.path.name}.{os.getpid()}.part")
        try:
            if part is None:
                self._open_existing()
            else:
                self._create(part, source, positions, atom_scores)
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

    def _create(self, part: Path, source: str, positions: bool, atom_scores: bool) -> None:
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
        f.create_dataset("errors", shape=(0,), maxshape=(None,), dtype=ERROR_DTYPE,
                         chunks=(16,), fillvalue=np.array((STEP_FILL, b""), ERROR_DTYPE))
        f.flush()

    def _open_existing(self) -> None:
        try:
            self.file = h5py.File(self.path, "r+", libver="latest")
        except OSError as exc:
            if "already open for write" not in str(exc):
                raise LogError(f"cannot open existing log {str(self.path)!r} for appending "
                               f"(not HDF5, or no permission?): {exc}") from exc
            writer = _writer_alive(self.path)
            if writer is not None:
                raise LogError(f"{str(self.path)!r} is being written by {writer}; "
                               "refusing to write to it at the same time") from exc
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
        """Refuse to extend a log written with another threshold or denoising settings
        (what the log does not record is unknown and passes)."""
        f, differ = self.file, []
        logged = f.attrs.get("threshold")
        if logged is not None and float(logged) != self.threshold:
            differ.append(f"threshold {float(logged)!r} in the log, {self.threshold!r} now")
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
        steps = f["step"][:n]
        known = steps[steps != UNKNOWN_STEP]
        self._n = n
        self._last_step = int(known.max()) if known.size else None

    @property
    def n_frames(self) -> int:
        """Complete frames in the log."""
        return self._n

    @property
    def has_positions(self) -> bool:
        return "positions" in self.file

    def append(self, result) -> None:
        """Append one :class:`~icemon.core.pipeline.Result` and flush it to disk.

        Raises :class:`LogError` (and leaves the log as it was) for a frame of other atoms
        or one whose step is not after the log's last known step."""
        fr = result.frame
        if fr.n_atoms != self.n_atoms or not np.array_equal(fr.atom_ids, self.atom_ids):
            raise LogError(f"frame atoms (N={fr.n_atoms}) do not match the log's atom ids "
                           f"(N={self.n_atoms})")
        step = int(fr.step)
        if step != UNKNOWN_STEP and self._last_step is not None and step <= self._last_step:
            raise LogError(f"step {step} is not after the last logged step {self._last_step} "
                           f"of {str(self.path)!r}: steps must go forward in one log (a run "
                           "restarted from an earlier point needs a new log)")
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
        self._n = k + 1
        if step != UNKNOWN_STEP:
            self._last_step = step

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
