"""Stacking-disordered ice: how sharply does a model tell hexagonal from cubic layers?

Ice grown or nucleated in simulations is rarely pure Ih: it is stacking-disordered (Isd),
hexagonal and cubic layers in sequence, and CHILL+ users count them molecule by molecule.
Shell averaging (the descriptor of each atom averaged over its neighbours within the
model's ``shell``) trades thermal noise for resolution across layers; this measures the
trade on oxygen lattices built layer by layer.

Oxygens of Ih and Ic are the same puckered hexagonal bilayers stacked differently: each
letter of a stacking sequence (A, B, C: lateral positions 0, (1/3, 2/3), (2/3, 1/3) of a
hexagonal cell with a = 4.51 Å) places two oxygens one vertical O–O bond (2.76 Å) apart,
and the next letter sits 4/3 of a bond higher. A letter whose two neighbours are equal
(…A B A…) is a hexagonal layer, else (…A B C…) cubic. Sequences:

- ``fault``: Ih with two stacking faults 12 layers apart (one cubic layer each);
- ``blocks``: alternating blocks of 6 hexagonal and 6 cubic layers;
- ``random``: each layer hexagonal or cubic with probability 1/2 (seed 0).

Each is noised with σ = 0.12 Å (seed 1) and classified; printed: the % of oxygens of
hexagonal layers labelled Ih and of cubic layers labelled Ic, and the labels layer by
layer (h/c: the layer's type; then the majority label of its oxygens).

    python benchmarks/stacking.py [--model M.npz ...] [--lateral 4]
"""

from __future__ import annotations

import argparse

import numpy as np

from icemon import Frame, Pipeline

BOND = 2.76
"""Å, O–O distance of the ideal layers."""


def letters(kind: str, rng: np.random.Generator) -> list[int]:
    """A periodic stacking sequence (0, 1, 2 = A, B, C) of the given kind."""
    for _ in range(1000):  # a random sequence of layer types closes on itself sometimes
        if kind == "fault":
            types = (["h"] * 11 + ["c"]) * 2
        elif kind == "blocks":
            types = (["h"] * 6 + ["c"] * 6) * 2
        else:
            types = [str(t) for t in rng.choice(["h", "c"], size=24)]
        for r in range(len(types)):  # where the sequence starts matters for its closure
            turned = types[r:] + types[:r]
            seq = [0, 1]
            for t in turned[1:-1]:
                seq.append(seq[-2] if t == "h" else 3 - seq[-1] - seq[-2])
            if seq[-1] != seq[0] and layer_types(seq) == turned:
                return seq
    raise RuntimeError(f"no periodic sequence for {kind}")


def layer_types(seq: list[int]) -> list[str]:
    """'h' or 'c' for each letter of a periodic sequence."""
    n = len(seq)
    return ["h" if seq[i - 1] == seq[(i + 1) % n] else "c" for i in range(n)]


def structure(seq: list[int], lateral: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions Å, cell Å, layer index of each oxygen) of a stacking sequence."""
    a = BOND * np.sqrt(8 / 3)
    h = 4 * BOND / 3
    cell = np.array([[a, 0, 0], [-a / 2, a * np.sqrt(3) / 2, 0], [0, 0, h * len(seq)]])
    shift = {0: (0.0, 0.0), 1: (1 / 3, 2 / 3), 2: (2 / 3, 1 / 3)}
    pos, layer = [], []
    for i, s in enumerate(seq):
        for dz in (0.0, BOND):
            for u in range(lateral):
                for v in range(lateral):
                    f = np.array([(shift[s][0] + u) / lateral, (shift[s][1] + v) / lateral, 0])
                    pos.append(f[:2] @ (cell[:2] * lateral)[:, :] + [0, 0, i * h + dz])
                    layer.append(i)
    cell[:2] *= lateral
    return np.array(pos), cell, np.array(layer)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=None)
    p.add_argument("--lateral", type=int, default=4, help="hexagonal cells along a and b")
    a = p.parse_args()
    rng = np.random.default_rng(0)
    frames = {}
    for kind in ("fault", "blocks", "random"):
        seq = letters(kind, rng)
        pos, cell, layer = structure(seq, a.lateral)
        noisy = pos + np.random.default_rng(1).normal(0, 0.12, pos.shape)
        frames[kind] = (seq, Frame(noisy, cell), layer)
    for model in a.model or [None]:
        pipe = Pipeline(model)
        phases = pipe.model.phases
        ih, ic = phases.index("Ih"), phases.index("Ic")
        print(f"model {model or 'shipped'} ({pipe.model.name}), shell "
              f"{pipe.classifier.shell} Å")
        for kind, (seq, frame, layer) in frames.items():
            res = pipe.process(frame)
            types = np.array(layer_types(seq))[layer]
            hex_ok = np.mean(res.labels[types == "h"] == ih)
            cub_ok = np.mean(res.labels[types == "c"] == ic)
            per_layer = []
            for i, t in enumerate(layer_types(seq)):
                lab = np.bincount(res.labels[layer == i], minlength=len(phases)).argmax()
                per_layer.append(f"{t}:{phases[lab]}")
            print(f"  {kind:7s} {frame.n_atoms:5d} O  hexagonal layers Ih {100 * hex_ok:6.2f} %  "
                  f"cubic layers Ic {100 * cub_ok:6.2f} %")
            print("          " + " ".join(per_layer))


if __name__ == "__main__":
    main()
