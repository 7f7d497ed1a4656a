"""Does the orbit check tell an impostor lattice from the ice it is read as (issue 14)?

A crystal of a phase fills every Wyckoff orbit of that phase in proportion to its
multiplicity; a lattice the model does not know, read as some ice, need not (ice XII
read as V, the clathrates TS1/HS1 read as sI/sII). The model matches each atom labelled
with an ice, by its own (not averaged) descriptor, to the nearest site of that ice
(:meth:`icemon.classification.checks.orbits.OrbitCheck.orbits`); a frame's ice whose worst-filled
orbit holds less than the model's floor (its share × ``orbit_floor``, derived from
synthetic ice) becomes ``unknown``. This prints, per frame, the labels with and without
the two regional checks (orbits, averaged repeat distances) and each checked ice's
smallest orbit population / share against its floor.

    python benchmarks/site_populations.py MODEL LATTICE [LATTICE ...]

LATTICE: a phase or GenIce2 lattice name, noised with σ = 0.12 Å (seed 7), or
``gci:TAG`` for the first two frames of a GCIceNet trajectory (evaluation only).
"""

from __future__ import annotations

import argparse

import numpy as np

from icemon import Frame, Pipeline
from icemon.classification.checks import RepeatCheck
from icemon.classification.classifier import PhaseClassifier
from icemon.lattices.references import reference

GCICENET = "../shared/data/gcicenet"


def share(labels: np.ndarray, phases: tuple[str, ...]) -> str:
    """The labels' phases by share, largest first (≥ 0.5 %)."""
    count = np.bincount(labels.astype(np.int64), minlength=len(phases)) / len(labels)
    return ", ".join(f"{phases[k]} {100 * count[k]:.1f} %" for k in np.argsort(-count)
                     if count[k] >= 0.005)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("lattices", nargs="+")
    a = p.parse_args()
    pipe = Pipeline(a.model)
    clf = pipe.classifier
    sites, repeat = clf.check("orbits"), clf.check("repeat")
    if sites is None or sites.floor is None or repeat is None:
        raise SystemExit(f"{a.model} has no orbit check (a model built before it)")
    # the nearest reference and the repeat check of single atoms: no regional rule
    bare = PhaseClassifier(clf.reference, [RepeatCheck(repeat.threshold, repeat.k, 0.0)])
    phases = pipe.model.phases
    print("orbit floors: " + ", ".join(f"{phases[k]} {f:.3f}" for k, f in
                                       enumerate(sites.floor) if f > 0))
    rng = np.random.default_rng(7)
    frames: list[tuple[str, Frame]] = []
    for lat in a.lattices:
        if lat.startswith("gci:"):
            from icemon.io.readers import read_frames

            tag = lat[4:]
            frames += [(f"{lat}#{k}", f) for k, f in enumerate(read_frames(
                f"{GCICENET}/md_{tag}_dev.xtc", f"{GCICENET}/md_{tag}.tpr", stop=2))]
        else:
            atoms = reference(lat, 18.0)
            x = atoms.positions + rng.normal(0, 0.12, atoms.positions.shape)
            frames.append((lat, Frame(x, atoms.cell[:])))
    print(f"{'frame':10s} {'O':>5s}  labels | without the regional checks | worst orbit / "
          f"share (floor)")
    for name, frame in frames:
        res = pipe.process(frame)
        den = res.denoised
        own = pipe.soap(den, frame.cell)
        without = bare.label_frame(own, den, frame.cell).labels
        a_ = clf.reference.assess(own, den, frame.cell)
        ratios = sites.ratios(without, sites.orbits(a_.own, a_.nearest))
        text = "; ".join(f"{phases[k]} {r:.2f} ({sites.floor[k]:.2f})"
                         for k, (r, n) in ratios.items() if sites.floor[k] > 0)
        print(f"{name:10s} {frame.n_atoms:5d}  {share(res.labels, phases)} | "
              f"{share(without, phases)} | {text or '-'}")


if __name__ == "__main__":
    main()
