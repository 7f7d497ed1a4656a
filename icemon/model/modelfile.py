"""The icemon model file: denoiser weights + classifier arrays + a JSON config.

One ``.npz`` file (numpy, ``allow_pickle=False``), never a pickled module, so it loads
with any later torch / e3nn / scikit-learn:

* ``meta``: JSON text — format tag, network config, denoising settings, SOAP settings,
  liquid threshold and its calibration statistics, training config and command,
  library versions;
* ``net/<name>``: one array per ``ScoreNet`` state-dict entry;
* ``clf/<name>``: the fitted :class:`~icemon.classification.classifier.PhaseClassifier`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import torch

from icemon.classification.classifier import PhaseClassifier
from icemon.descriptors.soap import SoapConfig
from icemon.errors import ModelFileError
from icemon.model.network import ScoreNet, ScoreNetConfig
from icemon.phases import LEGACY_PHASES, LIQUID_NAME, UNKNOWN_NAME

FORMAT = "icemon-model/1"
DEFAULT_MODEL = "ice-denoiser.npz"


def default_model_path() -> Path:
    """Path of the pretrained model shipped inside the package."""
    return Path(str(files("icemon") / "data" / DEFAULT_MODEL))


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class IcemonModel:
    """Everything a :class:`~icemon.execution.pipeline.Pipeline` needs, as loaded from one file."""

    net: ScoreNet
    classifier: PhaseClassifier
    soap: SoapConfig
    denoise_steps: int = 8
    denoise_tol: float = 0.01
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.meta.get("name", self.path.stem if self.path else "unsaved")

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    @property
    def reference_symprec(self) -> float:
        """Tolerance (Å) the model's GenIce references were symmetrised at (0 = GenIce's
        sites as they are; :func:`icemon.lattices.references.symmetrise`): the lattices
        the model treats as ideal."""
        return float(self.meta.get("train", {}).get("config", {}).get("reference_symprec", 0.0))

    @property
    def phases(self) -> tuple[str, ...]:
        """The label vocabulary: reference phases in code order, then ``liquid`` (recorded
        in the file; :data:`~icemon.phases.LEGACY_PHASES` for files from before it was)."""
        return tuple(self.meta.get("phases", LEGACY_PHASES))

    def save(self, path: str | Path, adopt: bool = True) -> Path:
        """Write the model (weights + config) to ``path``; with ``adopt`` (default) the
        model then names that file (:attr:`path`, :attr:`sha256`: what logs record),
        else it is a copy and the model still names the file it came from (helper
        processes load such copies)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta.update({
            "format": FORMAT,
            "scorenet": self.net.config.to_dict(),
            "soap": self.soap.to_dict(),
            "denoise": {"max_steps": self.denoise_steps, "tol": self.denoise_tol},
            "threshold": self.classifier.threshold,
            "phases": list(self.phases),
        })
        arrays: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta, indent=1))}
        for k, v in self.net.state_dict().items():
            arrays[f"net/{k}"] = v.detach().cpu().numpy()
        for k, v in self.classifier.to_arrays().items():
            arrays[f"clf/{k}"] = np.asarray(v)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
        if adopt:
            self.path, self.sha256, self.meta = path, sha256(path), meta
        return path

    @classmethod
    def load(cls, path: str | Path | None = None) -> IcemonModel:
        """Load a model file (the shipped default when ``path`` is None)."""
        path = default_model_path() if path is None else Path(path)
        if not path.is_file():
            raise ModelFileError(f"model file {str(path)!r} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{str(path)!r} is not a readable icemon model file "
                                 f"(corrupt or not .npz): {exc}") from exc
        if "meta" not in arrays:
            raise ModelFileError(f"{str(path)!r} has no 'meta' entry: not an icemon model file")
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{str(path)!r}: its 'meta' entry is not JSON") from exc
        if meta.get("format") != FORMAT:
            raise ModelFileError(f"{str(path)!r} has format {meta.get('format')!r}, "
                                 f"expected {FORMAT!r}")
        try:
            net = ScoreNet(ScoreNetConfig.from_dict(meta["scorenet"]))
            state = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net/")}
            net.load_state_dict(state, strict=True)
            clf = PhaseClassifier.from_arrays(
                {k[4:]: v for k, v in arrays.items() if k.startswith("clf/")})
            soap = SoapConfig(**meta["soap"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{str(path)!r} is an incomplete or incompatible icemon "
                                 f"model file: {exc}") from exc
        phases = tuple(meta.get("phases", LEGACY_PHASES))
        unknown = phases.index(UNKNOWN_NAME) if UNKNOWN_NAME in phases else -1
        if LIQUID_NAME not in phases or phases.index(LIQUID_NAME) != clf.liquid or \
                int(clf.reference.ref_labels.max(initial=-1)) >= clf.liquid or unknown != clf.unknown:
            raise ModelFileError(f"{str(path)!r}: its phase vocabulary {list(phases)} does not "
                                 f"match its classifier (liquid code {clf.liquid}, unknown code "
                                 f"{clf.unknown})")
        net.eval()
        return cls(net, clf, soap, int(meta["denoise"]["max_steps"]),
                   float(meta["denoise"]["tol"]), meta, path, sha256(path))
