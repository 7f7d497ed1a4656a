"""Following a trajectory file while an engine appends to it (``icemon classify --follow``).

Any engine writes a trajectory (GROMACS xtc, LAMMPS dump, dcd, extxyz); classifying its
frames as they are appended works with stock engines and needs nothing from them. A frame
is taken once the file holds the frame after it, so a frame still being written is never
read; the last frame is taken once the file has not changed for ``idle`` seconds, which is
also when following ends (the engine has finished, or paused longer than the user allows).
A last frame that is incomplete then (a writer killed mid-frame: a text file that does not
end with a line, a binary frame that does not read) is reported and skipped. A file that
gets shorter while followed (truncated, rewritten by a new run) stops the follower with an
error: its frames are no longer those already classified.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from icemon.geometry.frame import Frame, FrameError
from icemon.io.readers import (
    TrajectoryError,
    ase_frame,
    mda_frame,
    mda_oxygens,
    mda_water,
    uses_ase,
)


class FollowWarning(UserWarning):
    """Something the follower had to skip (an incomplete last frame)."""


def _ase_frames(path: Path, select: str, start: int, water_only: bool
                ) -> list[tuple[int, Callable[[], Frame]]]:
    """(index, frame maker) of every frame from ``start`` that ASE reads now; a frame that
    fails to read ends the list (it may be the one being written)."""
    from ase.io import iread

    out = []
    try:
        for k, atoms in enumerate(iread(str(path), index=f"{start}:"), start=start):
            out.append((k, lambda atoms=atoms: ase_frame(atoms, select, water_only)))
    except Exception:  # noqa: BLE001 - a half-written frame: not there yet
        pass
    return out


def _mda_frames(path: Path, top: str | Path | None, select: str | None, start: int,
                water_only: bool) -> list[tuple[int, Callable[[], Frame]]]:
    """(index, frame maker) of every frame from ``start`` that MDAnalysis reads now."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            oxygens = mda_oxygens(path, top, select)
    except (TrajectoryError, OSError, EOFError, ValueError):
        return []  # no complete frame yet
    oxygens, ids, has_time = mda_water(oxygens, water_only)
    trajectory = oxygens.universe.trajectory
    return [(k, lambda k=k: mda_frame(oxygens, trajectory[k], ids, has_time))
            for k in range(start, len(trajectory))]


def _ends_with_newline(path: Path) -> bool:
    """Whether a text trajectory's last byte ends a line (its last frame is whole)."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def follow_frames(traj: str | Path, top: str | Path | None = None, select: str | None = None,
                  every: int = 1, idle: float = 60.0, poll: float = 1.0,
                  water_only: bool = True, start: int = 0,
                  stop: int | None = None) -> Iterator[Frame]:
    """Yield every ``every``-th frame of ``traj`` (from frame ``start``) as the engine
    appends it, up to frame ``stop`` (excluded; None: no end); return once the file has not
    changed for ``idle`` seconds (module doc).

    ``traj``, ``top``, ``select``, ``water_only``: as :func:`icemon.io.readers.read_frames`
    (a file that does not exist yet is waited for, ``idle`` seconds at most).
    ``poll``: seconds between looks at the file."""
    if idle <= 0 or poll <= 0:
        raise TrajectoryError(f"--idle and the poll interval must be positive, not {idle}, "
                              f"{poll}")
    path = Path(traj)
    ase = uses_ase(path, top)
    nxt = start  # the next frame index to yield or skip
    signature, changed = None, time.monotonic()
    while True:
        now = time.monotonic()
        try:
            st = path.stat()
            current = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            current = None
        if current != signature:
            if signature is not None and current is not None and current[0] < signature[0]:
                raise TrajectoryError(
                    f"{str(path)!r} got shorter while it was followed ({signature[0]} → "
                    f"{current[0]} bytes): it was truncated or rewritten, so its frames are "
                    "no longer those already classified; the log keeps every frame so far")
            signature, changed = current, now
        settled = now - changed >= idle
        if current is not None:
            frames = (_ase_frames(path, select or "O", nxt, water_only) if ase
                      else _mda_frames(path, top, select, nxt, water_only))
            # every frame but the last is complete (the next one has begun); the last
            # only once the file has settled, and (text formats) ends with its line
            ready = frames if settled else frames[:-1]
            if settled and ase and ready and not _ends_with_newline(path):
                warnings.warn(f"{path}: its last frame ends inside a line (a writer stopped "
                              "mid-frame); that frame is skipped", FollowWarning, stacklevel=2)
                ready = ready[:-1]
            for k, make in ready:
                if stop is not None and k >= stop:
                    return
                if (k - start) % every == 0:
                    try:
                        frame = make()
                    except (FrameError, TrajectoryError):
                        raise
                    except Exception as exc:  # noqa: BLE001 - an incomplete last frame
                        warnings.warn(f"{path}: frame {k} could not be read ({exc}); the "
                                      "file ended inside it", FollowWarning, stacklevel=2)
                        return
                    yield frame
                nxt = k + 1
        if settled:
            if current is None:
                raise TrajectoryError(f"{str(path)!r} did not appear within {idle:g} s")
            return
        time.sleep(poll)
