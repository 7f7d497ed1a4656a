"""Reusable checks of the score network (nequip-style): E(3) equivariance, permutation
equivariance, periodic consistency, and the model-file discipline."""

import copy

import numpy as np
import pytest
import torch

from icemon.geometry.frame import minimum_image
from icemon.lattices.references import reference
from icemon.model.denoise import Denoiser
from icemon.model.network import ScoreNet, ScoreNetConfig

from .conftest import random_rotation


def _eps(net: ScoreNet, pos: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """ε in float64, so that symmetry checks are exact to ~1e-12."""
    return Denoiser(copy.deepcopy(net).double()).epsilon(pos, cell)


@pytest.fixture(scope="module")
def noisy_ice():
    rng = np.random.default_rng(1)
    a = reference("III", 10.0)
    return a.positions + rng.normal(scale=0.15, size=a.positions.shape), np.asarray(a.cell[:])


@pytest.fixture(scope="module", params=["shipped", "random"])
def net(request, model):
    if request.param == "shipped":
        return model.net
    torch.manual_seed(3)
    return ScoreNet(ScoreNetConfig(hidden="8x0e+4x1o+2x2e", n_layers=2)).eval()


def test_output_nonzero_on_noisy_input(net, noisy_ice):
    eps = _eps(net, *noisy_ice)
    assert eps.shape == noisy_ice[0].shape
    assert np.abs(eps).max() > 1e-4


def test_rotation_equivariance(net, noisy_ice):
    pos, cell = noisy_ice
    rot = random_rotation(np.random.default_rng(7))
    eps = _eps(net, pos, cell)
    eps_rot = _eps(net, pos @ rot.T, cell @ rot.T)
    np.testing.assert_allclose(eps_rot, eps @ rot.T, atol=1e-9)


def test_inversion_equivariance(net, noisy_ice):
    """ε is a polar vector (1o): inverting the structure inverts the displacements."""
    pos, cell = noisy_ice
    eps = _eps(net, pos, cell)
    # inversion through the origin maps the lattice onto -cell; re-express with +cell rows
    eps_inv = _eps(net, -pos, cell)
    np.testing.assert_allclose(eps_inv, -eps, atol=1e-9)


def test_translation_invariance(net, noisy_ice):
    pos, cell = noisy_ice
    eps = _eps(net, pos, cell)
    np.testing.assert_allclose(_eps(net, pos + [1.3, -7.1, 22.0], cell), eps, atol=1e-9)


def test_permutation_equivariance(net, noisy_ice):
    pos, cell = noisy_ice
    perm = np.random.default_rng(2).permutation(len(pos))
    np.testing.assert_allclose(_eps(net, pos[perm], cell), _eps(net, pos, cell)[perm],
                               atol=1e-9)


def test_replication_consistency(net, noisy_ice):
    """A 2x1x1 supercell of the same periodic structure gives the same ε per atom."""
    pos, cell = noisy_ice
    big = np.concatenate([pos, pos + cell[0]])
    big_cell = cell * np.array([[2.0], [1.0], [1.0]])
    eps = _eps(net, pos, cell)
    np.testing.assert_allclose(_eps(net, big, big_cell), np.concatenate([eps, eps]), atol=1e-9)


def test_config_round_trip_and_rejects_unknown_keys():
    cfg = ScoreNetConfig(hidden="4x0e+2x1o", n_layers=1)
    assert ScoreNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown ScoreNet config keys"):
        ScoreNetConfig.from_dict({"cutof": 3.0})


def test_skin_rule_adds_the_two_largest_moves():
    """Two atoms that each moved less than the skin can still close a gap of the skin
    between them: the list is stale once the two largest moves add up to it."""
    from icemon.model.denoise import skin_valid

    built = torch.zeros(5, 3)
    moved = built.clone()
    moved[1, 0], moved[3, 1] = 0.4, -0.3
    assert not skin_valid(moved, built, 0.6)
    assert skin_valid(moved, built, 0.75)
    assert skin_valid(moved[:1], built[:1], 0.1)


@pytest.mark.parametrize("across_boundary", [False, True])
def test_skin_rule_measures_the_pairs_of_fast_atoms(across_boundary):
    """Two atoms whose moves add up to more than the skin: far apart, no pair can have come
    inside the cutoff unseen and the list is kept; moving towards each other from beyond
    cutoff + skin to inside the cutoff (also through a periodic face), it is stale."""
    from icemon.model.denoise import skin_valid

    cell = np.diag([20.0, 18.0, 22.0])
    cutoff, skin = 4.1, 1.2
    built = torch.tensor([[2.0, 2.0, 2.0], [12.0, 11.0, 12.0], [6.0, 15.0, 5.0]],
                         dtype=torch.float64)
    far = built.clone()
    far[0, 0] += 0.7
    far[1, 0] -= 0.7
    assert not skin_valid(far, built, skin)  # the two-largest rule alone rebuilds
    assert skin_valid(far, built, skin, cell, cutoff)
    # 5.4 Å apart when built (outside cutoff + skin = 5.3), 3.9 Å after 0.75 Å moves each
    a, b = ([0.5, 9.0, 11.0], [15.1, 9.0, 11.0]) if across_boundary else \
        ([7.0, 9.0, 11.0], [12.4, 9.0, 11.0])
    built = torch.tensor([a, b, [10.0, 1.0, 1.0]], dtype=torch.float64)
    close = built.clone()
    sign = -1.0 if across_boundary else 1.0
    close[0, 0] += sign * 0.75
    close[1, 0] -= sign * 0.75
    assert not skin_valid(close, built, skin, cell, cutoff)


@pytest.mark.parametrize("skin", [1.2, 0.6, 0.05])
def test_skin_neighbour_list_gives_the_fresh_list_result(net, noisy_ice, skin):
    """One list at cutoff + skin reused over passes (rebuilt once the two largest moves add
    up to the skin: the small skin forces rebuilds) equals passes on freshly built lists."""
    pos, cell = noisy_ice
    reused = Denoiser(net, 3, 0.0, skin=skin)(pos, cell).positions
    fresh = pos
    d = Denoiser(net)
    for _ in range(3):
        fresh = fresh - d.epsilon(fresh, cell)
    np.testing.assert_allclose(minimum_image(reused - fresh, cell), 0.0, atol=2e-5)


def test_a_block_updates_just_its_first_rows_as_the_whole_graph_would(net, noisy_ice):
    """What an MPI rank does (:mod:`icemon.execution.mpi`): its own atoms first, messages
    only towards them; the updated rows equal those of the whole-graph block."""
    from icemon.model.graph import build_graph

    pos, cell = noisy_ice
    net = copy.deepcopy(net).double()
    g = build_graph([(pos, cell)], net.config.cutoff, torch.float64)
    n_out = len(pos) // 3
    with torch.no_grad():
        sh, basis, x = net.embed(g.pos, g.src, g.dst, g.shifts)
        x = net.layers[0](x, sh, basis, g.src, g.dst)  # features that differ by atom
        whole = net.layers[1](x, sh, basis, g.src, g.dst)
        mine = g.dst < n_out
        part = net.layers[1](x, sh[mine], basis[mine], g.src[mine], g.dst[mine], x[:n_out])
    assert part.shape[0] == n_out
    np.testing.assert_allclose(part.numpy(), whole[:n_out].numpy(), atol=1e-12)
