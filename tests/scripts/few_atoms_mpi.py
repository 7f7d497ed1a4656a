"""Under ``mpirun -np N``: frames with fewer oxygens than ranks (the 2-oxygen primitive
cell of ice Ic, and 3 cells of it) classified by the ranks together; rank 0 prints a JSON
object {oxygens: [ranks' labels, serial labels]}."""

import json

import numpy as np
import torch
from ase.build import bulk
from mpi4py import MPI

from icemon import Frame, Pipeline

torch.set_num_threads(1)
comm = MPI.COMM_WORLD
shared, serial = Pipeline(comm=comm), Pipeline() if comm.rank == 0 else None
out = {}
for cells in (1, 3):
    atoms = bulk("O", "diamond", a=6.35).repeat((cells, 1, 1))  # ice Ic's oxygen lattice
    frame = Frame(atoms.positions, atoms.cell[:], np.arange(len(atoms)))
    labels = shared.process(frame).labels.tolist()
    if comm.rank == 0:
        out[len(atoms)] = [labels, serial.process(frame).labels.tolist()]
if comm.rank == 0:
    print(json.dumps(out), flush=True)
