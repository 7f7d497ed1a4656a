"""The ``icemon/1`` log's layout: its datasets, fill values and what a complete frame is.

The ``icemon/1`` HDF5 log, written by ``icemon classify`` and the live monitors.

Layout (first axis of every per-frame dataset = monitored frame, chunked, resizable)::

    /                      attrs: schema="icemon/1", phases (the model's vocabulary:
                                  names, index = code; the seven-ice models: Ih Ic II
                                  III VI VII sI liquid),
                                  model (JSON {"name", "sha256"}), threshold, source,
                                  icemon_version, denoise (JSON {"max_steps", "tol",
                                  "device"}; absent = unknown),
                                  resumes (JSON list: restarts that dropped the frames
                                  after a step, ``Log.resumes``; absent = none),
                                  clusters (JSON: the cluster rule, ``cutoff`` Å,
                                  ``min_ice_neighbours``, ``min_size``)
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
    /largest_cluster int32 (n)     molecules in the frame's largest ice cluster (connected
                                   ice molecules, ``clusters`` attribute: the rule; -1:
                                   not recorded, frames of a log written before clusters)
    /n_clusters int32 (n)          clusters of at least the rule's min_size molecules
    /cluster_composition int32 (n, P)  molecules of each phase in the largest cluster
    /largest_by_phase int32 (n, P) the largest cluster of each phase alone
    /cluster_ids int32 (n, N)      cluster of each molecule, 0 = the largest, -1 = none
                                   (optional)
    /positions  float32 (n, N, 3)  Å, as given (optional)
    /denoised   float32 (n, N, 3)  Å, after denoising (optional)
    /errors     (m,) {step int64, message S512}  monitor failures (frames not logged)
    /stops      (m,) {step int64, message S512}  stop conditions that ended a run

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

(Writer: :mod:`icemon.io.log.writer`; reader: :mod:`icemon.io.log.reader`; recovery
of a log whose writer was killed: :mod:`icemon.io.log.recovery`.)
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from icemon.errors import IcemonError
from icemon.phases import LIQUID_NAME

SCHEMA = "icemon/1"
ERROR_DTYPE = np.dtype([("step", np.int64), ("message", "S512")])
REQUIRED = ("atom_ids", "step", "time", "cell", "fractions", "labels", "scores")
CLUSTER_SERIES = ("largest_cluster", "n_clusters", "cluster_composition", "largest_by_phase")
"""Per-frame cluster summaries (logs written before clusters were logged lack them)."""
SERIES = ("step", "time", "cell", "fractions", "labels", "scores", "atom_scores", "positions",
          "denoised", *CLUSTER_SERIES, "cluster_ids")
"""The per-frame datasets ('atom_scores', 'positions', 'denoised', the cluster series and
'cluster_ids' are optional)."""
COUNTER = "n_frames"
STEP_FILL = int(np.iinfo(np.int64).min)
"""What an unwritten 'step' (or error step) reads as; -1 is a real step ("unknown")."""
UNKNOWN_STEP = -1
FILL = {"step": STEP_FILL, "labels": -1, **{name: -1 for name in CLUSTER_SERIES},
        "cluster_ids": -1}
"""Fill values of the per-frame datasets; every other one is floating point: NaN."""


class LogError(IcemonError, ValueError):
    """A log that is not ``icemon/1``, or does not match the run that wants to extend it."""


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
