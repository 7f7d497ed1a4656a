"""Under ``mpirun -np N``: the golden frames (:mod:`golden_frames`) classified by the
ranks together; rank 0 prints a JSON object {frame name: whether its labels equal the
stored ones}."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from golden_frames import GOLDEN, frames  # noqa: E402

from icemon import Pipeline  # noqa: E402

torch.set_num_threads(1)
comm = MPI.COMM_WORLD
golden = np.load(GOLDEN)
pipe = Pipeline(comm=comm)
out = {name: bool(np.array_equal(pipe.process(frame).labels, golden[name]))
       for name, frame in frames(Path(sys.argv[1]))}
if comm.rank == 0:
    print(json.dumps(out), flush=True)
