"""The ``icemon/1`` HDF5 log, written by ``icemon classify`` and the live monitors.

Layout (first axis of every per-frame dataset = monitored frame, chunked, resizable)::

    /                      attrs: schema="icemon/1", phases (names, index = code),
                                  model (JSON {"name", "sha256"}), threshold, source,
                                  icemon_version
    /atom_ids   int64 (N)          the atom behind each column
    /step       int64 (n)          MD step (-1 if unknown)
    /time       float64 (n)        ps (NaN if unknown)
    /cell       float32 (n, 3, 3)  Å, lattice vectors as rows
    /fractions  float32 (n, 8)     fraction of each phase
    /labels     int8 (n, N)        phase code per atom
    /scores     float32 (n, N)     distance to the nearest reference environment
    /positions  float32 (n, N, 3)  Å, as given (optional, compressed)
    /denoised   float32 (n, N, 3)  Å, after denoising (optional, compressed)

Every append is flushed, and the file is written in HDF5 SWMR mode, so it can be read
while it grows and a crash loses at most the frame in progress.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .phases import N_PHASES, PHASES

SCHEMA = "icemon/1"
REQUIRED = ("atom_ids", "step", "time", "cell", "fractions", "labels", "scores")


class LogError(ValueError):
    """A log that is not ``icemon/1``, or does not match the run that wants to extend it."""


def _version() -> str:
    from . import __version__

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
    phases = [p.decode() if isinstance(p, bytes) else str(p) for p in f.attrs.get("phases", [])]
    if tuple(phases) != PHASES:
        raise LogError(f"{str(path)!r} uses phases {phases}, this icemon knows {list(PHASES)}")


class LogWriter:
    """Appends classified frames to an ``icemon/1`` file.

    A new file is created; an existing one is appended to after checking that its schema,
    model (sha256) and atom ids match — it is never truncated or overwritten.

    Args:
        path: the ``.h5`` file.
        atom_ids: (N,) ids of the monitored atoms (fixed for the whole log).
        model_name, model_sha256, threshold: the model that labels the frames.
        source: free text naming the producer (e.g. the trajectory or the LAMMPS run).
        positions: also store the given and the denoised positions.
    """

    def __init__(self, path: str | Path, atom_ids: np.ndarray, *, model_name: str,
                 model_sha256: str, threshold: float, source: str = "",
                 positions: bool = True) -> None:
        self.path = Path(path)
        self.atom_ids = np.asarray(atom_ids, dtype=np.int64)
        self.n_atoms = len(self.atom_ids)
        self.model = {"name": model_name, "sha256": model_sha256}
        if self.path.exists():
            self._open_existing(threshold)
        else:
            self._create(threshold, source, positions)
        self.file.swmr_mode = True

    def _create(self, threshold: float, source: str, positions: bool) -> None:
        try:
            self.file = h5py.File(self.path, "w-", libver="latest")
        except OSError as exc:
            raise LogError(f"cannot create log {str(self.path)!r}: {exc}") from exc
        f, n = self.file, self.n_atoms
        f.attrs["schema"] = SCHEMA
        f.attrs["phases"] = np.array(PHASES, dtype=h5py.string_dtype())
        f.attrs["model"] = json.dumps(self.model)
        f.attrs["threshold"] = float(threshold)
        f.attrs["source"] = source
        f.attrs["icemon_version"] = _version()
        f.create_dataset("atom_ids", data=self.atom_ids)

        def series(name: str, shape: tuple[int, ...], dtype: Any, compress: bool = False):
            f.create_dataset(name, shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                             chunks=(1, *shape), **({"compression": "gzip",
                                                     "compression_opts": 1} if compress else {}))

        series("step", (), np.int64)
        series("time", (), np.float64)
        series("cell", (3, 3), np.float32)
        series("fractions", (N_PHASES,), np.float32)
        series("labels", (n,), np.int8)
        series("scores", (n,), np.float32)
        if positions:
            series("positions", (n, 3), np.float32, compress=True)
            series("denoised", (n, 3), np.float32, compress=True)
        f.flush()

    def _open_existing(self, threshold: float) -> None:
        try:
            self.file = h5py.File(self.path, "r+", libver="latest")
        except OSError as exc:
            raise LogError(f"cannot open existing log {str(self.path)!r} for appending "
                           f"(not HDF5, or still open elsewhere?): {exc}") from exc
        try:
            check_schema(self.file, self.path)
            model = json.loads(self.file.attrs["model"])
            if model.get("sha256") != self.model["sha256"]:
                raise LogError(f"{str(self.path)!r} was written with model {model.get('name')!r} "
                               f"(sha256 {model.get('sha256', '')[:12]}…), not with "
                               f"{self.model['name']!r} (sha256 {self.model['sha256'][:12]}…)")
            ids = self.file["atom_ids"][()]
            if not np.array_equal(ids, self.atom_ids):
                raise LogError(f"{str(self.path)!r} monitors {len(ids)} other atoms than this "
                               f"run ({self.n_atoms} atoms): atom ids differ")
        except Exception:
            self.file.close()
            raise

    @property
    def n_frames(self) -> int:
        return int(self.file["step"].shape[0])

    @property
    def has_positions(self) -> bool:
        return "positions" in self.file

    def append(self, result) -> None:
        """Append one :class:`~icemon.pipeline.Result` and flush it to disk."""
        fr = result.frame
        if fr.n_atoms != self.n_atoms or not np.array_equal(fr.atom_ids, self.atom_ids):
            raise LogError(f"frame atoms (N={fr.n_atoms}) do not match the log's atom ids "
                           f"(N={self.n_atoms})")
        f = self.file
        k = self.n_frames
        values = {
            "step": fr.step, "time": fr.time, "cell": fr.cell, "fractions": result.fractions,
            "labels": result.labels, "scores": result.scores,
        }
        if self.has_positions:
            values["positions"] = fr.positions
            values["denoised"] = result.denoised
        # write the payload first and the 'step' index last, so that a reader that sees
        # a new step also sees the rest of its frame
        order = [n for n in values if n != "step"] + ["step"]
        for name in order:
            ds = f[name]
            ds.resize(k + 1, axis=0)
            ds[k] = values[name]
        for name in order:
            f[name].flush()
        f.flush()

    def close(self) -> None:
        if getattr(self, "file", None) is not None and self.file.id.valid:
            self.file.close()

    def __enter__(self) -> "LogWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
