"""What a log tells: phase fractions over time, melting/growth fronts, reports and plots.

Light: nothing here imports torch, e3nn or dscribe.
"""

from icemon.analysis.fronts import (
    AXES,
    FrontResults,
    FrontTracker,
    find_fronts,
    solid_profile,
)
from icemon.io.log.reader import Log

__all__ = ["AXES", "FrontResults", "FrontTracker", "Log", "find_fronts", "solid_profile"]
