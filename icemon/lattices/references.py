"""Ideal oxygen sublattices of the seven reference ices, built with GenIce2.

Only oxygen sites are used (the hydrogen disorder GenIce randomises does not enter),
so the structures are deterministic; GenIce's own default density of each lattice is
used, or the one a phase is given as ``NAME:DENSITY`` (:func:`phase_spec`), and GenIce's
version is recorded in every model file.

GenIce's oxygen sites are not always the symmetric lattice: its Ih has seven distinct
first-shell O–O distances (2.754–2.803 Å) where P6₃/mmc has two, its III nineteen. A
denoiser cannot tell such site distortions from noise, so they set a floor of ~0.03 Å
under every denoised reference and put the same amount of label noise into training.
``symprec`` > 0 symmetrises the unit cell first (:func:`symmetrise`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
from ase import Atoms

from icemon.errors import PhaseError
from icemon.geometry.frame import minimum_image
from icemon.phases import SEVEN_ICES

GENICE_LATTICES: dict[str, str] = {
    "Ih": "1h", "Ic": "1c", "II": "2", "III": "3", "VI": "6", "VII": "7", "sI": "CS1",
    "sII": "CS2", "sH": "HS3", "V": "5",
}
"""GenIce2 lattice plugin behind each named phase (sI = CS1, sII = CS2, sH = HS3: empty
clathrates); any other GenIce2 lattice name is accepted as is (e.g. "12", "XVI")."""


def phase_spec(phase: str) -> tuple[str, float | None]:
    """(name, density g/cm³ or None) of a reference phase written ``NAME`` (GenIce's own
    density) or ``NAME:DENSITY`` (e.g. ``XII:1.29``; the whole spec is then the phase's
    name in the model's vocabulary, so that the model says which density it was given)."""
    name, sep, dens = phase.partition(":")
    if not sep:
        return phase, None
    try:
        density = float(dens)
    except ValueError:
        density = float("nan")
    if not (name and np.isfinite(density) and 0.1 <= density <= 5.0):
        raise PhaseError(f"phase {phase!r}: write NAME or NAME:DENSITY with a density in "
                         f"g/cm³ between 0.1 and 5 (e.g. XII:1.29)")
    return name, density


def lattice_name(phase: str) -> str:
    """GenIce2 lattice plugin of a phase spec (:func:`phase_spec`): the named phases'
    (:data:`GENICE_LATTICES`) or the name as given."""
    base, _ = phase_spec(phase)
    return GENICE_LATTICES.get(base, base)


def genice_version() -> str:
    return version("genice2")


SYMPRECS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2)
"""Tolerances (Å) spglib is asked at, in turn, by :func:`symmetrise`."""


@dataclass(frozen=True)
class Symmetrisation:
    """What :func:`symmetrise` did to one unit cell."""

    space_group: str
    symprec: float
    """The tolerance (Å) at which that group was found."""
    rms_shift: float
    """Root-mean-square displacement of the sites (Å)."""
    max_shift: float


def symmetrise(atoms: Atoms, symprec_max: float) -> Symmetrisation:
    """Move ``atoms`` (in place) onto the highest-symmetry space group spglib finds at
    any tolerance of :data:`SYMPRECS` up to ``symprec_max`` Å, keeping the cell's setting
    (ASE's ``refine_symmetry``). Measured on GenIce2 2.2: Ih becomes P6₃/mmc at 0.1 Å
    (sites move 0.038 Å rms), III P4₁2₁2 at 0.2 Å (0.061 Å rms), VI P4₂/nmc at 0.02 Å;
    Ic, II, VII, sI, sII, V already hold their groups at 0.01 Å and do not move."""
    import spglib
    from ase.spacegroup.symmetrize import refine_symmetry

    # spglib prints a C-level note whenever a loose tolerance needs an extra search
    os.environ.setdefault("SPGLIB_WARNING", "OFF")

    cell = (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers)
    best: tuple[int, float, str] | None = None
    for tol in (t for t in SYMPRECS if t <= symprec_max + 1e-12):
        data = spglib.get_symmetry_dataset(cell, symprec=tol)
        if data is not None and (best is None or len(data.rotations) > best[0]):
            best = (len(data.rotations), tol, data.international)
    if best is None:
        return Symmetrisation("P1", 0.0, 0.0, 0.0)
    before = atoms.positions.copy()
    refine_symmetry(atoms, symprec=best[1])
    shift = np.linalg.norm(minimum_image(atoms.positions - before, np.asarray(atoms.cell[:])),
                           axis=1)
    return Symmetrisation(best[2], best[1], float(np.sqrt((shift**2).mean())),
                          float(shift.max()))


@functools.cache
def _unit_cell(phase: str, symprec: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """(fractional positions, cell rows in Å, density g/cm^3) of one GenIce unit cell,
    symmetrised when ``symprec`` > 0 (:func:`symmetrise`)."""
    from genice2.genice import GenIce
    from genice2.plugin import safe_import

    base, given = phase_spec(phase)
    try:
        lattice = safe_import("lattice", lattice_name(phase)).Lattice()
    except Exception as exc:
        raise PhaseError(f"no reference for phase {phase!r}: neither a named phase "
                         f"({', '.join(GENICE_LATTICES)}) nor a GenIce2 lattice ({exc})") from exc
    density = given if given is not None else getattr(lattice, "density", None)
    if density is None:
        raise PhaseError(f"GenIce2 lattice {base!r} has no density of its own: give one as "
                         f"{base}:DENSITY (g/cm³), e.g. {base}:1.0")
    formatter = safe_import("format", "raw").Format(stage=(1,))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # GenIce logs every stage at INFO
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ice = GenIce(lattice, density=density, reshape=np.eye(3, dtype=int))
            raw = ice.generate_ice(formatter)
    finally:
        root.setLevel(level)
    frac = np.asarray(raw["reppositions"], dtype=np.float64) % 1.0
    cell = np.asarray(raw["repcell"], dtype=np.float64) * 10.0  # nm -> Å
    if symprec > 0:
        atoms = Atoms("O" * len(frac), scaled_positions=frac, cell=cell, pbc=True)
        symmetrise(atoms, symprec)
        frac, cell = atoms.get_scaled_positions() % 1.0, np.asarray(atoms.cell[:])
    return frac, cell, float(density)


def reference_symmetry(phase: str, symprec: float) -> Symmetrisation:
    """What :func:`symmetrise` does to the GenIce unit cell of ``phase`` (for the model
    file's record)."""
    return symmetrise(unit_cell(phase), symprec)


def reference_density(phase: str) -> float:
    """Density (g/cm^3) of the GenIce reference of ``phase``."""
    return _unit_cell(phase)[2]


def unit_cell(phase: str, symprec: float = 0.0) -> Atoms:
    """The periodic unit cell of a reference ice (oxygens only, Å); ``symprec`` > 0:
    symmetrised (:func:`symmetrise`)."""
    frac, cell, _ = _unit_cell(phase, symprec)
    atoms = Atoms("O" * len(frac), scaled_positions=frac, cell=cell, pbc=True)
    atoms.info["phase"] = phase
    return atoms


def replication(cell: np.ndarray, min_height: float) -> tuple[int, int, int]:
    """Repetitions of ``cell`` (rows, Å) so that every perpendicular height ≥ min_height."""
    volume = abs(np.linalg.det(cell))
    heights = [volume / np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]))
               for k in range(3)]
    return tuple(int(np.ceil(min_height / h - 1e-9)) for h in heights)  # type: ignore[return-value]


def reference(phase: str, min_height: float = 12.0, symprec: float = 0.0) -> Atoms:
    """A periodic supercell of a reference ice whose heights are all ≥ ``min_height`` Å
    (``symprec`` > 0: of the symmetrised unit cell)."""
    unit = unit_cell(phase, symprec)
    atoms = unit.repeat(replication(np.asarray(unit.cell[:]), min_height))
    atoms.info["phase"] = phase
    return atoms


def references(min_height: float = 12.0, phases: tuple[str, ...] = SEVEN_ICES,
               symprec: float = 0.0) -> dict[str, Atoms]:
    """Reference supercells of ``phases`` (default: the seven), in phase-code order."""
    return {p: reference(p, min_height, symprec) for p in phases}
