"""The phase vocabulary of icemon, defined once.

Codes are stable: they are written into HDF5 logs (``labels`` int8) and model files.
"""

from __future__ import annotations

from icemon.errors import PhaseError

PHASES: tuple[str, ...] = ("Ih", "Ic", "II", "III", "VI", "VII", "sI", "liquid")
"""Phase names; the index of a name is its integer code."""

ICE_PHASES: tuple[str, ...] = PHASES[:7]
"""The seven crystalline references the denoiser and classifier are built from."""

LIQUID: int = PHASES.index("liquid")
"""Code of the liquid (= not any reference ice) class."""

N_PHASES: int = len(PHASES)


def phase_code(name: str) -> int:
    """Integer code of a phase name (case-insensitive, 'ice ' prefix allowed)."""
    key = name.strip().lower().removeprefix("ice").strip().lstrip("-_ ")
    for code, phase in enumerate(PHASES):
        if phase.lower() == key:
            return code
    raise PhaseError(f"unknown phase {name!r}; known phases: {', '.join(PHASES)}")


PHASE_COLORS: dict[str, tuple[float, float, float]] = {
    "Ih": (0.902, 0.624, 0.000),      # orange         (OVITO: hexagonal diamond, orange)
    "Ic": (0.337, 0.706, 0.914),      # sky blue       (OVITO: cubic diamond, light blue)
    "II": (0.000, 0.620, 0.451),      # bluish green
    "III": (0.800, 0.475, 0.655),     # reddish purple
    "VI": (0.000, 0.447, 0.698),      # blue
    "VII": (0.835, 0.369, 0.000),     # vermillion
    "sI": (0.941, 0.894, 0.259),      # yellow
    "liquid": (0.760, 0.800, 0.860),  # light grey-blue: the background the ices stand out on
}
"""RGB (0-1) display colour of each phase, used by the OVITO modifier's ``Structure Type``
and the ``color`` column of icemon's extxyz files.

The seven ices take the Okabe-Ito palette (Wong, Nature Methods 8, 441 (2011)), whose
colours stay distinct under the common colour-vision deficiencies. Ih and Ic follow OVITO's
diamond identification — an ice Ih oxygen lattice is hexagonal diamond (OVITO: orange),
Ic cubic diamond (OVITO: blue) — so a picture reads the same with either analysis
(OVITO's Chill+ modifier colours them the other way round: hexagonal ice cyan, cubic ice
orange). Liquid is a pale grey-blue that recedes behind the crystals."""
