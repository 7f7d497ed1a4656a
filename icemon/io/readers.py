"""Read trajectories into :class:`~icemon.core.frame.Frame` objects (MDAnalysis or ASE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from icemon.core.frame import Frame, FrameError
from icemon.errors import IcemonError

ASE_SUFFIXES = {".extxyz", ".xyz", ".traj", ".cif", ".vasp", ".pdb"}
LAMMPS_DUMP_SUFFIXES = {".lammpstrj", ".dump", ".lammpsdump"}


class TrajectoryError(IcemonError, OSError):
    """A trajectory that cannot be opened or read."""


def _cell_from_dimensions(dims) -> np.ndarray:
    from ase.geometry import cellpar_to_cell

    if dims is None or not np.all(np.isfinite(dims)) or np.any(np.asarray(dims[:3]) <= 0):
        raise FrameError(f"the trajectory frame has no usable periodic box (dimensions {dims})")
    return cellpar_to_cell(np.asarray(dims, dtype=np.float64))


def read_frames(traj: str | Path, top: str | Path | None = None, select: str | None = None,
                start: int = 0, stop: int | None = None, every: int = 1) -> Iterator[Frame]:
    """Yield oxygen frames of ``traj``.

    With a topology (``top``) or a format ASE does not read, MDAnalysis is used and
    ``select`` is an MDAnalysis selection (default ``"name OW"``; files without OW atoms,
    such as LAMMPS dumps, need an explicit selection). Otherwise ASE reads the file and
    ``select`` is an element (default ``"O"``). Positions are in Å, time in ps.
    """
    path = Path(traj)
    if not path.exists():
        raise TrajectoryError(f"trajectory {str(path)!r} does not exist")
    use_ase = top is None and path.suffix.lower() in ASE_SUFFIXES
    if use_ase:
        yield from _read_ase(path, select or "O", start, stop, every)
    else:
        yield from _read_mda(path, top, select, start, stop, every)


def _read_ase(path: Path, select: str, start: int, stop: int | None,
              every: int) -> Iterator[Frame]:
    from ase.io import iread

    index = f"{start}:{'' if stop is None else stop}:{every}"
    try:
        for k, atoms in enumerate(iread(str(path), index=index)):
            step = int(atoms.info.get("step", start + k * every))
            time = float(atoms.info.get("time", np.nan))
            yield Frame.from_ase(atoms, select, step=step, time=time)
    except (FrameError, TrajectoryError):
        raise
    except Exception as exc:  # ASE raises many kinds of errors for unreadable files
        raise TrajectoryError(f"cannot read {str(path)!r} with ASE: {exc}") from exc


def _read_mda(path: Path, top: str | Path | None, select: str | None, start: int,
              stop: int | None, every: int) -> Iterator[Frame]:
    import warnings

    import MDAnalysis as mda

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"format": "LAMMPSDUMP"} if path.suffix.lower() in LAMMPS_DUMP_SUFFIXES else {}
            if top:
                u = mda.Universe(str(top), str(path), **kw)
            else:
                u = mda.Universe(str(path), topology_format=kw.get("format"), **kw)
    except Exception as exc:
        raise TrajectoryError(f"cannot open {str(path)!r}"
                              f"{' with topology ' + repr(str(top)) if top else ''}: {exc}") from exc
    if select is None:
        names = set(u.atoms.names) if hasattr(u.atoms, "names") else set()
        if "OW" not in names:
            what = (f"atom names {', '.join(sorted(names)[:10])}" if names else
                    f"atom types {', '.join(sorted(set(map(str, u.atoms.types)))[:10])}"
                    if hasattr(u.atoms, "types") else "no atom names")
            raise TrajectoryError(
                f"{str(path)!r} has no atoms named OW ({what}); say which atoms are the "
                "oxygens with an MDAnalysis selection (--select, e.g. \"type 1\" or "
                "\"name O\"): icemon does not guess, a wrong guess would classify hydrogens")
        select = "name OW"
    try:
        oxygens = u.select_atoms(select)
    except Exception as exc:
        raise TrajectoryError(f"bad selection {select!r}: {exc}") from exc
    if len(oxygens) == 0:
        raise FrameError(f"the selection {select!r} matches no atoms in {str(path)!r}")
    ids = oxygens.ids if hasattr(oxygens, "ids") else oxygens.indices
    # a LAMMPS dump has steps but no times (MDAnalysis would invent 1 ps per step)
    dump = path.suffix.lower() in LAMMPS_DUMP_SUFFIXES
    try:
        for ts in u.trajectory[start:stop:every]:
            yield Frame(oxygens.positions.astype(np.float64), _cell_from_dimensions(ts.dimensions),
                        np.asarray(ids, dtype=np.int64), step=int(ts.data.get("step", ts.frame)),
                        time=float("nan") if dump else float(ts.time))
    except (FrameError, TrajectoryError):
        raise
    except Exception as exc:
        raise TrajectoryError(f"cannot read frames of {str(path)!r}: {exc}") from exc
