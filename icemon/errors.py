"""The one base of every error icemon raises, so a caller can catch them all at once.

Each concrete error also derives from the built-in exception it has always been
(``FrameError`` is a ``ValueError``, ``TrajectoryError`` an ``OSError``, ...), so code that
catches the built-in keeps working."""

from __future__ import annotations


class IcemonError(Exception):
    """Base of every error raised by icemon."""


class ConfigError(IcemonError, ValueError):
    """An invalid setting: unknown config key, bad option value, mismatched network."""


class PhaseError(IcemonError, KeyError):
    """A phase name that the phase vocabulary or the references do not know."""


class ModelFileError(IcemonError, ValueError):
    """A model file that is missing, corrupt, or not an icemon model."""
