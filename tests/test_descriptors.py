"""SOAP split over helper processes gives the single-process descriptors, and survives
a helper that dies."""

from __future__ import annotations

import numpy as np
import pytest

from icemon.descriptors import PARALLEL_MIN_ATOMS, Soap
from icemon.references import reference


@pytest.fixture(scope="module")
def structure():
    atoms = reference("VI", min_height=16.0)
    rng = np.random.default_rng(3)
    pos = atoms.positions + rng.normal(scale=0.1, size=atoms.positions.shape)
    assert len(pos) >= PARALLEL_MIN_ATOMS
    return pos, np.asarray(atoms.cell[:])


def test_helper_processes_give_the_serial_descriptors(model, structure):
    serial = Soap(model.soap, processes=1)(*structure)
    soap = Soap(model.soap, processes=2)
    try:
        parallel = soap(*structure)
        assert len(soap._helpers) == 1 and soap._helpers[0].proc.poll() is None
        np.testing.assert_allclose(parallel, serial, rtol=0, atol=1e-8 * np.abs(serial).max())
        again = soap(*structure)  # the helper is reused
        np.testing.assert_array_equal(again, parallel)
    finally:
        soap.close()
    assert not soap._helpers


def test_small_frames_stay_in_one_process(model):
    atoms = reference("Ih", min_height=5.0)
    assert len(atoms) < PARALLEL_MIN_ATOMS
    soap = Soap(model.soap, processes=2)
    soap(atoms.positions, np.asarray(atoms.cell[:]))
    assert not soap._helpers


def test_a_dead_helper_is_replaced_by_serial_work(model, structure):
    serial = Soap(model.soap, processes=1)(*structure)
    soap = Soap(model.soap, processes=2)
    soap(*structure)
    proc = soap._helpers[0].proc
    proc.kill()
    proc.wait()
    with pytest.warns(RuntimeWarning, match="SOAP helper process stopped"):
        out = soap(*structure)
    np.testing.assert_allclose(out, serial, rtol=0, atol=1e-8 * np.abs(serial).max())
    assert soap.processes == 1 and not soap._helpers


def test_helpers_stop_when_the_soap_object_is_collected(model, structure):
    import gc

    soap = Soap(model.soap, processes=2)
    soap(*structure)
    proc = soap._helpers[0].proc
    del soap
    gc.collect()
    assert proc.wait(timeout=10) == 0


def test_helpers_that_cannot_start_leave_serial_work(model, structure, monkeypatch):
    import sys

    serial = Soap(model.soap, processes=1)(*structure)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    soap = Soap(model.soap, processes=2)
    with pytest.warns(RuntimeWarning, match="cannot start a SOAP helper"):
        out = soap(*structure)
    np.testing.assert_array_equal(out, serial)
    assert soap.processes == 1


def test_an_error_leaves_the_helpers_in_step(model, structure, monkeypatch):
    """A block dscribe rejects (here: in the helper's share) raises, and the next frame
    still gets its own descriptors from the same helper."""
    pos, cell = structure
    soap = Soap(model.soap, processes=2)
    blocks = soap.blocks

    def broken(*args):
        out = blocks(*args)
        own, local = out[-1]
        out[-1] = (own, local[:, :2])  # not 3-D positions
        return out

    try:
        monkeypatch.setattr(soap, "blocks", broken)
        with pytest.raises(ValueError, match=r"\(\d+, ?3\)|shape"):
            soap(pos, cell)
        monkeypatch.undo()
        np.testing.assert_allclose(soap(pos, cell), Soap(model.soap, processes=1)(pos, cell),
                                   rtol=0, atol=1e-6)
        assert soap.processes == 2 and soap._helpers[0].proc.poll() is None
    finally:
        soap.close()


@pytest.mark.parametrize("phase, height", [("VI", 16.0), ("Ih", 30.0), ("III", 12.0)])
def test_blocks_reproduce_the_periodic_descriptors(model, phase, height):
    """Blocks with halos (any number, triclinic cells, cells smaller than the halo) give
    every atom once, with its periodic descriptor. (The reference is dscribe's periodic
    SOAP in the orthogonal cell: in the sheared re-expression of these small cells
    dscribe's own periodic SOAP misses images, the blocks do not.)"""
    from ase import Atoms

    from icemon.descriptors import halo_blocks

    a = reference(phase, height)
    pos = a.positions + np.random.default_rng(0).normal(0, 0.1, a.positions.shape)
    soap = Soap(model.soap, processes=1)
    cell0 = np.asarray(a.cell[:])
    ref = soap._soap.create(Atoms(numbers=[8] * len(pos), positions=pos, cell=cell0, pbc=True))
    for cell in (cell0, np.array([[1, 0, 0], [1, 1, 0], [-1, 2, 1]]) @ cell0):
        for n_blocks in (2, 5, 17):
            blocks = halo_blocks(pos, cell, soap.reach, n_blocks)
            owned = np.concatenate([own for own, _ in blocks])
            np.testing.assert_array_equal(np.sort(owned), np.arange(len(pos)))
            out = np.empty_like(ref)
            for (own, _), f in zip(blocks, soap.describe_blocks(blocks)):
                out[own] = f
            np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
