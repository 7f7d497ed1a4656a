"""icemon: live, per-molecule ice phase classification by score-based denoising.

Data flow, one subpackage per stage:

- ``icemon.hooks``          simulation engines (LAMMPS, ASE, i-PI) hand frames over;
- ``icemon.geometry``       :class:`Frame` (oxygens, cell; Å), neighbour lists, replicas;
- ``icemon.model``          the E(3)-equivariant score network, the :class:`Denoiser`
  and the model file (weights + arrays + JSON config, never a pickled module);
- ``icemon.descriptors``    SOAP of the denoised oxygens (dscribe);
- ``icemon.classification`` nearest reference environment, then the regional checks
  (``icemon.classification.checks``: repeat/unknown, family vote, topology, orbits);
- ``icemon.execution``      the :class:`Pipeline` that chains them, run serially, by
  MPI ranks sharing a frame, or by a :class:`FramePool` of worker processes;
- ``icemon.recording``      the one place that processes a frame and appends it to a log;
- ``icemon.io``             trajectory readers, the HDF5 log (``icemon/1``), extxyz;
- ``icemon.analysis``       fractions, melting fronts, reports and plots from a log;
- ``icemon.integrations``   the same classification inside MDAnalysis and OVITO;
- ``icemon.lattices``       ideal GenIce2 lattices (references, tests, demos);
- ``icemon.training``       score-network training and threshold calibration;
- ``icemon.demo``           the mW water model and the live demo (example support).
"""

from __future__ import annotations

__version__ = "0.2.0"

from typing import TYPE_CHECKING

from icemon.errors import ConfigError, IcemonError, ModelFileError

if TYPE_CHECKING:
    from icemon.execution.pipeline import Pipeline, Result
    from icemon.execution.pool import FramePool
    from icemon.geometry.frame import Frame, FrameError
    from icemon.io.log import LogError, LogWriter
    from icemon.io.readers import TrajectoryError, read_frames
    from icemon.model.modelfile import IcemonModel, default_model_path

_LAZY = {"Frame": "icemon.geometry.frame", "FrameError": "icemon.geometry.frame",
         "IcemonModel": "icemon.model.modelfile", "default_model_path": "icemon.model.modelfile",
         "Pipeline": "icemon.execution.pipeline", "Result": "icemon.execution.pipeline",
         "FramePool": "icemon.execution.pool",
         "LogError": "icemon.io.log", "LogWriter": "icemon.io.log",
         "TrajectoryError": "icemon.io.readers", "read_frames": "icemon.io.readers"}
"""Names imported on first use: ``import icemon`` loads neither numpy nor h5py, and
nothing loads torch, e3nn or dscribe until a network runs (the CLI's help, reading a
log and the analysis do not pay for them)."""


_REMOVED = {"PHASES", "LIQUID", "ICE_PHASES"}
"""Phase-list constants of earlier versions: a fixed list disagreed with the model in use
(``labels == icemon.LIQUID`` counted sII with the shipped model), so they are gone."""


def __getattr__(name: str):
    if name in _REMOVED:
        raise AttributeError(f"icemon.{name} was removed: phase names and codes come from the "
                             "model or the log (result.phases, result.liquid, "
                             "IcemonModel.phases, Log.phases)")
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
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
