"""Shared fixtures: the shipped model, the GCIceNet files beside the checkout, references."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
# The network runs eagerly in the suite (and in the processes it starts), unless a test
# asks for compiling: hundreds of short-lived pipelines would each pay the compilation
# (~4 s cached). The default itself, compiled, is tested in test_compile.py.
os.environ.setdefault("ICEMON_COMPILE", "0")

ROOT = Path(__file__).resolve().parents[1]
GCICENET = ROOT.parent / "shared" / "data" / "gcicenet"
GCICENET_TAGS = {"1h": "Ih", "1c": "Ic", "2": "II", "3": "III", "6": "VI", "7": "VII",
                 "sI": "sI", "w": "liquid"}


def shipped_phases() -> tuple[str, ...]:
    """The shipped model's vocabulary (names of its codes): what labels of a run with the
    default model mean."""
    from icemon import IcemonModel

    return IcemonModel.load().phases


@pytest.fixture(scope="session")
def model():
    from icemon import IcemonModel

    return IcemonModel.load()


@pytest.fixture(scope="session")
def pipeline(model):
    from icemon import Pipeline

    return Pipeline(model)


@pytest.fixture(scope="session")
def gcicenet() -> Path:
    if not (GCICENET / "md_1h.tpr").exists():
        pytest.fail(f"the GCIceNet evaluation data is missing at {GCICENET}")
    return GCICENET


def gcicenet_frame(directory: Path, tag: str, index: int = 0):
    from icemon import read_frames

    return next(read_frames(directory / f"md_{tag}_dev.xtc", directory / f"md_{tag}.tpr",
                            "name OW", start=index))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q
