"""What the OpenMM reporter costs the engine: wall time of the same OpenMM run with and
without icemon attached, in one sitting.

Ice Ih as rigid TIP3P water (GenIce hydrogens; ``--height`` Å box, PME 0.9 nm), Langevin
at 50 K, 2 fs steps, OpenMM's CPU platform with ``--threads`` threads. Each round runs
``--steps`` steps plain, then the same number with ``icemon.hooks.openmm.attach`` (shipped
defaults, one frame per ``--every`` steps; attaching, which loads the model once, is not
timed), alternating ``--rounds`` times; the overhead
is the median over rounds of (monitored − plain) / plain, and the per-frame cost is the
monitor's own time per frame.

    python benchmarks/openmm_overhead.py [--height 30] [--steps 4000] [--every 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--height", type=float, default=30.0, help="smallest box height, Å")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--every", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="OpenMM CPU threads")
    a = p.parse_args()
    import openmm
    from openmm import app, unit

    import icemon.hooks.openmm
    from icemon.demo import tip4p

    atoms = tip4p.ice("Ih", a.height)
    top = app.Topology()
    chain = top.addChain()
    for _ in range(len(atoms) // 3):
        res = top.addResidue("HOH", chain)
        o = top.addAtom("O", app.element.oxygen, res)
        for name in ("H1", "H2"):
            top.addBond(o, top.addAtom(name, app.element.hydrogen, res))
    top.setPeriodicBoxVectors([openmm.Vec3(*row) for row in np.asarray(atoms.cell[:]) / 10]
                              * unit.nanometer)
    system = app.ForceField("tip3p.xml").createSystem(
        top, nonbondedMethod=app.PME, nonbondedCutoff=0.9 * unit.nanometer,
        constraints=app.HBonds, rigidWater=True)
    integrator = openmm.LangevinMiddleIntegrator(50 * unit.kelvin, 1 / unit.picosecond,
                                                 0.002 * unit.picoseconds)
    sim = app.Simulation(top, system, integrator, openmm.Platform.getPlatformByName("CPU"),
                         {"Threads": str(a.threads)})
    sim.context.setPositions(atoms.positions / 10 * unit.nanometer)
    sim.minimizeEnergy(maxIterations=200)
    sim.context.setVelocitiesToTemperature(50 * unit.kelvin, 7)
    sim.step(200)  # warm-up
    print(f"{len(atoms) // 3} TIP3P molecules, OpenMM {openmm.__version__} CPU "
          f"({a.threads} threads), {a.steps} steps per run, a frame every {a.every}",
          flush=True)
    ratios, per_frame = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            t0 = time.perf_counter()
            sim.step(a.steps)
            plain = time.perf_counter() - t0
            log = Path(tmp) / f"r{r}.h5"
            with icemon.hooks.openmm.attach(sim, log, every=a.every) as hook:
                t0 = time.perf_counter()  # the run only: loading the model happens once
                hook.run(a.steps)
                monitored = time.perf_counter() - t0
            frames = hook.n_frames
            ratios.append((monitored - plain) / plain)
            per_frame.append(hook.monitor.seconds / max(frames, 1))
            print(f"round {r}: plain {plain:.2f} s, monitored {monitored:.2f} s "
                  f"({frames} frames): overhead {100 * ratios[-1]:+.1f} %", flush=True)
    print(f"median overhead {100 * np.median(ratios):+.1f} % (rounds: "
          f"{', '.join(f'{100 * x:+.1f}' for x in ratios)} %); monitor "
          f"{np.median(per_frame):.2f} s per frame")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
