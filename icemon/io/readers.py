"""Read trajectories into :class:`~icemon.geometry.frame.Frame` objects (MDAnalysis or ASE)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from icemon.errors import IcemonError
from icemon.geometry.frame import Frame, FrameError
from icemon.io.log.schema import UNKNOWN_STEP

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
                start: int = 0, stop: int | None = None, every: int = 1,
                water_only: bool = True) -> Iterator[Frame]:
    """Yield oxygen frames of ``traj``.

    With a topology (``top``) or a format ASE does not read, MDAnalysis is used and
    ``select`` is an MDAnalysis selection (default ``"name OW"``; files without OW atoms,
    such as LAMMPS dumps, need an explicit selection). Otherwise ASE reads the file and
    ``select`` is an element (default ``"O"``). Positions are in Å, time in ps. With
    ``water_only``, selected oxygens without two hydrogens within a bond length are left
    out where the file holds hydrogens (a counted warning).
    """
    path = Path(traj)
    if not path.exists():
        raise TrajectoryError(f"trajectory {str(path)!r} does not exist")
    if uses_ase(path, top):
        yield from _read_ase(path, select or "O", start, stop, every, water_only)
    else:
        yield from _read_mda(path, top, select, start, stop, every, water_only)


def _read_ase(path: Path, select: str, start: int, stop: int | None,
              every: int, water_only: bool = True) -> Iterator[Frame]:
    from ase.io import iread

    index = f"{start}:{'' if stop is None else stop}:{every}"
    try:
        for atoms in iread(str(path), index=index):
            yield ase_frame(atoms, select, water_only)
    except (FrameError, TrajectoryError):
        raise
    except Exception as exc:  # ASE raises many kinds of errors for unreadable files
        raise TrajectoryError(f"cannot read {str(path)!r} with ASE: {exc}") from exc


def ase_frame(atoms, select: str, water_only: bool = True) -> Frame:
    """The oxygen :class:`Frame` of one ASE-read structure, with the step and time (ps) its
    ``info`` records (unknown, -1 and NaN, otherwise: never the frame index)."""
    return Frame.from_ase(atoms, select, step=int(atoms.info.get("step", UNKNOWN_STEP)),
                          time=float(atoms.info.get("time", np.nan)), water_only=water_only)


def uses_ase(traj: str | Path, top: str | Path | None = None) -> bool:
    """Whether ``traj`` is read with ASE (no topology and an ASE suffix) rather than
    MDAnalysis (a topology, or any other format: xtc, trr, dcd, LAMMPS dumps, ...)."""
    return top is None and Path(traj).suffix.lower() in ASE_SUFFIXES


LAMMPS_DATA_SUFFIXES = {".data", ".lmp"}
ATOM_STYLES = {"atomic": "id type x y z", "charge": "id type charge x y z",
               "bond": "id resid type x y z", "angle": "id resid type x y z",
               "molecular": "id resid type x y z", "full": "id resid type charge x y z"}
"""MDAnalysis' column layout of the LAMMPS data file atom styles water models use."""


def lammps_atom_style(data: str | Path) -> str | None:
    """The MDAnalysis ``atom_style`` of a LAMMPS data file: from the ``Atoms # style``
    comment LAMMPS and ASE write, else from the column count of the first atom line (5 or
    8: ``atomic``); None: MDAnalysis' default (``full``)."""
    lines = Path(data).read_text(errors="replace").splitlines()
    for k, line in enumerate(lines):
        words = line.split("#")[0].split()
        if words[:1] != ["Atoms"]:
            continue
        style = line.partition("#")[2].strip()
        if style:
            return ATOM_STYLES.get(style)
        first = next((ln.split() for ln in lines[k + 1:] if ln.strip()), [])
        return ATOM_STYLES["atomic"] if len(first) in (5, 8) else None
    return None


def mda_universe(top: str | Path, *trajectory: str | Path, **kw):
    """An MDAnalysis Universe of topology ``top`` (and ``trajectory``), a LAMMPS data file
    read with its own atom style (MDAnalysis assumes ``full``, and would take an
    ``atomic`` file's x coordinates for atom types)."""
    import MDAnalysis as mda

    if Path(top).suffix.lower() in LAMMPS_DATA_SUFFIXES and "atom_style" not in kw:
        style = lammps_atom_style(top)
        if style is not None:
            kw["atom_style"] = style
    return mda.Universe(str(top), *map(str, trajectory), **kw)


def mda_oxygens(traj: str | Path, top: str | Path | None = None, select: str | None = None):
    """The oxygen ``AtomGroup`` of an MDAnalysis Universe opened on ``traj``.

    ``select`` is an MDAnalysis selection (default ``"name OW"``, refused with a message
    when no atom is named OW: a guess could classify hydrogens). LAMMPS dumps are read
    with ``format="LAMMPSDUMP"`` (their positions are Å). Raises :class:`TrajectoryError`
    for a file that cannot be opened or a bad selection, :class:`FrameError` for a
    selection without atoms.
    """
    import warnings

    import MDAnalysis as mda

    path = Path(traj)
    if not path.exists():
        raise TrajectoryError(f"trajectory {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kw = {"format": "LAMMPSDUMP"} if path.suffix.lower() in LAMMPS_DUMP_SUFFIXES else {}
            if top:
                u = mda_universe(top, path, **kw)
            else:
                u = mda.Universe(str(path), topology_format=kw.get("format"), **kw)
    except Exception as exc:
        raise TrajectoryError(f"cannot open {str(path)!r}"
                              f"{' with topology ' + repr(str(top)) if top else ''}: {exc}") from exc
    return mda_select(u, select, path)


def mda_select(universe, select: str | None, source: str | Path):
    """The atoms of ``universe`` that MDAnalysis selection ``select`` picks (default
    ``"name OW"``, refused with the file's atom names or types when no atom is named OW:
    icemon does not guess). ``source`` names the file in the messages. Raises
    :class:`TrajectoryError` for a bad selection, :class:`FrameError` for one without
    atoms."""
    u = universe
    if select is None:
        names = set(map(str, u.atoms.names)) if hasattr(u.atoms, "names") else set()
        if "OW" not in names:
            what = (f"atom names {', '.join(sorted(names)[:10])}" if names else
                    f"atom types {', '.join(sorted(set(map(str, u.atoms.types)))[:10])}"
                    if hasattr(u.atoms, "types") else "no atom names")
            raise TrajectoryError(
                f"{str(source)!r} has no atoms named OW ({what}); say which atoms are the "
                "oxygens with an MDAnalysis selection (--select, e.g. \"type 1\" or "
                "\"name O\"): icemon does not guess, a wrong guess would classify hydrogens")
        select = "name OW"
    try:
        oxygens = u.select_atoms(select)
    except Exception as exc:
        raise TrajectoryError(f"bad selection {select!r}: {exc}") from exc
    if len(oxygens) == 0:
        raise FrameError(f"the selection {select!r} matches no atoms in {str(source)!r}")
    return oxygens


def mda_water_oxygens(atomgroup):
    """The atoms of ``atomgroup`` that are water oxygens in the current frame (two
    hydrogens of the universe within a bond length); the group itself when the universe
    names no hydrogen or has no box."""
    from icemon.geometry.frame import is_hydrogen_name, water_subset

    everything = atomgroup.universe.atoms
    try:
        elements = everything.elements
    except AttributeError:  # MDAnalysis' NoDataError: a topology without elements
        elements = None
    if elements is not None and any(str(e).strip() for e in elements):
        hydrogen = np.array([str(e).strip() == "H" for e in elements])
    else:
        try:
            hydrogen = np.array([is_hydrogen_name(n) for n in everything.names])
        except AttributeError:  # no names either: nothing tells a hydrogen
            hydrogen = np.zeros(len(everything), bool)
    ts = atomgroup.universe.trajectory.ts
    if not hydrogen.any() or ts.dimensions is None:
        return atomgroup
    keep = water_subset(np.arange(len(atomgroup)), atomgroup.positions,
                        everything[hydrogen].positions, ts.triclinic_dimensions)
    return atomgroup[keep]


MASS_TOPOLOGIES = {".tpr", ".data", ".psf", ".prmtop", ".parm7", ".top", ".gsd", ".xml"}
"""Topology formats that record masses (MDAnalysis guesses them for the others)."""


def mda_check_oxygens(atomgroup) -> None:
    """Refuse a selection the topology says is not oxygens: an element other than O, or,
    without elements, a mass outside 14.5–18.5 g/mol (an oxygen, or a one-site water) in a
    topology that records masses (:data:`MASS_TOPOLOGIES`).
    A TIP4P M site (mass 0, no element) sits 0.15 Å from its oxygen and would pass every
    geometric check. Topologies without elements or masses are not checked."""
    try:
        elements = np.array([str(e).strip() for e in atomgroup.elements])
    except AttributeError:  # MDAnalysis' NoDataError
        elements = np.array([])
    if elements.size and all(elements):
        bad = elements != "O"
        what = "element " + ", ".join(sorted(set(elements[bad])))
    else:
        topology = str(getattr(atomgroup.universe, "filename", "") or "")
        if Path(topology).suffix.lower() not in MASS_TOPOLOGIES:
            return  # masses MDAnalysis guessed (1.0 for a LAMMPS dump's "type 1") say nothing
        try:
            masses = np.asarray(atomgroup.masses, dtype=float)
        except AttributeError:
            return
        if not masses.size or not np.any(masses > 0):
            if masses.size and np.all(masses == 0) and elements.size:  # massless, elementless
                raise FrameError(f"the selection holds {len(masses)} massless atoms without an "
                                 "element (virtual sites, e.g. TIP4P's M): select the oxygens, "
                                 "e.g. \"name OW\"")
            return
        bad = (masses < 14.5) | (masses > 18.5)
        what = "mass " + ", ".join(f"{m:g}" for m in sorted(set(masses[bad].round(3))))
    if bad.any():
        names = sorted(set(map(str, atomgroup[bad].names))) if hasattr(atomgroup, "names") \
            else []
        raise FrameError(f"{int(bad.sum())} of the {len(atomgroup)} selected atoms are not "
                         f"oxygens ({what}{'; names ' + ', '.join(names[:5]) if names else ''}): "
                         "select the water oxygens, e.g. \"name OW\"")


def mda_atom_ids(atomgroup) -> np.ndarray:
    """(N,) int64 ids of an ``AtomGroup`` (its ``ids``, else its indices)."""
    ids = atomgroup.ids if hasattr(atomgroup, "ids") else atomgroup.indices
    return np.asarray(ids, dtype=np.int64)


def mda_has_times(trajectory) -> bool:
    """Whether the file records times: a frame time or a time step in the reader's data
    (xtc, trr, dcd, netcdf...). Not for PDB, GRO and other formats without one, where
    MDAnalysis invents 1 ps per frame, nor for LAMMPS dumps (steps but no times, which
    MDAnalysis turns into 1 ps per step): their frames get time NaN."""
    from MDAnalysis.coordinates.LAMMPS import DumpReader

    if isinstance(trajectory, DumpReader):
        return False
    data = getattr(trajectory.ts, "data", {})
    return "time" in data or "dt" in data


def mda_frame(atomgroup, ts, atom_ids: np.ndarray, has_time: bool = True) -> Frame:
    """The :class:`Frame` of ``atomgroup`` at timestep ``ts``: positions in Å, the cell
    from ``ts.dimensions``, the MD step (``ts.data["step"]``; unknown, -1, when the file
    has none: a frame index is no MD step) and the time in ps (NaN unless ``has_time``)."""
    return Frame(atomgroup.positions.astype(np.float64), _cell_from_dimensions(ts.dimensions),
                 atom_ids, step=int(ts.data.get("step", UNKNOWN_STEP)),
                 time=float(ts.time) if has_time else float("nan"))


def mda_water(oxygens, water_only: bool = True):
    """A selection of oxygens checked (:func:`mda_check_oxygens`) and, with
    ``water_only``, kept to water's: (atom group, their ids, whether the file records
    times)."""
    mda_check_oxygens(oxygens)
    if water_only:
        oxygens = mda_water_oxygens(oxygens)
    return oxygens, mda_atom_ids(oxygens), mda_has_times(oxygens.universe.trajectory)


def _read_mda(path: Path, top: str | Path | None, select: str | None, start: int,
              stop: int | None, every: int, water_only: bool = True) -> Iterator[Frame]:
    oxygens, ids, has_time = mda_water(mda_oxygens(path, top, select), water_only)
    trajectory = oxygens.universe.trajectory
    try:
        for ts in trajectory[start:stop:every]:
            yield mda_frame(oxygens, ts, ids, has_time)
    except (FrameError, TrajectoryError):
        raise
    except Exception as exc:
        raise TrajectoryError(f"cannot read frames of {str(path)!r}: {exc}") from exc
