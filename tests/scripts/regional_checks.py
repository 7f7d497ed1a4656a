"""Under ``mpirun -np 2``: frames whose labels depend on the regional checks of
``unknown`` (the orbit check, the averaged repeat distance, the family vote, the
topology check, a replicated box's copies) and on the growth check's ordered cores (a
small mW nucleus), classified
by the ranks together and, on rank 0, by a serial pipeline. Rank 0 prints a JSON list:
per frame, its name, whether the labels are identical and the shared labels' counts."""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from mpi4py import MPI

from icemon import Frame, Pipeline, read_frames
from icemon.lattices.references import reference

sys.path.insert(0, str(Path(__file__).parent))
from golden_frames import nucleus  # noqa: E402

comm = MPI.COMM_WORLD
torch.set_num_threads(1)
gcicenet = sys.argv[1]
frames = []
# XII: the orbit check; IV: the averaged repeat distance; TS1: the topology check
for lattice in ("12", "4", "TS1"):
    a = reference(lattice, 18.0)
    frames.append((lattice, Frame(a.positions + np.random.default_rng(7).normal(
        0, 0.12, a.positions.shape), a.cell[:])))
# thermal sI: 2-3 % of its atoms read as sII before the family vote
frames.append(("sI", next(iter(read_frames(f"{gcicenet}/md_sI_dev.xtc",
                                            f"{gcicenet}/md_sI.tpr", stop=1)))))
# a liquid box written 2×2×2: its exact copies are one atom for the repeat check
w = next(iter(read_frames(f"{gcicenet}/md_w_dev.xtc", f"{gcicenet}/md_w.tpr", stop=1)))
shifts = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ w.cell
frames.append(("w222", Frame(np.concatenate([w.positions + s for s in shifts]), 2 * w.cell)))
# a small mW nucleus only the growth check's ordered cores find
frames.append(("nucleus", nucleus()[0]))
shared = Pipeline(comm=comm)
serial = Pipeline() if comm.rank == 0 else None
out = []
for name, frame in frames:
    labels = shared.process(frame).labels
    if comm.rank == 0:
        ref = serial.process(frame).labels
        out.append({"frame": name, "same": bool(np.array_equal(labels, ref)),
                    "counts": np.bincount(labels, minlength=len(shared.model.phases)).tolist()})
if comm.rank == 0:
    print(json.dumps(out), flush=True)
