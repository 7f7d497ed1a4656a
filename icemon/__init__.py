"""icemon: live, per-molecule ice phase classification by score-based denoising.

Data flow, one subpackage per stage:

- ``icemon.hooks``    simulation engines (LAMMPS, ASE, i-PI) hand frames over;
- ``icemon.io``       trajectory readers, the HDF5 log (``icemon/1``), extxyz output;
- ``icemon.core``     per frame: :class:`Frame` → :class:`Denoiser` (E(3)-equivariant
  score network) → SOAP → nearest reference (:class:`PhaseClassifier`), the
  :class:`Pipeline` that chains them and the model file;
- ``icemon.analysis`` fractions, melting fronts, reports and plots from a log;
- ``icemon.training`` ideal GenIce2 references, training and threshold calibration;
- ``icemon.mdanalysis``, ``icemon.ovito``  the same classification inside those tools;
- ``icemon.demo``     the mW water model and the live demo (example support, not API).
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING

from icemon.errors import ConfigError, IcemonError, ModelFileError
from icemon.phases import ICE_PHASES, LIQUID, PHASES

if TYPE_CHECKING:
    from icemon.core.frame import Frame, FrameError
    from icemon.core.modelfile import IcemonModel, default_model_path
    from icemon.core.pipeline import Pipeline, Result
    from icemon.core.pool import FramePool
    from icemon.io.log import LogError, LogWriter
    from icemon.io.readers import TrajectoryError, read_frames

_LAZY = {"Frame": "icemon.core.frame", "FrameError": "icemon.core.frame",
         "IcemonModel": "icemon.core.modelfile", "default_model_path": "icemon.core.modelfile",
         "Pipeline": "icemon.core.pipeline", "Result": "icemon.core.pipeline",
         "FramePool": "icemon.core.pool",
         "LogError": "icemon.io.log", "LogWriter": "icemon.io.log",
         "TrajectoryError": "icemon.io.readers", "read_frames": "icemon.io.readers"}
"""Names imported on first use: ``import icemon`` loads neither numpy nor h5py, and
nothing loads torch, e3nn or dscribe until a network runs (the CLI's help, reading a
log and the analysis do not pay for them)."""


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
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
    "FramePool",
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
