"""Ideal oxygen sublattices of the seven reference ices, built with GenIce2.

Only oxygen sites are used (the hydrogen disorder GenIce randomises does not enter),
so the structures are deterministic; GenIce's own default density of each lattice is
used and its version is recorded in every model file.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from importlib.metadata import version

import numpy as np
from ase import Atoms

from icemon.errors import PhaseError
from icemon.phases import ICE_PHASES

GENICE_LATTICES: dict[str, str] = {
    "Ih": "1h", "Ic": "1c", "II": "2", "III": "3", "VI": "6", "VII": "7", "sI": "CS1",
    "sII": "CS2", "sH": "HS3", "V": "5",
}
"""GenIce2 lattice plugin behind each named phase (sI = CS1, sII = CS2, sH = HS3: empty
clathrates); any other GenIce2 lattice name is accepted as is (e.g. "12", "XVI")."""


def genice_version() -> str:
    return version("genice2")


@functools.cache
def _unit_cell(phase: str) -> tuple[np.ndarray, np.ndarray, float]:
    """(fractional positions, cell rows in Å, density g/cm^3) of one GenIce unit cell."""
    from genice2.genice import GenIce
    from genice2.plugin import safe_import

    name = GENICE_LATTICES.get(phase, phase)
    try:
        lattice = safe_import("lattice", name).Lattice()
    except Exception as exc:
        raise PhaseError(f"no reference for phase {phase!r}: neither a named phase "
                         f"({', '.join(GENICE_LATTICES)}) nor a GenIce2 lattice ({exc})") from exc
    formatter = safe_import("format", "raw").Format(stage=(1,))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # GenIce logs every stage at INFO
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ice = GenIce(lattice, density=lattice.density, reshape=np.eye(3, dtype=int))
            raw = ice.generate_ice(formatter)
    finally:
        root.setLevel(level)
    frac = np.asarray(raw["reppositions"], dtype=np.float64) % 1.0
    cell = np.asarray(raw["repcell"], dtype=np.float64) * 10.0  # nm -> Å
    return frac, cell, float(lattice.density)


def reference_density(phase: str) -> float:
    """Density (g/cm^3) of the GenIce reference of ``phase``."""
    return _unit_cell(phase)[2]


def unit_cell(phase: str) -> Atoms:
    """The periodic unit cell of a reference ice (oxygens only, Å)."""
    frac, cell, _ = _unit_cell(phase)
    atoms = Atoms("O" * len(frac), scaled_positions=frac, cell=cell, pbc=True)
    atoms.info["phase"] = phase
    return atoms


def replication(cell: np.ndarray, min_height: float) -> tuple[int, int, int]:
    """Repetitions of ``cell`` (rows, Å) so that every perpendicular height ≥ min_height."""
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
               for k in range(3)]
    return tuple(int(np.ceil(min_height / h - 1e-9)) for h in heights)  # type: ignore[return-value]


def reference(phase: str, min_height: float = 12.0) -> Atoms:
    """A periodic supercell of a reference ice whose heights are all ≥ ``min_height`` Å."""
    unit = unit_cell(phase)
    atoms = unit.repeat(replication(np.asarray(unit.cell[:]), min_height))
    atoms.info["phase"] = phase
    return atoms


def references(min_height: float = 12.0,
               phases: tuple[str, ...] = ICE_PHASES) -> dict[str, Atoms]:
    """Reference supercells of ``phases`` (default: the seven), in phase-code order."""
    return {p: reference(p, min_height) for p in phases}
