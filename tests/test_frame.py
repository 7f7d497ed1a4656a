"""Bad input gets a clear error that names the problem."""

import numpy as np
import pytest

from icemon import Frame, FrameError


def test_valid_frame_defaults():
    f = Frame(np.zeros((2, 3)) + 1.0, np.eye(3) * 10)
    assert f.n_atoms == 2
    np.testing.assert_array_equal(f.atom_ids, [0, 1])
    assert np.isnan(f.time) and f.step == -1
    assert f.volume == pytest.approx(1000.0)


def test_lengths_give_orthorhombic_cell():
    f = Frame(np.ones((1, 3)), [10, 11, 12])
    np.testing.assert_allclose(f.cell, np.diag([10, 11, 12]))


@pytest.mark.parametrize("positions, cell, message", [
    (np.zeros((0, 3)), np.eye(3) * 10, "no oxygen"),
    (np.array([[0, 0, np.nan]]), np.eye(3) * 10, "NaN"),
    (np.array([[0, 0, np.inf]]), np.eye(3) * 10, "NaN or infinite"),
    (np.zeros((2, 2)), np.eye(3) * 10, "shape"),
    (np.zeros((1, 3)), np.zeros((3, 3)), "zero-length"),
    (np.zeros((1, 3)), np.array([[10, 0, 0], [0, 10, 0], [10, 10, 0]]), "singular"),
    (np.zeros((1, 3)), np.diag([10, 10, np.nan]), "NaN"),
    (np.zeros((1, 3)), np.eye(2), "cell must be"),
])
def test_bad_frames_raise_clear_errors(positions, cell, message):
    with pytest.raises(FrameError, match=message):
        Frame(positions, cell)


def test_atom_ids_must_match():
    with pytest.raises(FrameError, match="3 atom ids for 2 positions"):
        Frame(np.zeros((2, 3)), np.eye(3) * 5, atom_ids=[1, 2, 3])


def test_wrapped_is_inside_cell():
    cell = np.array([[10.0, 0, 0], [3.0, 9.0, 0], [1.0, 2.0, 8.0]])
    pos = np.array([[-1.0, 25.0, 3.0], [14.0, -3.0, -9.0]])
    w = Frame(pos, cell).wrapped()
    frac = np.linalg.solve(cell.T, w.T).T
    assert np.all((frac >= 0) & (frac < 1))
    # same point modulo a lattice vector
    d = np.linalg.solve(cell.T, (w - pos).T).T
    np.testing.assert_allclose(d, np.round(d), atol=1e-9)


def test_from_ase_without_oxygen():
    from ase import Atoms

    with pytest.raises(FrameError, match="no atoms match"):
        Frame.from_ase(Atoms("H2", positions=[[0, 0, 0], [0, 0, 1]], cell=[5, 5, 5], pbc=True))


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_overlapping_oxygens_are_refused_by_the_pipeline(pipeline, shift):
    from icemon.lattices.references import reference

    ice = reference("Ic", 12.0)
    pos = ice.positions.copy()
    pos[5] = pos[17] + shift  # two oxygens on top of each other (e.g. zeroed coordinates)
    with pytest.raises(FrameError, match="only .* Å apart: overlapping oxygens"):
        pipeline.process(Frame(pos, ice.cell[:]))


def test_frame_owns_read_only_copies():
    """An engine that reuses its position buffer must not change a queued frame."""
    buf = np.full((2, 3), 1.0)
    cell = np.eye(3) * 10.0
    fr = Frame(buf, cell)
    buf[:] = 5.0
    cell[:] = 0.0
    np.testing.assert_array_equal(fr.positions, 1.0)
    assert fr.cell[0, 0] == 10.0
    with pytest.raises(ValueError, match="read-only"):
        fr.positions[0, 0] = 3.0


def test_left_handed_cell_is_accepted():
    """A left-handed cell spans the same lattice: accepted, same volume."""
    fr = Frame(np.zeros((1, 3)), np.diag([10.0, 10.0, -10.0]))
    assert fr.volume == pytest.approx(1000.0)


def test_frame_in_wrong_units_is_refused_before_any_neighbour_list(pipeline):
    """Ice in nm read as Å is 1000x too dense: refused at once with a units hint (its
    neighbour list would exhaust memory)."""
    from icemon.lattices.references import reference

    a = reference("Ic", 12.0)
    with pytest.raises(FrameError, match="denser than any water phase.*wrong length units"):
        pipeline.process(Frame(a.positions / 10, a.cell[:] / 10))
