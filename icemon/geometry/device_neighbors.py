"""Periodic neighbour lists in torch, on the device the positions live on.

The device path (``Pipeline(device="cuda")``) keeps a frame on the GPU from the neighbour
list to the nearest reference: building a list on the host (vesin) would copy the
positions there and the pairs back on every rebuild. This is a cell list: atoms are
binned along the three lattice directions in bins at least ``cutoff`` Å wide
(perpendicular to the lattice planes, so any triclinic cell works), and every atom is
compared with the atoms of the bins around its own. A cell thinner than three bins is
searched over as many periodic images as the cutoff needs, so small cells (a 2×2×2
supercell, a slab) give every image pair, as vesin does; each bin offset is a distinct
(bin, image), so no pair is found twice.

Candidates are processed in chunks of centres (memory ∝ chunk × 27 × bin occupancy),
which is what makes 10⁶ atoms fit on one GPU.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch

CHUNK_CANDIDATES = 2**24
"""Candidate pairs held at once (per chunk of centres): ~0.5 GB of float32 work."""


def device_pairs(pos: torch.Tensor, cell: np.ndarray | torch.Tensor, cutoff: float
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full periodic neighbour list within ``cutoff`` Å, computed where ``pos`` lives.

    Args:
        pos: (N, 3) positions in Å (any float dtype, any device).
        cell: (3, 3) lattice vectors as rows, Å.
        cutoff: Å; pairs with distance < cutoff are returned, both directions (an atom's
            own periodic images included when a small cell brings them that close; never
            the atom itself).

    Returns:
        (i, j, shifts): int64 centre and neighbour indices and the (E, 3) Cartesian image
        offsets in ``pos``'s dtype such that ``r_ij = pos[j] + shifts - pos[i]``; sorted
        by centre.
    """
    device, dtype = pos.device, pos.dtype
    n = pos.shape[0]
    empty = (torch.zeros(0, dtype=torch.long, device=device),) * 2 + (
        torch.zeros((0, 3), dtype=dtype, device=device),)
    if n == 0:
        return empty
    cell_t = torch.as_tensor(np.array(cell, dtype=np.float64) if not torch.is_tensor(cell)
                             else cell, dtype=torch.float64, device=device)
    inv = torch.linalg.inv(cell_t)
    spacing = 1.0 / inv.norm(dim=0)  # (3,) distances between lattice planes, Å
    bins = torch.clamp(torch.floor(spacing / cutoff), min=1).to(torch.long)  # per axis
    reach = torch.ceil(cutoff / (spacing / bins)).to(torch.long)  # bins to search each way
    frac = pos.to(torch.float64) @ inv
    frac = frac - torch.floor(frac)
    wrapped = frac @ cell_t  # positions in the cell, float64
    coord = torch.minimum((frac * bins).to(torch.long), bins - 1)  # (N, 3) bin of each atom
    nb = [int(b) for b in bins]
    flat = (coord[:, 0] * nb[1] + coord[:, 1]) * nb[2] + coord[:, 2]
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=nb[0] * nb[1] * nb[2])
    start = torch.cumsum(counts, 0) - counts
    depth = int(counts.max())
    # table[bin, slot] = atom index (sorted by bin), -1 where the bin has fewer atoms
    slot = torch.arange(n, device=device) - start[flat[order]]
    table = torch.full((len(counts), depth), -1, dtype=torch.long, device=device)
    table[flat[order], slot] = order
    offsets = torch.tensor(list(itertools.product(*(range(-int(r), int(r) + 1)
                                                    for r in reach))),
                           dtype=torch.long, device=device)  # (K, 3)
    k = offsets.shape[0]
    per_chunk = max(1, CHUNK_CANDIDATES // max(1, k * depth))
    out_i, out_j, out_s = [], [], []
    cut2 = float(cutoff) ** 2
    for lo in range(0, n, per_chunk):
        centres = torch.arange(lo, min(n, lo + per_chunk), device=device)
        target = coord[centres][:, None, :] + offsets[None]  # (C, K, 3) unwrapped bin
        image = torch.div(target, bins, rounding_mode="floor")  # cell image of that bin
        wrapped_bin = target - image * bins
        tflat = (wrapped_bin[..., 0] * nb[1] + wrapped_bin[..., 1]) * nb[2] + wrapped_bin[..., 2]
        cand = table[tflat]  # (C, K, depth)
        valid = cand >= 0
        ci, ck, cs = valid.nonzero(as_tuple=True)
        i = centres[ci]
        j = cand[ci, ck, cs]
        img = image[ci, ck].to(torch.float64)  # (P, 3) lattice images
        shift = img @ cell_t
        d = wrapped[j] + shift - wrapped[i]
        r2 = (d * d).sum(1)
        keep = r2 < cut2
        same = (i == j) & (img == 0).all(1)
        keep &= ~same
        i, j, shift = i[keep], j[keep], shift[keep]
        out_i.append(i)
        out_j.append(j)
        # offsets relative to the given (not wrapped) positions
        out_s.append(shift + (wrapped[j] - pos[j].to(torch.float64))
                     - (wrapped[i] - pos[i].to(torch.float64)))
    i, j, s = torch.cat(out_i), torch.cat(out_j), torch.cat(out_s)
    return i, j, s.to(dtype)

