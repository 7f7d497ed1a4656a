"""The regional checks, one class each, in the order they run: repeat (ordered but
unknown), family (which clathrate), topology (which framework), orbits (whether a crystal
fills its lattice's orbits), growth (ice to its last ordered layer at interfaces).
:mod:`~icemon.classification.checks.base` says what a check
is and how to add one."""

from icemon.classification.checks.base import (
    SERIAL,
    FrameLabels,
    RegionalCheck,
    Serial,
    Share,
    register,
    registered,
    unregister,
)
from icemon.classification.checks.family import FamilyVote
from icemon.classification.checks.growth import GrowthCheck
from icemon.classification.checks.orbits import OrbitCheck
from icemon.classification.checks.repeat import RepeatCheck
from icemon.classification.checks.topology import TopologyCheck

__all__ = ["SERIAL", "FamilyVote", "FrameLabels", "GrowthCheck", "OrbitCheck", "RegionalCheck", "RepeatCheck",
           "Serial", "Share", "TopologyCheck", "register", "registered", "unregister"]
