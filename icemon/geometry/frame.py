"""A validated snapshot of oxygen positions in a periodic cell.

Every entry point (CLI, LAMMPS/ASE/i-PI hooks) turns its data into a :class:`Frame`
first, so bad input is caught once, early, with a message that names the problem.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from icemon.errors import IcemonError


def fractional(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """(N, 3) fractional coordinates in [0, 1) of ``positions`` (Å) in ``cell`` (rows:
    lattice vectors, Å): one product with the inverse cell (``np.linalg.solve`` with N
    right-hand sides took 0.76 ms against 0.03 ms on 8,064 atoms; the MPI path calls
    this several times per frame)."""
    return unit_interval(np.asarray(positions, dtype=np.float64) @ np.linalg.inv(cell))


def unit_interval(frac: np.ndarray) -> np.ndarray:
    """Fractional coordinates taken into [0, 1), in place: ``x - floor(x)`` of a tiny
    negative x rounds to exactly 1.0 (an atom on a cell face, e.g. after a rotation),
    which a periodic KD-tree of box 1 refuses; such a coordinate becomes 0."""
    frac -= np.floor(frac)
    frac[frac >= 1.0] = 0.0
    return frac


def wrap(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Positions (Å) wrapped into the cell: fractional coordinates in [0, 1)."""
    return fractional(positions, cell) @ cell


def minimum_image(displacements: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Displacements (Å, rows of any leading shape) replaced by their shortest periodic
    image in ``cell`` (rows, Å), taken in fractional coordinates (exact for displacements
    under half a cell height, which is all icemon needs)."""
    frac = np.asarray(displacements) @ np.linalg.inv(cell)
    return (frac - np.round(frac)) @ cell


MAX_DENSITY = 0.15
"""Oxygens per Å^3 above which a frame is refused: 2.5x ice VII (0.06), the densest water
phase; more means wrong length units (nm or Bohr read as Å), and the neighbour lists of
such a frame would exhaust memory."""


class FrameError(IcemonError, ValueError):
    """Raised for a snapshot icemon cannot classify (no atoms, NaN, bad cell...)."""


OH_BOND = 1.25
"""Å. An O–H pair closer than this is a covalent bond (0.96–1.0 Å in water; hydrogen
bonds are ≥ 1.6 Å)."""


class NotWaterWarning(UserWarning):
    """Selected oxygens that are not water's were left out."""


def water_oxygens(symbols: list[str] | np.ndarray, positions: np.ndarray, cell: np.ndarray,
                  oxygens: np.ndarray) -> np.ndarray:
    """The ``oxygens`` (indices) with exactly two hydrogens within :data:`OH_BOND` Å, when
    the structure holds hydrogens at all (an oxygen-only structure is taken as it is).
    Others (a substrate's or a guest's oxygens, hydroxide, hydronium) are left out with a
    :class:`NotWaterWarning` that counts them: averaged into their neighbours' shells
    they would change the water's labels too."""
    symbols = np.asarray(symbols)
    hydrogens = np.flatnonzero(symbols == "H")
    oxygens = np.asarray(oxygens, dtype=np.int64)
    if not len(hydrogens) or not len(oxygens):
        return oxygens
    from icemon.geometry.neighbors import neighbor_pairs

    sub = np.concatenate([oxygens, hydrogens])
    pos = np.asarray(positions, dtype=np.float64)[sub]
    cell = np.asarray(cell, dtype=np.float64)
    if not (np.isfinite(pos).all() and np.isfinite(cell).all()) or \
            abs(np.linalg.det(cell)) < 1e-9:
        return oxygens  # the frame's own checks name what is wrong
    i, j, _ = neighbor_pairs(pos, cell, OH_BOND)
    n_o = len(oxygens)
    bonds = np.bincount(i[(i < n_o) & (j >= n_o)], minlength=n_o)
    water = bonds == 2
    if not water.any():
        raise FrameError(f"none of the {n_o} selected oxygens has two hydrogens within "
                         f"{OH_BOND} Å, so none is a water oxygen; pass water_only=False "
                         "to classify them anyway")
    if not water.all():
        warnings.warn(f"{int((~water).sum())} of {n_o} selected oxygens do not have two "
                      f"hydrogens within {OH_BOND} Å (not water: a substrate's or guest's "
                      "oxygens, hydroxide, hydronium) and are left out; pass "
                      "water_only=False to keep them", NotWaterWarning, stacklevel=4)
    return oxygens[water]


def is_hydrogen_name(name: str) -> bool:
    """Whether an atom or type name from a topology names a hydrogen: "H", or "H" followed
    by anything but a lower-case letter ("HW1", "H2", "HW"; not "He", "Hg", "Hf")."""
    name = str(name).strip()
    return name[:1] == "H" and not name[1:2].islower()


def water_subset(oxygens: np.ndarray, oxygen_positions: np.ndarray,
                 hydrogen_positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """The rows of ``oxygens`` (indices of any kind) that are water oxygens among the given
    hydrogens (:func:`water_oxygens`, same warning and error): for engines and readers
    that name hydrogens in their own way (i-PI names, MDAnalysis elements, OVITO types)."""
    n_o = len(oxygens)
    symbols = np.array(["O"] * n_o + ["H"] * len(hydrogen_positions))
    positions = np.concatenate([np.asarray(oxygen_positions, dtype=np.float64).reshape(-1, 3),
                                np.asarray(hydrogen_positions, dtype=np.float64).reshape(-1, 3)])
    keep = water_oxygens(symbols, positions, cell, np.arange(n_o))
    return np.asarray(oxygens)[keep]


def ase_oxygens(atoms, select: npt.ArrayLike | str | None, water_only: bool = True
                ) -> np.ndarray:
    """Indices of the water oxygens of an ``ase.Atoms``: those ``select`` names
    (:func:`selection`), and with ``water_only`` only those with two hydrogens
    (:func:`water_oxygens`)."""
    symbols = atoms.get_chemical_symbols()
    idx = selection(select, symbols)
    if water_only:
        idx = water_oxygens(symbols, atoms.positions, np.asarray(atoms.cell[:]), idx)
    return idx


def selection(select: npt.ArrayLike | str | None, symbols: list[str] | np.ndarray,
              ) -> np.ndarray:
    """Indices (int64, ascending for symbols and masks) of the atoms ``select`` names among
    atoms with chemical ``symbols``: an element symbol, None (all), a boolean mask of one
    entry per atom, or integer indices (in range). Raises :class:`FrameError` otherwise."""
    n = len(symbols)
    if isinstance(select, str):
        return np.flatnonzero(np.asarray(symbols) == select)
    if select is None:
        return np.arange(n)
    arr = np.asarray(select)
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise FrameError(f"a boolean mask selects atoms with one entry per atom: got "
                             f"{arr.shape[0] if arr.ndim else 'a scalar'} for {n} atoms")
        return np.flatnonzero(arr)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise FrameError(f"atom indices must be integers, got {arr.dtype}")
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise FrameError(f"atom indices out of range for {n} atoms")
    return idx


@dataclass(frozen=True)
class Frame:
    """Oxygen positions (Å) in a periodic cell.

    The arrays are the frame's own read-only copies, so the caller may reuse its buffers.

    Attributes:
        positions: (N, 3) Cartesian positions in Å (need not be wrapped).
        cell: (3, 3) cell matrix in Å, one lattice vector per row (ASE convention);
            orthorhombic or triclinic, right- or left-handed (a left-handed cell spans the
            same periodic lattice; neighbour lists and SOAP depend only on that).
        atom_ids: (N,) integer ids of the atoms behind each row (e.g. LAMMPS tags);
            ``0..N-1`` if not given.
        step: MD step of the snapshot (``-1`` if unknown).
        time: simulation time in ps (NaN if unknown).
    """

    positions: np.ndarray
    cell: np.ndarray
    atom_ids: np.ndarray = field(default=None)  # type: ignore[assignment]
    step: int = -1
    time: float = float("nan")

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 3:
            raise FrameError(f"positions must have shape (N, 3), got {pos.shape}")
        if len(pos) == 0:
            raise FrameError("the frame holds no oxygen atoms (0 positions)")
        if not np.all(np.isfinite(pos)):
            bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
            raise FrameError(
                f"{len(bad)} oxygen position(s) are NaN or infinite (first at row {bad[0]})"
            )
        cell = np.asarray(self.cell, dtype=np.float64)
        if cell.shape == (3,):
            cell = np.diag(cell)
        if cell.shape != (3, 3):
            raise FrameError(f"cell must be a (3, 3) matrix or 3 lengths, got shape {cell.shape}")
        if not np.all(np.isfinite(cell)):
            raise FrameError("the cell holds NaN or infinite entries")
        lengths = np.linalg.norm(cell, axis=1)
        if np.any(lengths <= 1e-6):
            raise FrameError(f"the cell has a zero-length lattice vector (lengths {lengths} Å)")
        volume = abs(np.linalg.det(cell))
        if volume <= 1e-6 * float(np.prod(lengths)):
            raise FrameError(
                f"the cell is singular or degenerate (volume {volume:.3g} Å^3 for lattice "
                f"vector lengths {np.round(lengths, 3).tolist()} Å)"
            )
        density = len(pos) / volume
        if density > MAX_DENSITY:
            raise FrameError(f"{density:.3g} oxygens per Å^3 is far denser than any water "
                             f"phase (ice VII: 0.06): positions or cell in the wrong length "
                             f"units?")
        if self.atom_ids is None:
            ids = np.arange(len(pos), dtype=np.int64)
        else:
            ids = np.asarray(self.atom_ids, dtype=np.int64).reshape(-1)
            if len(ids) != len(pos):
                raise FrameError(f"{len(ids)} atom ids for {len(pos)} positions")
        # own, read-only copies: a hook's engine may reuse its buffers while this frame
        # waits in the monitor's queue
        for name, value in (("positions", pos), ("cell", cell), ("atom_ids", ids)):
            value = np.array(value, copy=True)
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    @property
    def n_atoms(self) -> int:
        return len(self.positions)

    @property
    def volume(self) -> float:
        """Cell volume in Å^3."""
        return float(abs(np.linalg.det(self.cell)))

    def wrapped(self) -> np.ndarray:
        """Positions wrapped into the cell [0, 1) in fractional coordinates, in Å."""
        return wrap(self.positions, self.cell)

    def with_positions(self, positions: npt.ArrayLike) -> Frame:
        """The same frame (cell, ids, step, time) with other positions."""
        return Frame(np.asarray(positions), self.cell, self.atom_ids, self.step, self.time)

    @classmethod
    def from_ase(cls, atoms, select: npt.ArrayLike | str | None = "O", step: int = -1,
                 time: float = float("nan"), water_only: bool = True) -> Frame:
        """Frame from an ``ase.Atoms``; ``select``: an element symbol, a boolean mask or
        indices (:func:`selection`). ``water_only``: where the atoms hold hydrogens, keep
        the selected oxygens that have two of them within :data:`OH_BOND` (water), with a
        warning that counts the others (:func:`water_oxygens`)."""
        if not np.all(atoms.pbc):
            raise FrameError(f"icemon needs a fully periodic cell (atoms.pbc is "
                             f"{np.asarray(atoms.pbc).tolist()}): a slab or cluster in vacuum "
                             "would be read with periodic images that do not exist")
        idx = ase_oxygens(atoms, select, water_only)
        if len(idx) == 0:
            raise FrameError(f"no atoms match the oxygen selection {select!r}")
        return cls(atoms.positions[idx], np.asarray(atoms.cell[:]), idx, step, time)
