"""Can a phase be added to the classifier alone, without retraining the score network?

The shipped network was trained on the seven ices only. Here its classifier is refitted on
the ideal references of the seven ices plus sII, sH and ice V (GenIce2 CS2, HS3, 5), the
liquid threshold re-derived by the shipped rule (99.9 % quantile of denoised synthetic ice,
σ = 0.15 Å, every reference phase), and then:

- noised GenIce lattices of all ten (σ = 0.12 Å per component, another seed, another
  supercell) are denoised with the shipped network and classified: % labelled by their
  own name, % liquid;
- the shared GCIceNet MD frames (seven ices, liquid) are classified as in
  ``benchmarks/gcicenet.py`` to see what the three extra references cost the others.

Nothing here is tuned on the MD frames; they are only evaluated.

    python benchmarks/new_phases.py [--phases sII sH V] [--frames 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from icemon import read_frames
from icemon.classification.reference import shell_average
from icemon.execution.pipeline import Pipeline
from icemon.lattices.references import reference
from icemon.model.modelfile import IcemonModel
from icemon.phases import SEVEN_ICES
from icemon.training.calibrate import fit_classifier
from icemon.training.train import noisy_sample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gcicenet"
TAGS = {"1h": "Ih", "1c": "Ic", "2": "II", "3": "III", "6": "VI", "7": "VII", "sI": "sI",
        "w": "liquid", "T": "T"}


def scores(pipe: Pipeline, clf, pos: np.ndarray, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(nearest code, shell-averaged score) of every atom after the network's passes."""
    den = pipe.denoiser(pos, cell).positions
    feats = shell_average(pipe.soap(den, cell), den, cell, clf.shell)
    return clf.reference.nearest(feats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phases", nargs="+", default=["sII", "sH", "V"])
    p.add_argument("--frames", type=int, default=2, help="GCIceNet frames per phase")
    p.add_argument("--model", default=None)
    a = p.parse_args()
    t0 = time.perf_counter()
    model = IcemonModel.load(a.model)
    pipe = Pipeline(model)
    phases = tuple(SEVEN_ICES) + tuple(a.phases)
    clf = fit_classifier(pipe.soap, model.classifier.reference.components.shape[0],
                         shell=model.classifier.shell, phases=phases)
    # threshold: the shipped rule on every reference phase (σ = 0.15 Å, 4 % strain)
    rng = np.random.default_rng(0)
    cal = []
    for ph in phases:
        atoms = reference(ph, min_height=2 * pipe.soap.config.r_cut)
        base = (atoms.positions, np.asarray(atoms.cell[:]))
        for _ in range(4):
            pos, cell, _ = noisy_sample(rng, base, 0.15, 0.04)
            cal.append(scores(pipe, clf, pos, cell)[1])
    threshold = float(np.quantile(np.concatenate(cal), 0.999))
    print(f"model {model.name}; classifier refitted on {', '.join(phases)}; threshold "
          f"{threshold:.3f} (shipped, seven ices: {model.classifier.threshold:.3f})")

    print("\nnoised ideal lattices (σ = 0.12 Å, seed 1, min height 18 Å), denoised:")
    print(f"{'phase':>6s} {'atoms':>6s} {'own %':>7s} {'liquid %':>8s}  most common other")
    rng = np.random.default_rng(1)
    for code, ph in enumerate(phases):
        atoms = reference(ph, min_height=18.0)
        pos, cell, _ = noisy_sample(rng, (atoms.positions, np.asarray(atoms.cell[:])), 0.12, 0.0)
        near, sc = scores(pipe, clf, pos, cell)
        lab = np.where(sc > threshold, -1, near)
        other = lab[(lab != code) & (lab >= 0)]
        common = phases[np.bincount(other).argmax()] if len(other) else "-"
        print(f"{ph:>6s} {len(lab):6d} {100 * (lab == code).mean():7.2f} "
              f"{100 * (lab == -1).mean():8.2f}  {common}")

    print(f"\nGCIceNet MD frames ({a.frames} per phase), denoised:")
    print(f"{'data':>6s} {'phase':>7s} {'right %':>8s} {'liquid %':>8s}  labels")
    for tag, ph in TAGS.items():
        frames = list(read_frames(DATA / f"md_{tag}_dev.xtc", DATA / f"md_{tag}.tpr",
                                  "name OW", stop=a.frames))
        labs = []
        for f in frames:
            near, sc = scores(pipe, clf, f.positions, f.cell)
            labs.append(np.where(sc > threshold, -1, near))
        lab = np.concatenate(labs)
        names = np.array([*phases, "liquid"])[lab]  # -1 → liquid
        right = (names == ph).mean() * 100 if ph != "T" else float("nan")
        top = ", ".join(f"{n} {100 * (names == n).mean():.2f}%"
                        for n in sorted(set(names), key=lambda n: -(names == n).sum())[:3])
        print(f"{tag:>6s} {ph:>7s} {right:8.3f} {100 * (lab == -1).mean():8.3f}  {top}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
