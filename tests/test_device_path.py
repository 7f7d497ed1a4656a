"""The device path (``Pipeline(device="cuda")``): neighbour lists, SOAP and the nearest
reference in torch. Run here on the CPU, where it must give dscribe's descriptors and the
host path's labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from icemon.descriptors.soap import Soap, SoapConfig
from icemon.descriptors.torch_soap import TorchSoap
from icemon.geometry.device_neighbors import device_pairs
from icemon.geometry.neighbors import neighbor_list
from icemon.lattices.references import reference

from .conftest import gcicenet_frame


def _pairs(i, j, shifts) -> set:
    return {(int(a), int(b), *np.round(np.asarray(s, dtype=np.float64), 5))
            for a, b, s in zip(i, j, shifts)}


@pytest.mark.parametrize("cell, cutoff", [
    (np.diag([21.0, 22.0, 25.0]), 4.1),   # several bins per axis
    (np.diag([12.0, 13.0, 14.0]), 7.9),   # one bin per axis, images two cells away
    # triclinic and so small that an atom neighbours its own periodic images
    (np.array([[5.2, 0.0, 0.0], [1.7, 5.0, 0.0], [-1.1, 0.9, 5.6]]), 4.1),
    (np.array([[16.0, 0.0, 0.0], [-5.0, 15.0, 0.0], [3.0, -4.0, 17.0]]), 4.8),
])
def test_device_pairs_are_the_host_list(cell, cutoff):
    """Every ordered pair (i, j, image) within the cutoff, each once, as vesin finds
    them, for positions given outside the cell too (shifts refer to them as given)."""
    rng = np.random.default_rng(7)
    pos = rng.uniform(-0.3, 1.3, (90, 3)) @ cell
    i, j, s = device_pairs(torch.as_tensor(pos), cell, cutoff)
    ir, jr, sr = neighbor_list(pos, cell, cutoff)
    assert len(i) == len(ir)
    assert _pairs(i, j, s) == _pairs(ir, jr, sr)
    d = np.linalg.norm(pos[j] + s.numpy() - pos[i], axis=1)
    assert d.max() < cutoff and d.min() > 0
    assert (np.diff(i.numpy()) >= 0).all()  # sorted by centre (SOAP chunks rely on it)


@pytest.mark.parametrize("phase, config", [
    ("Ih", None),                                      # the shipped model's settings
    ("II", SoapConfig(r_cut=6.0, n_max=4, l_max=4)),   # rhombohedral, small cell
    ("VI", SoapConfig(r_cut=7.0, n_max=6, l_max=6)),   # other settings
    ("sII", SoapConfig(r_cut=5.0, n_max=3, l_max=8)),
])
def test_torch_soap_equals_dscribe(model, phase, config):
    """The torch descriptors are dscribe's within 1e-6 relative, on noised lattices (any
    cell shape, the centre atom's own images included)."""
    config = config or model.soap
    atoms = reference(phase, min_height=10.0)
    rng = np.random.default_rng(11)
    pos = atoms.positions + rng.normal(scale=0.2, size=atoms.positions.shape)
    cell = np.asarray(atoms.cell[:])
    expected = Soap(config, processes=1)(pos, cell)
    got = TorchSoap(config, chunk=37)(torch.as_tensor(pos), cell).numpy()
    assert got.shape == expected.shape
    scale = np.abs(expected).max(axis=1, keepdims=True)
    assert np.abs(got - expected).max() / scale.min() < 1e-6
    rel = np.abs(got - expected) / np.maximum(np.abs(expected), 1e-3 * scale)
    assert rel.max() < 1e-6


def test_torch_soap_has_dscribes_feature_count(model):
    assert TorchSoap(model.soap).n_features == Soap(model.soap).n_features


@pytest.mark.parametrize("tag", ["1h", "3", "w"])
def test_device_path_gives_the_host_labels(model, pipeline, gcicenet, tag):
    """On real frames (Ih, III, liquid), the device path run on the CPU labels every atom
    as the host path does, with the same scores to float32 rounding."""
    from icemon import Pipeline

    frame = gcicenet_frame(gcicenet, tag)
    host = pipeline.process(frame)
    dev = Pipeline(model, on_device=True)
    assert dev.on_device and dev.denoiser.lists_on_device
    out = dev.process(frame)
    assert (out.labels == host.labels).all()
    assert np.abs(out.denoised - host.denoised).max() < 1e-4
    assert np.allclose(out.scores, host.scores, rtol=1e-4, atol=1e-4)
    assert np.allclose(out.atom_scores, host.atom_scores, rtol=1e-4, atol=1e-4)


def test_device_path_labels_an_interface_and_unknown_order_as_the_host(model, pipeline,
                                                                       gcicenet):
    """An ice|liquid slab (the shell average across an interface) and an ordered phase the
    model has no reference for (the repeat check on far atoms: ``unknown``)."""
    import sys
    from pathlib import Path

    from icemon import Frame, Pipeline

    sys.path.insert(0, str(Path(__file__).parent / "scripts"))
    from golden_frames import slab

    dev = Pipeline(model, on_device=True)
    for frame in (slab(gcicenet), Frame(*_ice_iv())):
        host = pipeline.process(frame)
        out = dev.process(frame)
        assert (out.labels == host.labels).all()
    assert (out.labels == out.unknown).mean() > 0.9  # the check ran and found order


def _ice_iv():
    """Ice IV, noised: ordered, no reference (its atoms need the averaged repeat
    distance, which reuses the shell pairs)."""
    atoms = reference("4", 18.0)
    x = atoms.positions + np.random.default_rng(7).normal(0, 0.12, atoms.positions.shape)
    return x, np.asarray(atoms.cell[:])


def test_device_path_refuses_mpi():
    from icemon import Pipeline
    from icemon.errors import ConfigError

    class Comm:
        size = 2

    with pytest.raises(ConfigError, match="device path"):
        Pipeline(on_device=True, comm=Comm())
