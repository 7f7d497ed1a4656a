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
