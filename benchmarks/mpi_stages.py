"""Stage times of one frame shared by MPI ranks, outside any MD engine.

One 8,064-O mW ice Ih frame with σ = 0.12 Å Gaussian noise (8 copies with different
noise), classified by a compiled ``Pipeline(comm=...)`` with one torch thread per rank
after two warm-up frames; prints the median wall time per frame and per stage on rank 0.
Run it with 1 and 2 ranks, alternating, and compare adjacent runs (the shared VM drifts):

    for n in 1 2 1 2; do mpirun -np $n python benchmarks/mpi_stages.py; done
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch
from mpi4py import MPI

from icemon import Frame, Pipeline
from icemon.demo import mw


def main() -> None:
    torch.set_num_threads(1)
    comm = MPI.COMM_WORLD
    atoms = mw.ice("Ih", 60.0)
    cell = np.asarray(atoms.cell[:])
    rng = np.random.default_rng(0)
    frames = [Frame(atoms.positions + rng.normal(0, 0.12, atoms.positions.shape), cell)
              for _ in range(8)]
    pipe = Pipeline(sys.argv[1] if len(sys.argv) > 1 else None,
                    comm=comm if comm.size > 1 else None, compile=True)
    pipe.process(frames[0])
    pipe.process(frames[1])
    times: dict[str, list[float]] = {}
    for frame in frames:
        comm.Barrier()
        t0 = time.perf_counter()
        result = pipe.process(frame)
        comm.Barrier()
        times.setdefault("wall", []).append(time.perf_counter() - t0)
        for k, v in result.timings.items():
            times.setdefault(k, []).append(v)
    if comm.rank == 0:
        print(f"{comm.size} rank(s), {len(atoms)} O, median s per frame: "
              + ", ".join(f"{k} {np.median(v):.3f}" for k, v in times.items()), flush=True)


if __name__ == "__main__":
    main()
