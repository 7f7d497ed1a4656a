"""Which per-phase unit rule: nearest by raw distance then divided by that phase's unit
(shipped), or the smallest distance/unit over every reference environment.

A model with per-phase units (``phase_scale``) scores each atom in the unit of a phase:
its own ices' spread. The shipped rule takes the nearest reference environment by raw
distance and divides by the unit of that environment's phase. The alternative takes,
over every reference environment, the smallest distance divided by the unit of its
phase: an atom between a tight and a loose phase then goes to the loose one sooner. Both
rules label the same frames in one run (the alternative is swapped in for the second
pass; nothing is tuned), and every number below is printed for both:

- GCIceNet TIP4P/Ice frames (``--frames`` per phase, the shared ``dev`` files): % of the
  seven ices by their own name, % liquid as liquid, what T becomes;
- noised ideal lattices (σ = 0.12 Å, seed 1) of every reference phase: % own name;
  and of lattices the model does not know (IV, XII, XVII, 0, TS1, HS1): % unknown;
- a TIP4P/Ice ice Ih | liquid slab (no MD): ice recall 0–2 and 2–4 Å from the interface
  and ice on the liquid side.

    python benchmarks/unit_rule.py [--frames 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from icemon import Pipeline, read_frames
from icemon.classification.reference import NearestReference

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "gcicenet"
TAGS = {"1h": "Ih", "1c": "Ic", "2": "II", "3": "III", "6": "VI", "7": "VII", "sI": "sI",
        "w": "liquid", "T": "T"}
UNKNOWN = ["4", "12", "17", "0", "TS1", "HS1"]

SHIPPED = NearestReference._nearest


def scaled_nearest(self, y: np.ndarray, resid2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The alternative rule: argmin over references of distance / unit of its phase."""
    if self.phase_scale is None:
        return SHIPPED(self, y, resid2)
    d2 = ((y * y).sum(1)[:, None] - 2.0 * y @ self.ref_features.T
          + (self.ref_features**2).sum(1)[None, :])
    d = np.sqrt(np.maximum(d2, 0.0) + resid2[:, None]) / self.phase_scale[self.ref_labels][None, :]
    best = np.argmin(d, axis=1)
    return self.ref_labels[best], d[np.arange(len(y)), best]


def measure(pipe: Pipeline, frames: int, every: list[np.ndarray]) -> dict[str, str]:
    """The table's numbers under the rule in force; every frame's labels go to ``every``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT / "tests" / "scripts"))
    from golden_frames import slab
    from phases import noised

    names = np.array(pipe.model.phases)
    out: dict[str, str] = {}
    process = pipe.process

    def labelled(frame):
        res = process(frame)
        every.append(res.labels)
        return res

    pipe.process = labelled
    for tag, phase in TAGS.items():
        frs = list(read_frames(DATA / f"md_{tag}_dev.xtc", DATA / f"md_{tag}.tpr",
                               "name OW"))[:frames]
        labels = np.concatenate([names[pipe.process(f).labels] for f in frs])
        if phase == "T":
            top = sorted(set(labels), key=lambda n: -(labels == n).sum())[:2]
            out["GCIceNet T"] = ", ".join(f"{n} {100 * (labels == n).mean():.1f}%" for n in top)
        else:
            out[f"GCIceNet {phase}"] = f"{100 * (labels == phase).mean():.3f}"
    rng = np.random.default_rng(1)
    for phase in [p for p in names if p not in ("liquid", "unknown")]:
        labels = names[pipe.process(noised(phase, rng)).labels]
        out[f"noised {phase}"] = f"{100 * (labels == phase).mean():.2f}"
    for phase in UNKNOWN:
        labels = names[pipe.process(noised(phase, rng)).labels]
        out[f"unknown {phase}"] = f"{100 * (labels == 'unknown').mean():.2f}"
    frame = slab(DATA)
    z = (frame.positions @ np.linalg.inv(frame.cell))[:, 2] % 1.0 * frame.cell[2, 2]
    half = 0.5 * frame.cell[2, 2]
    ice_true, depth = z < half, np.minimum(z, half - z)
    labels = names[pipe.process(frame).labels]
    ice = ~np.isin(labels, ["liquid", "unknown"])
    for lo in (0, 2):
        m = ice_true & (depth >= lo) & (depth < lo + 2)
        out[f"slab ice {lo}-{lo + 2} Å"] = f"{ice[m].mean():.3f}"
    out["slab liquid side as ice"] = f"{ice[~ice_true].mean():.4f}"
    del pipe.process
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=3, help="GCIceNet frames per phase")
    p.add_argument("--model", default=None)
    a = p.parse_args()
    pipe = Pipeline(a.model)
    print(f"model {pipe.model.name}; per-phase units: "
          f"{pipe.classifier.reference.phase_scale is not None}", flush=True)
    labels_a: list[np.ndarray] = []
    labels_b: list[np.ndarray] = []
    shipped = measure(pipe, a.frames, labels_a)
    NearestReference._nearest = scaled_nearest
    try:
        alternative = measure(pipe, a.frames, labels_b)
    finally:
        NearestReference._nearest = SHIPPED
    print(f"\n{'':28s} {'nearest, then unit':>20s} {'min distance/unit':>20s}")
    for key in shipped:
        flag = "" if shipped[key] == alternative[key] else "  *"
        print(f"{key:28s} {shipped[key]:>20s} {alternative[key]:>20s}{flag}")
    differ = sum(int((x != y).sum()) for x, y in zip(labels_a, labels_b))
    total = sum(len(x) for x in labels_a)
    print(f"atoms labelled differently by the two rules: {differ} of {total}")
    pipe.close()


if __name__ == "__main__":
    main()
