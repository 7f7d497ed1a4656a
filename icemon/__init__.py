"""icemon: live, per-molecule ice phase classification by score-based denoising.

Data flow: simulation hook / trajectory reader → :class:`Frame` → :class:`Denoiser`
(E(3)-equivariant score network) → SOAP + nearest reference (:class:`PhaseClassifier`)
→ :class:`LogWriter` (HDF5 ``icemon/1``) → analysis.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import ConfigError, IcemonError
from .frame import Frame, FrameError
from .log import LogError, LogWriter
from .modelfile import IcemonModel, ModelFileError, default_model_path
from .phases import ICE_PHASES, LIQUID, PHASES
from .pipeline import Pipeline, Result
from .readers import TrajectoryError, read_frames

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
