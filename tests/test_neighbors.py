"""The periodic neighbour list every stage builds on (vesin's half list, mirrored)."""

import numpy as np
import pytest
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from icemon.geometry.neighbors import neighbor_list, neighbor_pairs


def _pairs(i, j, shifts) -> set:
    return {(int(a), int(b), *np.round(s, 6)) for a, b, s in zip(i, j, shifts)}


@pytest.mark.parametrize("cell", [
    np.diag([12.0, 13.0, 14.0]),
    # triclinic and so small that an atom neighbours its own periodic images
    np.array([[5.2, 0.0, 0.0], [1.7, 5.0, 0.0], [-1.1, 0.9, 5.6]]),
])
def test_full_list_with_images_equals_ase(cell):
    """Every ordered pair (i, j, image) within the cutoff, each once, as ASE's
    independent implementation finds them; r_ij = x_j + shift - x_i."""
    rng = np.random.default_rng(3)
    pos = rng.uniform(0, 1, (40, 3)) @ cell
    atoms = Atoms("O40", positions=pos, cell=cell, pbc=True)
    i_ref, j_ref, s_ref = ase_neighbor_list("ijS", atoms, 4.1)
    i, j, shifts = neighbor_list(pos, cell, 4.1)
    assert len(i) == len(i_ref)
    assert _pairs(i, j, shifts) == _pairs(i_ref, j_ref, s_ref @ cell)
    d = np.linalg.norm(pos[j] + shifts - pos[i], axis=1)
    assert d.max() < 4.1 and d.min() > 0
    ii, jj, images = neighbor_pairs(pos, cell, 4.1)
    assert images.dtype.kind == "i" and (ii == i).all() and (jj == j).all()


def test_pairs_centred_on_some_atoms_are_those_of_the_full_list():
    """What an MPI rank asks for: the full list's pairs whose centre is in the mask."""
    cell = np.diag([11.0, 12.0, 13.0])
    pos = np.random.default_rng(5).uniform(0, 1, (60, 3)) @ cell
    mask = np.zeros(60, dtype=bool)
    mask[::3] = True
    i, j, images = neighbor_pairs(pos, cell, 4.5)
    keep = mask[i]
    ci, cj, cimages = neighbor_pairs(pos, cell, 4.5, centres=mask)
    assert _pairs(ci, cj, cimages) == _pairs(i[keep], j[keep], images[keep])
    assert len(ci) == keep.sum() and mask[ci].all()


def test_the_neighbour_service_filters_one_list_for_smaller_radii():
    """One list at the largest radius asked so far serves smaller ones with the same
    pairs a direct search finds; a larger radius rebuilds it (two builds here)."""
    from icemon.geometry.neighbors import Neighbours, neighbor_pairs

    rng = np.random.default_rng(5)
    cell = np.array([[14.0, 0, 0], [2.0, 13.0, 0], [1.0, -1.5, 12.0]])  # triclinic
    pos = rng.uniform(size=(300, 3)) @ cell
    service = Neighbours(pos, cell)

    def pair_set(i, j, s):
        return set(zip(i.tolist(), j.tolist(), map(tuple, s.tolist())))

    for radius in (4.8, 7.0, 3.4, 4.8, 7.0):
        assert pair_set(*service.pairs(radius)) == pair_set(*neighbor_pairs(pos, cell, radius))
    assert service.builds == 2
    i, j = service.pairs_among(3.4, np.arange(0, 300, 3))
    direct = neighbor_pairs(pos[::3], cell, 3.4)
    assert set(zip(i.tolist(), j.tolist())) == set(zip(direct[0].tolist(), direct[1].tolist()))
