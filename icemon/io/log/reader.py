"""Reading an ``icemon/1`` log, also while a run is still writing it (SWMR).

>>> log = Log("run.h5")
>>> log.times, log.fractions, log.labels(-1)   # (n,) ps, (n, n_phases), (N,)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np

from icemon.geometry.clusters import ClusterRule, Clusters, find_clusters
from icemon.io.log.recovery import Busy, check_not_truncated, lock_message, locked
from icemon.io.log.schema import (
    REQUIRED,
    STEP_FILL,
    UNKNOWN_STEP,
    LogError,
    check_schema,
    complete_frames,
    log_phases,
)
from icemon.phases import is_ice, liquid_code, unknown_code


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
        except Busy as exc:
            if time.monotonic() >= deadline:
                raise LogError(lock_message(path) or str(exc)) from exc.__cause__
            time.sleep(0.05)


def _open_log_once(path: Path) -> h5py.File:
    if not path.exists():
        raise LogError(f"no such log: {str(path)!r}")
    check_not_truncated(path)
    try:
        f = h5py.File(path, "r", swmr=True, libver="latest")
    except OSError as first:
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            if locked(first) or locked(exc):
                raise Busy(str(exc)) from exc  # named by open_log if it stays locked
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



class Log:
    """An ``icemon/1`` log opened for reading (SWMR: safe while a run appends to it).

    Only complete frames are visible (:func:`~icemon.io.log.complete_frames`: a row the
    writer has resized but not finished is never a frame); :meth:`refresh` picks up new
    ones.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file: h5py.File = open_log(self.path)
        self.refresh()

    def refresh(self) -> int:
        """Re-read the frame count (new frames of a running simulation); returns it.

        Every dataset read later (per-frame ones and ``errors``) is refreshed here, after
        the frame counter, so all of them hold every frame counted."""
        self.n_frames = complete_frames(self.file, refresh=True)
        if "errors" in self.file:
            try:
                self.file["errors"].refresh()
            except (RuntimeError, ValueError, OSError):  # a file not opened in SWMR mode
                pass
        return self.n_frames

    @property
    def phases(self) -> tuple[str, ...]:
        """The phase names of the model that wrote the log (label k is ``phases[k]``)."""
        return log_phases(self.file)

    @property
    def liquid(self) -> int:
        """The label code of liquid in this log."""
        return liquid_code(self.phases)

    @property
    def unknown(self) -> int:
        """The label code of ``unknown`` in this log (-1: its model had no such label)."""
        return unknown_code(self.phases)

    @property
    def has_positions(self) -> bool:
        return "positions" in self.file

    @property
    def atom_ids(self) -> np.ndarray:
        return self.file["atom_ids"][()]

    @property
    def n_atoms(self) -> int:
        return int(self.file["atom_ids"].shape[0])

    @property
    def steps(self) -> np.ndarray:
        return self.file["step"][: self.n_frames]

    @property
    def times(self) -> np.ndarray:
        """(n,) ps (NaN where the producer did not know the time)."""
        return self.file["time"][: self.n_frames]

    @property
    def fractions(self) -> np.ndarray:
        """(n, n_phases) fraction of each phase (:attr:`phases`) per frame."""
        return self.file["fractions"][: self.n_frames]

    @property
    def counts(self) -> np.ndarray:
        """(n, n_phases) number of molecules of each phase per frame."""
        return np.rint(self.fractions * self.n_atoms).astype(np.int64)

    @property
    def errors(self) -> list[tuple[int, str]]:
        """(step, message) of the frames the monitor skipped, as of the last refresh.
        Rows not written yet (fill value, or empty in logs without one) are left out."""
        if "errors" not in self.file:
            return []
        return [(int(s), m.decode(errors="replace")) for s, m in self.file["errors"][()]
                if s != STEP_FILL and m]

    @property
    def denoise(self) -> dict | None:
        """The denoising settings the log records (``max_steps``, ``tol``, ``device``);
        None for a log written before they were recorded, or without them."""
        raw = self.file.attrs.get("denoise")
        return None if raw is None else json.loads(raw)

    @property
    def cluster_rule(self) -> ClusterRule:
        """What the log's clusters are (the default rule for logs that record none)."""
        raw = self.file.attrs.get("clusters")
        return ClusterRule() if raw is None else ClusterRule.from_json(raw)

    def _cluster_series(self, name: str) -> np.ndarray:
        if name not in self.file:
            raise LogError(f"{str(self.path)!r} was written before clusters were logged: "
                           "take them from its denoised positions with "
                           "Log.clusters(k)")
        return self.file[name][: self.n_frames].astype(np.int64)

    @property
    def largest_cluster(self) -> np.ndarray:
        """(n,) molecules in each frame's largest ice cluster (-1: not recorded)."""
        return self._cluster_series("largest_cluster")

    @property
    def n_clusters(self) -> np.ndarray:
        """(n,) clusters of at least :attr:`cluster_rule`'s ``min_size`` per frame."""
        return self._cluster_series("n_clusters")

    @property
    def cluster_composition(self) -> np.ndarray:
        """(n, n_phases) molecules of each phase in each frame's largest cluster."""
        return self._cluster_series("cluster_composition")

    @property
    def largest_by_phase(self) -> np.ndarray:
        """(n, n_phases) each frame's largest cluster of each phase alone."""
        return self._cluster_series("largest_by_phase")

    def largest_clusters(self) -> np.ndarray:
        """(n,) molecules in each frame's largest ice cluster, complete where it can be:
        the logged sizes, and for frames logged before clusters were (-1 in
        :attr:`largest_cluster`, or a log without them) the size computed from their
        denoised positions; -1 stays only where neither exists."""
        n = self.n_frames
        cached = getattr(self, "_largest", None)
        if cached is not None and len(cached) == n:
            return cached.copy()  # frames are only ever added: the first n are the same
        sizes = (self._cluster_series("largest_cluster") if "largest_cluster" in self.file
                 else np.full(n, -1, dtype=np.int64))
        if self.has_positions:
            for k in np.flatnonzero(sizes < 0):
                sizes[k] = self.clusters(int(k)).largest
        self._largest = sizes
        return sizes.copy()

    def clusters(self, k: int) -> Clusters:
        """The clusters of frame ``k`` computed from its logged denoised positions and labels
        with :attr:`cluster_rule` (what the writer logged; ids, sizes, composition)."""
        labels = self.labels(k).astype(np.int64)
        ice = is_ice(labels, self.liquid, self.unknown)
        return find_clusters(self.positions(k, denoised=True), self.cell(k), labels, ice,
                             len(self.phases), self.cluster_rule)

    def cluster_ids(self, k: int) -> np.ndarray:
        """(N,) cluster of each molecule in frame ``k`` (0 = the largest, -1 = none): logged
        ids when the log has them, else :meth:`clusters`' (the same rule and code)."""
        if "cluster_ids" in self.file:
            return self.file["cluster_ids"][self._index(k)].astype(np.int32)
        return self.clusters(k).ids

    @property
    def stopped(self) -> dict | None:
        """``{"step", "reason"}`` of the last stop condition that ended a run writing this
        log, else None."""
        if "stops" not in self.file:
            return None
        ds = self.file["stops"]
        try:
            ds.refresh()
        except (RuntimeError, ValueError, OSError):  # a file not opened in SWMR mode
            pass
        rows = [(int(s), m.decode(errors="replace")) for s, m in ds[()] if s != STEP_FILL and m]
        return {"step": rows[-1][0], "reason": rows[-1][1]} if rows else None

    @property
    def resumes(self) -> list[dict]:
        """Restarts that continued this log from an earlier step, oldest first: each
        ``{"from_step", "dropped_frames", "dropped_steps": [first, last] or None, "utc"}``
        (the frames after ``from_step`` that a restarted run replaced)."""
        return json.loads(self.file.attrs.get("resumes", "[]"))

    def cell(self, k: int) -> np.ndarray:
        return self.file["cell"][self._index(k)].astype(np.float64)

    def labels(self, k: int) -> np.ndarray:
        return self.file["labels"][self._index(k)]

    def scores(self, k: int) -> np.ndarray:
        """(N,) scores of frame ``k`` behind the liquid decision (of shell-averaged
        descriptors when the model averages)."""
        return self.file["scores"][self._index(k)]

    def atom_scores(self, k: int) -> np.ndarray:
        """(N,) scores of each atom's own descriptor in frame ``k`` (the decision scores
        for logs of models that do not average descriptors)."""
        name = "atom_scores" if "atom_scores" in self.file else "scores"
        return self.file[name][self._index(k)]

    def positions(self, k: int, denoised: bool = False) -> np.ndarray:
        """(N, 3) Å positions of frame ``k`` as given (or after denoising)."""
        if not self.has_positions:
            raise LogError(f"{str(self.path)!r} was written without positions (monitor "
                           "option positions=False): fronts and export need them")
        return self.file["denoised" if denoised else "positions"][self._index(k)].astype(
            np.float64)

    def _index(self, k: int) -> int:
        k = int(k)
        if k < 0:
            k += self.n_frames
        if not 0 <= k < self.n_frames:
            raise IndexError(f"frame {k} out of range: the log has {self.n_frames} frames")
        return k

    def times_or_steps(self) -> tuple[np.ndarray, str]:
        """Time axis in ps; the MD step if the producer recorded steps but no times; the
        frame's index in the log ("frame") if it recorded neither (never an index
        presented as a step)."""
        t = self.times
        if len(t) and np.all(np.isfinite(t)):
            return t, "time (ps)"
        steps = self.steps
        if len(steps) and np.all(steps != UNKNOWN_STEP):
            return steps.astype(np.float64), "MD step"
        return np.arange(len(steps), dtype=np.float64), "frame"

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
