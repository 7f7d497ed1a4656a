"""Phase names, codes and colours.

The vocabulary of a classification belongs to its model file (:attr:`IcemonModel.phases
<icemon.model.modelfile.IcemonModel.phases>`): ice phases in code order, then ``liquid``;
logs record it (``phases`` attribute) and every reader takes names from there. No public
constant or default argument carries a phase list: a result, a log or a model says what
its codes mean. Model files and logs written before vocabularies were recorded read as
:data:`LEGACY_PHASES`, the seven ices and liquid of those models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from icemon.errors import PhaseError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

LEGACY_PHASES: tuple[str, ...] = ("Ih", "Ic", "II", "III", "VI", "VII", "sI", "liquid")
"""The vocabulary of model files and logs that do not record one (written before
vocabularies were recorded): only for reading those."""

SEVEN_ICES: tuple[str, ...] = LEGACY_PHASES[:7]
"""The default reference lattices of training (``TrainConfig.phases`` None): what a model
is built from, not what a result's codes mean."""

LIQUID_NAME = "liquid"

UNKNOWN_NAME = "unknown"
"""Label of ordered environments that match no reference (after ``liquid`` in the
vocabulary of models that have it; see :mod:`icemon.classification.classifier`)."""


def liquid_code(phases: Sequence[str]) -> int:
    """Code of ``liquid`` in a vocabulary (the label of atoms far from every reference)."""
    try:
        return list(phases).index(LIQUID_NAME)
    except ValueError:
        raise PhaseError(f"the phase vocabulary {list(phases)} has no {LIQUID_NAME!r}") from None


def unknown_code(phases: Sequence[str]) -> int:
    """Code of ``unknown`` in a vocabulary, -1 for a model without that label."""
    return list(phases).index(UNKNOWN_NAME) if UNKNOWN_NAME in phases else -1


def is_ice(labels: npt.ArrayLike, liquid: int, unknown: int = -1) -> np.ndarray:
    """(N,) bool of integer ``labels``: labelled with an ice (not ``liquid``, not
    ``unknown``, not a fill value < 0) — ordered but unknown structure is no ice."""
    import numpy as np

    labels = np.asarray(labels)
    return (labels >= 0) & (labels != liquid) & (labels != unknown)


def phase_code(name: str, phases: Sequence[str]) -> int:
    """Integer code of a phase name in a vocabulary (case-insensitive, 'ice ' prefix
    allowed)."""
    key = name.strip().lower().removeprefix("ice").strip().lstrip("-_ ")
    for code, phase in enumerate(phases):
        if phase.lower() == key:
            return code
    raise PhaseError(f"unknown phase {name!r}; known phases: {', '.join(phases)}")


PHASE_COLORS: dict[str, tuple[float, float, float]] = {
    "Ih": (0.902, 0.624, 0.000),      # orange         (OVITO: hexagonal diamond, orange)
    "Ic": (0.337, 0.706, 0.914),      # sky blue       (OVITO: cubic diamond, light blue)
    "II": (0.000, 0.620, 0.451),      # bluish green
    "III": (0.800, 0.475, 0.655),     # reddish purple
    "VI": (0.000, 0.447, 0.698),      # blue
    "VII": (0.835, 0.369, 0.000),     # vermillion
    "sI": (0.941, 0.894, 0.259),      # yellow
    "sII": (0.600, 0.600, 0.200),     # olive
    "sH": (0.550, 0.340, 0.150),      # brown
    "V": (0.330, 0.330, 0.600),       # slate
    "liquid": (0.760, 0.800, 0.860),  # light grey-blue: the background the ices stand out on
    "unknown": (0.200, 0.200, 0.200),  # near black: ordered, but no reference for it
}
"""RGB (0-1) display colour of each phase, used by the OVITO modifier's ``Structure Type``
and the ``color`` column of icemon's extxyz files.

The seven ices take the Okabe-Ito palette (Wong, Nature Methods 8, 441 (2011)), whose
colours stay distinct under the common colour-vision deficiencies. Ih and Ic follow OVITO's
diamond identification — an ice Ih oxygen lattice is hexagonal diamond (OVITO: orange),
Ic cubic diamond (OVITO: blue) — so a picture reads the same with either analysis
(OVITO's Chill+ modifier colours them the other way round: hexagonal ice cyan, cubic ice
orange). Liquid is a pale grey-blue that recedes behind the crystals."""


_EXTRA_COLORS = ((0.55, 0.80, 0.25), (0.95, 0.45, 0.55), (0.35, 0.75, 0.70), (0.65, 0.45, 0.85),
                 (0.85, 0.70, 0.45), (0.45, 0.55, 0.35))


def phase_color(name: str) -> tuple[float, float, float]:
    """Display colour of a phase: :data:`PHASE_COLORS`, or for a phase it does not list
    one of a few more (the same for the same name in every run)."""
    if name in PHASE_COLORS:
        return PHASE_COLORS[name]
    return _EXTRA_COLORS[sum(name.encode()) % len(_EXTRA_COLORS)]
