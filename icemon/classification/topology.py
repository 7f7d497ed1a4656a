"""Coordination sequences of the hydrogen-bond network: which framework a clathrate is.

The sI, sII and sH clathrates, and the many other frameworks built of the same cages
(TS1, HS1, the space fullerenes of GenIce), share their molecules' surroundings: within
SOAP's 6 Å every vertex is four-coordinated and lies on the same pentagonal and
hexagonal faces, so a descriptor, or a vote over 7 Å, names the nearest known clathrate
whatever the framework is (measured: TS1 94.5 % sI, HS1 88.8 % sII). What tells them
apart is how the cages pack, and that is topology: the *coordination sequence* of a
vertex, the number of vertices 1, 2, …, k bonds away in the network, is what the IZA
uses to identify zeolite frameworks. Every site of sI has one of three sequences and
no site of TS1 has any of them from six bonds on (HS1 against sII likewise; the GenIce
lattice C15, topologically sII, against sI from four).

Sequences are topological: strain and the thermal motion left after denoising do not
change them while no bond breaks. Measured on denoised frames (runs of the phases
benchmark): TIP4P/Ice sI, sII, sH at 200 K, the GCIceNet sI frames and synthetic sI,
sII, sH strained by 4 % with σ = 0.15 Å noise, every judged atom has a sequence of its
lattice, up to ten bonds; TS1, HS1 and C15 read as a known clathrate have 97–100 % of
their judged atoms without one at six bonds.

The network's bonds are the O–O pairs within a cutoff taken from the ideal lattices
(:func:`bond_cutoff`). Sequences count periodic images as distinct vertices, so that a
small cell gives a crystal's sequences and not its cell's atoms.
"""

from __future__ import annotations

import numpy as np

TOPOLOGY_DEPTH = 6
"""Bonds counted: a vertex's own cages close within three bonds (pentagons and hexagons),
six reach the cages around them (≈ 12 Å, one unit cell of sI or sH). Cost grows as
depth³; measured, all thermal and strained clathrates have their lattice's sequences up
to ten."""

TOPOLOGY_SAMPLE = 64
"""At most this many atoms of each checked ice (an evenly strided, deterministic subset)
have their sequence computed per frame: the check is a share, and 64 atoms measure a
share of 0.5 to ±0.06 (crystals of the known clathrates have 0, the other frameworks
0.97–1)."""

TOPOLOGY_MAJORITY = 0.5
"""A frame's atoms of a checked ice stay that ice when at least this share of its judged
atoms has sequences of its lattice; otherwise they take the name of the member whose
sequences more than this share has, or become ``unknown``: the majority decides, as in
the family vote. Crystals of the known clathrates show no foreign sequence (above), the
unknown frameworks nearly all foreign ones."""


def coordination_sequences(positions: np.ndarray, cell: np.ndarray, cutoff: float,
                           depth: int, centres: np.ndarray | None = None,
                           member: np.ndarray | None = None, valence: int | None = None,
                           pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Coordination sequences of the atoms ``centres`` (indices; default all) in the
    network of bonds shorter than ``cutoff`` Å of a periodic frame (``positions`` (N, 3),
    ``cell`` Å): (m, depth) int64, entry k the number of vertices (atoms, periodic images
    distinct) k + 1 bonds away; and (m,) bool *judged*: the centre and every vertex fewer
    than ``depth`` bonds away belong to ``member`` ((N,) bool; default all), so that the
    sequence describes that structure and not an interface. ``valence``: only atoms with
    that many bonds are members (a vacancy or a broken bond changes the sequences of
    every atom a few bonds around it; those are then not judged, rather than misfits).
    ``pairs``: the bonds (i, j, images) if already listed (a frame's neighbour service).

    A breadth-first search of all centres at once on (centre, atom, image) keys; a vertex
    new at step k is a neighbour of step k − 1 seen neither at step k − 1 nor k − 2 (a
    neighbour of a vertex k − 1 bonds away is k − 2, k − 1 or k away)."""
    from icemon.geometry.neighbors import neighbor_pairs

    positions = np.asarray(positions, dtype=np.float64)
    n = len(positions)
    centres = np.arange(n) if centres is None else np.asarray(centres, dtype=np.int64)
    m = len(centres)
    out = np.zeros((m, depth), dtype=np.int64)
    i, j, s = neighbor_pairs(positions, cell, cutoff) if pairs is None else pairs
    member = np.ones(n, dtype=bool) if member is None else np.asarray(member, dtype=bool)
    if valence is not None:
        member = member & (np.bincount(i, minlength=n) == valence)
    judged = member[centres].copy()
    if m == 0 or depth == 0:
        return out, judged
    order = np.argsort(i, kind="stable")
    j, s = j[order], s[order].astype(np.int64)
    start = np.concatenate([[0], np.cumsum(np.bincount(i, minlength=n))])
    reach = depth * max(1, int(np.abs(s).max(initial=0)))
    w = 2 * reach + 1

    def key(c: np.ndarray, a: np.ndarray, img: np.ndarray) -> np.ndarray:
        im = ((img[:, 0] + reach) * w + img[:, 1] + reach) * w + img[:, 2] + reach
        return (c * n + a) * (w ** 3) + im

    c, a = np.arange(m, dtype=np.int64), centres.copy()
    img = np.zeros((m, 3), dtype=np.int64)
    before, now = np.zeros(0, dtype=np.int64), np.sort(key(c, a, img))
    for k in range(depth):
        deg = start[a + 1] - start[a]
        rep = np.repeat(np.arange(len(a)), deg)
        edge = np.repeat(start[a] - (np.cumsum(deg) - deg), deg) + np.arange(int(deg.sum()))
        c2, a2, img2 = c[rep], j[edge], img[rep] + s[edge]
        keys = key(c2, a2, img2)
        order = np.argsort(keys)  # distinct keys, each with one edge that reaches it
        keys = keys[order]
        distinct = np.concatenate([[True], keys[1:] != keys[:-1]])
        keys, first = keys[distinct], order[distinct]
        new = ~(_within(keys, now) | _within(keys, before))
        before, now = now, keys[new]
        c, a, img = c2[first[new]], a2[first[new]], img2[first[new]]
        out[:, k] = np.bincount(c, minlength=m)
        if k < depth - 1:
            judged[c[~member[a]]] = False
    return out, judged


def _within(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """(n,) bool: which ``keys`` are among ``sorted_keys`` (ascending)."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def bond_gap(positions: np.ndarray, cell: np.ndarray) -> tuple[float, float]:
    """(longest bond, shortest non-bonded distance) Å of an ideal lattice read as a
    four-coordinated network: the largest fourth-nearest and the smallest fifth-nearest
    neighbour distance over its atoms (the first is smaller only for such a network)."""
    from icemon.geometry.neighbors import neighbor_list

    pos = np.asarray(positions, dtype=np.float64)
    i, j, shifts = neighbor_list(pos, cell, 6.0)
    d = np.linalg.norm(pos[j] + shifts - pos[i], axis=1)
    order = np.lexsort((d, i))
    i, d = i[order], d[order]
    first = np.searchsorted(i, np.arange(len(pos)))
    return float(d[first + 3].max()), float(d[first + 4].min())


def bond_cutoff(lattices: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Å, the hydrogen-bond cutoff of four-coordinated ideal lattices ((positions, cell)
    each): midway between the longest bond and the shortest non-bonded distance over all
    of them (:func:`bond_gap`), the middle of the gap that thermal motion left after
    denoising has to cross to change the network."""
    gaps = [bond_gap(pos, cell) for pos, cell in lattices]
    longest, shortest = max(g[0] for g in gaps), min(g[1] for g in gaps)
    if not longest < shortest:
        raise ValueError(f"no gap between bonded ({longest:.2f} Å) and non-bonded "
                         f"({shortest:.2f} Å) neighbours: not four-coordinated lattices")
    return 0.5 * (longest + shortest)
