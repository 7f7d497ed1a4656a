"""icemon: live, per-molecule ice phase classification by score-based denoising.

Data flow: simulation hook / trajectory reader → :class:`Frame` → :class:`Denoiser`
(E(3)-equivariant score network) → SOAP + nearest reference (:class:`PhaseClassifier`)
→ :class:`LogWriter` (HDF5 ``icemon/1``) → analysis.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from .errors import ConfigError, IcemonError, ModelFileError
from .frame import Frame, FrameError
from .log import LogError, LogWriter
from .phases import ICE_PHASES, LIQUID, PHASES
from .readers import TrajectoryError, read_frames

if TYPE_CHECKING:
    from .modelfile import IcemonModel, default_model_path
    from .pipeline import Pipeline, Result

_LAZY = {"IcemonModel": "modelfile", "default_model_path": "modelfile",
         "Pipeline": "pipeline", "Result": "pipeline"}
"""Names whose modules load torch, e3nn and dscribe: imported on first use, so that
reading a log, the CLI's help and the analysis do not pay for them."""


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ICE_PHASES",
    "LIQUID",
    "PHASES",
    "ConfigError",
    "Frame",
    "FrameError",
    "IcemonError",
    "IcemonModel",
    "LogError",
    "LogWriter",
    "ModelFileError",
    "Pipeline",
    "Result",
    "TrajectoryError",
    "__version__",
    "default_model_path",
    "read_frames",
]
