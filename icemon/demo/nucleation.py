"""``icemon demo --nucleation``: watch an ice seed grow in supercooled mW water, live, until
a stop condition ends the run.

What it does, in-process and serial (about two minutes on 2 cores):

1. cuts a spherical seed of :data:`SEED_RADIUS` Å out of an mW ice Ih crystal
   (:mod:`icemon.demo.mw`) and melts everything around it at 600 K (15 ps, the seed
   held), then quenches the liquid to :data:`TEMPERATURE` (5 ps, the seed held);
2. runs the whole box at :data:`TEMPERATURE` K (NPT, 1 atm) with
   :func:`icemon.hooks.lammps.attach` classifying every ``every`` steps and a stop
   condition, ``largest_cluster >= target`` (default: 1.5 × the seed's first reading):
   each frame prints the step, time, ice fraction and largest ice cluster with its
   phases, and the run ends at the frame that meets the condition;
3. prints the report (onset and induction time of the target size) and writes the
   plots (largest cluster against time, phase fractions) into ``outdir``.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from icemon.demo.live import compile_note, start

TEMPERATURE = 220.0
"""K: 55 K below mW's melting point (274.6 K), where a seed of this size grows."""
SEED_RADIUS = 13.0
"""Å: about 280 molecules of ice Ih."""
BOX = 40.0
"""Å, the smallest box height: 2,880 molecules."""
DEFAULT_STEPS = 30000
"""The longest production run (300 ps); the seed grows ~40 % per 100 ps at 220 K."""
DEFAULT_EVERY = 500
LOG_NAME = "icemon-nucleation.h5"
SOURCE = "icemon demo"


def cluster_line(result: Any, rule: Any, elapsed: float) -> str:
    """One live line: step, time, ice %, the largest cluster and its phases."""
    import numpy as np

    clusters = result.clusters(rule)
    comp = clusters.composition
    parts = " ".join(f"{result.phases[i]} {comp[i]}" for i in np.argsort(-comp)[:3]
                     if comp[i] > 0)
    return (f"step {result.frame.step:6d}  t {result.frame.time:6.1f} ps  ice "
            f"{100 * result.ice.mean():5.1f}%  largest cluster {clusters.largest:5d} "
            f"({parts or 'no ice'})  [{elapsed:4.0f} s]")


def run_nucleation_demo(outdir: str | Path, steps: int = DEFAULT_STEPS,
                        every: int = DEFAULT_EVERY, target: int | None = None,
                        quiet: bool = False, *, temperature: float = TEMPERATURE,
                        seed_radius: float = SEED_RADIUS, box: float = BOX,
                        out: TextIO | None = None, **monitor: Any) -> Path:
    """Run the nucleation demo (module docstring); returns the log's path.

    Args:
        outdir: folder for the log, plots and LAMMPS files (created if needed).
        steps: the longest production run, MD steps of 10 fs.
        every: classify every ``every`` steps.
        target: stop once the largest ice cluster has this many molecules (default:
            1.5 × the first frame's).
        quiet: print nothing; out: where to print (default stdout).
        temperature, seed_radius, box: K, Å, Å (module constants by default).
        monitor: more keywords of :func:`icemon.hooks.lammps.attach`.
    """
    t_start = time.perf_counter()
    lammps, say, outdir, log = start(outdir, LOG_NAME, steps, every, quiet, out)
    import numpy as np

    import icemon.hooks.lammps
    from icemon.analysis.report import report
    from icemon.demo import mw
    from icemon.geometry.clusters import ClusterRule

    out = out or sys.stdout
    crystal = mw.ice("Ih", box)
    data = mw.write_data(crystal, outdir / "ice.data")
    c = 0.5 * np.asarray(crystal.cell[:]).sum(0)
    say(f"icemon demo --nucleation: {len(crystal)} mW water molecules, a seed of radius "
        f"{seed_radius:g} Å of ice Ih in liquid at {temperature:g} K")
    rule = ClusterRule()
    first: list[int] = []
    goal = [target]

    def grown(result: Any) -> bool:
        largest = result.clusters(rule).largest
        if not first:
            first.append(largest)
            if goal[0] is None:
                goal[0] = max(int(1.5 * largest), 50)
            say(f"stop condition: largest_cluster >= {goal[0]}")
        return largest >= goal[0]

    grown.__name__ = "largest_cluster >= target"

    def on_frame(result: Any) -> None:
        say(cluster_line(result, rule, time.perf_counter() - t_start))

    lmp = lammps(cmdargs=["-screen", "none", "-log", str(outdir / "log.lammps")])
    try:
        lmp.commands_list(mw.system_commands(data))
        say("melting around the seed at 600 K (15 ps), quenching (5 ps) ...")
        lmp.commands_list([
            *mw.seed_commands(c, seed_radius, melt_steps=1500,
                              quench_temperature=temperature, quench_steps=500),
            "unfix hold", "reset_timestep 0",
            f"velocity all create {temperature} 777 mom yes rot yes",
            f"fix md all npt temp {temperature} {temperature} 1000 iso 1.0 1.0 10000"])
        say(f"running up to {steps} steps of 10 fs ({steps * 10 / 1000:g} ps), classifying "
            f"every {every} steps into {log}:")
        compile_note(say, monitor.get("compile"))
        with icemon.hooks.lammps.attach(
                lmp, log, every=int(every), oxygens=1, on_frame=on_frame, stop_when=grown,
                clusters=rule, source=f"{SOURCE} --nucleation: mW seed at {temperature:g} K",
                **monitor) as mon:
            lmp.command(f"run {int(steps)}")
        stopped = mon.stopped
    finally:
        lmp.close()
    say(f"the stop condition ended the run at step {stopped[0]}" if stopped else
        f"the seed did not reach {goal[0]} molecules in {steps} steps")
    say("")
    report(log, outdir, out=io.StringIO() if quiet else out, onset=goal[0])
    say(f"\nicemon demo --nucleation: done in {time.perf_counter() - t_start:.0f} s; log "
        f"{log}, plots in {outdir}/")
    return log
