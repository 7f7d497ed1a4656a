"""The frames whose labels the redesign of the labelling path must leave unchanged.

``frames(gcicenet)`` builds them deterministically: the first frame of every GCIceNet
run (real TIP4P/Ice MD: seven ices, liquid, the dense phase T), noised GenIce lattices
that exercise each regional check (XII: orbits; IV: averaged repeat distance; TS1 and
HS1: topology; C15: topology renames it sII), a liquid box written 2×2×2 (replicas), and
an ice|liquid slab (real Ih below, real liquid above). ``tests/data/golden-labels.npz``
holds the labels the pre-redesign code gave them (``python tests/scripts/golden_frames.py
--write``); ``tests/test_golden.py`` and ``tests/scripts/golden_mpi.py`` compare."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden-labels.npz"
TAGS = ("1h", "1c", "2", "3", "6", "7", "sI", "w", "T")
LATTICES = {"12": 18.0, "4": 18.0, "TS1": 18.0, "HS1": 18.0, "C15": 18.0}


def _read(gcicenet: Path, tag: str):
    from icemon import read_frames

    return next(iter(read_frames(gcicenet / f"md_{tag}_dev.xtc", gcicenet / f"md_{tag}.tpr",
                                 "name OW", stop=1)))


def slab(gcicenet: Path):
    """Real Ih (lower half of its box along z) beside real liquid (the GCIceNet liquid box
    tiled over the upper half), liquid molecules closer than 2.5 Å to another removed."""
    from icemon import Frame
    from icemon.geometry.neighbors import neighbor_pairs

    ice, liq = _read(gcicenet, "1h"), _read(gcicenet, "w")
    cell = np.asarray(ice.cell, dtype=np.float64)
    inv = np.linalg.inv(cell)
    keep = ice.positions[(ice.positions @ inv)[:, 2] % 1.0 < 0.5]
    lc = np.diag(np.asarray(liq.cell))
    reps = np.ceil(np.diag(cell) / lc).astype(int)
    tiles = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1])
                      for k in range(reps[2])]) * lc
    water = (liq.positions % lc)[None] + tiles[:, None]
    water = water.reshape(-1, 3)
    frac = water @ inv
    water = water[((frac >= 0) & (frac < 1)).all(1) & (frac[:, 2] >= 0.5)]
    pos = np.concatenate([keep, water])
    # the tiling does not match the ice's periodicity: drop the later liquid molecule of
    # every pair closer than 2.5 Å (to the ice or to another liquid molecule)
    i, j, _ = neighbor_pairs(pos, cell, 2.5)
    later = np.maximum(i, j)
    pos = np.delete(pos, np.unique(later[later >= len(keep)]), axis=0)
    return Frame(pos, cell)


def nucleus():
    """A small relaxed mW nucleus (``tests/data/mw-nucleus.npz``, made with LAMMPS; see
    ``tests/test_growth.py``): (Frame, bool mask of the seed's 71 molecules)."""
    from icemon import Frame

    z = np.load(GOLDEN.with_name("mw-nucleus.npz"))
    seed = np.unpackbits(z["seed"])[: int(z["n"])].astype(bool)
    return Frame(z["positions"].astype(np.float64), z["cell"]), seed


def frames(gcicenet: Path) -> list[tuple[str, object]]:
    from icemon import Frame
    from icemon.lattices.references import reference

    out = [(f"gcicenet-{tag}", _read(gcicenet, tag)) for tag in TAGS]
    for lattice, size in LATTICES.items():
        a = reference(lattice, size)
        noise = np.random.default_rng(7).normal(0, 0.12, a.positions.shape)
        out.append((lattice, Frame(a.positions + noise, a.cell[:])))
    w = _read(gcicenet, "w")
    shifts = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ w.cell
    out.append(("w222", Frame(np.concatenate([w.positions + s for s in shifts]), 2 * w.cell)))
    out.append(("ice-liquid-slab", slab(gcicenet)))
    return out


if __name__ == "__main__" and "--write" in sys.argv:
    import torch

    from icemon import Pipeline

    torch.set_num_threads(1)
    gc = Path(__file__).resolve().parents[3] / "shared" / "data" / "gcicenet"
    pipe = Pipeline()
    labels = {}
    for name, frame in frames(gc):
        res = pipe.process(frame)
        labels[name] = res.labels
        counts = {pipe.model.phases[c]: int(n) for c, n in enumerate(res.counts) if n}
        print(name, len(res.labels), counts, flush=True)
    np.savez_compressed(GOLDEN, **labels)
