"""Under ``mpirun -np 2``: a frame shared by the ranks that fails inside a denoising pass on
one rank only (overlapping atoms in rank 1's share; the network's embedding or a block
raising on rank 1),
then a good frame. Rank 0 prints a JSON list, one entry per rank: the errors each rank saw and the labels
of the good frame (every rank must raise the same error, and go on)."""

import json
import sys

import numpy as np
import torch
from mpi4py import MPI

from icemon import Frame, Pipeline
from icemon.demo import mw
from icemon.execution.mpi import CollectiveError, Decomposition

comm = MPI.COMM_WORLD
torch.set_num_threads(1)
mode = sys.argv[1]
atoms = mw.ice("Ih", 24.0)
cell = np.asarray(atoms.cell[:])
good = atoms.positions + np.random.default_rng(1).normal(0, 0.1, atoms.positions.shape)
pipe = Pipeline(comm=comm)
bad = good.copy()
if mode == "overlap":  # two atoms on one site, both owned by rank 1
    dec = Decomposition.build(good, cell, comm.size, pipe.soap.config.reach)
    a, b = dec.own(1)[len(dec.own(1)) // 2:][:2]
    bad[b] = bad[a] + 0.01
elif comm.rank == 1:  # the embedding or the second block fails on this rank only
    den = pipe.denoiser
    saved = den.embed, den.blocks[1]

    def failing(*args):
        raise RuntimeError(f"injected {mode} fault")

    if mode == "embed":
        den.embed = failing
    else:
        den.blocks[1] = failing
errors = []
try:
    pipe.process(Frame(bad, cell))
except CollectiveError as exc:
    errors.append(str(exc))
if mode != "overlap" and comm.rank == 1:
    den.embed, den.blocks[1] = saved
labels = pipe.process(Frame(good, cell)).labels
mine = {"rank": comm.rank, "errors": errors, "labels": np.bincount(labels, minlength=9).tolist()}
everyone = comm.gather(mine, root=0)
if comm.rank == 0:
    print(json.dumps(everyone), flush=True)
