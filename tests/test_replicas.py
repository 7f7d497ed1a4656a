"""Frames written as copies of one box: their copies are not order (the ``unknown`` label's
repeat check counts them as one atom)."""

import numpy as np
import pytest

from icemon.geometry.replicas import replica_groups


def _replicate(positions: np.ndarray, cell: np.ndarray, reps: tuple[int, int, int]):
    shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1])
                       for k in range(reps[2])]) @ cell
    return (np.concatenate([positions + s for s in shifts]),
            cell * np.asarray(reps, dtype=float)[:, None])


def _box(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    cell = np.array([[9.0, 0, 0], [2.0, 10.0, 0], [-1.5, 1.0, 11.0]])  # triclinic
    return rng.random((n, 3)) @ cell, cell


@pytest.mark.parametrize("reps", [(2, 1, 1), (1, 3, 1), (2, 2, 2), (1, 1, 5)])
def test_copies_of_one_box_share_a_group(reps):
    pos, cell = _box()
    big, big_cell = _replicate(pos, cell, reps)
    groups = replica_groups(big, big_cell)
    copies = int(np.prod(reps))
    assert groups is not None and len(np.unique(groups)) == len(pos)
    # atom a of copy c is atom a of copy 0
    np.testing.assert_array_equal(groups.reshape(copies, len(pos)),
                                  np.tile(groups[:len(pos)], (copies, 1)))


def test_coordinates_written_to_a_hundredth_of_an_angstrom_still_match():
    pos, cell = _box()
    big, big_cell = _replicate(pos, cell, (2, 2, 1))
    rounded = np.round(big / 0.01) * 0.01  # what an XTC file keeps
    assert len(np.unique(replica_groups(rounded, big_cell))) == len(pos)


def test_atoms_on_the_cell_faces_are_handled():
    """Coordinates a rounding error below 0 (fractional -1e-17 wraps to exactly 1.0):
    a rotated frame has them; the periodic tree must not see them out of its box."""
    pos, cell = _box()
    pos[:3] = np.array([[-1e-17, 0.3, 0.4], [0.5, -1e-17, 0.2], [0.7, 0.1, -1e-17]]) @ cell
    assert replica_groups(pos, cell) is None
    big, big_cell = _replicate(pos, cell, (2, 1, 1))
    assert len(np.unique(replica_groups(big, big_cell))) == len(pos)


def test_a_frame_that_moved_is_not_a_replica():
    pos, cell = _box()
    big, big_cell = _replicate(pos, cell, (2, 2, 2))
    moved = big + np.random.default_rng(1).normal(0, 0.05, big.shape)
    assert replica_groups(moved, big_cell) is None
    assert replica_groups(pos, cell) is None


@pytest.mark.slow
def test_a_replicated_liquid_box_stays_liquid(pipeline, gcicenet):
    """A GCIceNet liquid frame replicated 2×2×2 repeats each environment seven times,
    exactly: it read 13.7 % `unknown` before its copies were one atom; ordered T
    replicated still repeats within its box and stays `unknown`."""
    from icemon import Frame

    from .conftest import gcicenet_frame

    phases = pipeline.model.phases
    w = gcicenet_frame(gcicenet, "w")
    res = pipeline.process(Frame(*_replicate(w.positions, w.cell, (2, 2, 2))))
    assert res.fractions[phases.index("liquid")] == 1.0, res.table()
    t = gcicenet_frame(gcicenet, "T")
    res = pipeline.process(Frame(*_replicate(t.positions, t.cell, (2, 1, 1))))
    assert res.fractions[phases.index("unknown")] == 1.0, res.table()
