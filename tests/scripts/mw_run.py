"""Run a short mW LAMMPS simulation with the icemon monitor attached (serial or under
mpirun); used by tests/test_lammps.py and usable by hand.

    [mpirun -np 2] python tests/scripts/mw_run.py DATA LOG --every 50 --steps 100
"""

import argparse
import json

from lammps import lammps
from mpi4py import MPI

import icemon.hooks.lammps
from icemon.demo import mw

p = argparse.ArgumentParser()
p.add_argument("data")
p.add_argument("log")
p.add_argument("--every", type=int, default=50)
p.add_argument("--steps", type=int, default=100)
p.add_argument("--temperature", type=float, default=250.0)
p.add_argument("--overlap", action="store_true")
p.add_argument("--start", type=int, default=0, help="first MD step (a restarted run's)")
p.add_argument("--resume-from", type=int, default=None,
               help="drop the log's frames after this step and continue it")
p.add_argument("--melt", type=int, default=0,
               help="first melt the upper half at 600 K for this many steps (ice|liquid)")
p.add_argument("--fault-rank", type=int, default=None,
               help="inject a SOAP failure on this rank only, at its second frame")
p.add_argument("--count-soap", action="store_true",
               help="report how many environments the ranks describe with SOAP per frame")
a = p.parse_args()

if a.fault_rank is not None and MPI.COMM_WORLD.rank == a.fault_rank:
    from icemon.descriptors.soap import Soap

    calls = []
    plain = Soap.plain

    def faulty(self, positions, cell, rows=None):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected fault")
        return plain(self, positions, cell, rows)

    Soap.plain = faulty

described: list[int] = []  # environments this rank described with SOAP, per call
if a.count_soap:
    from icemon.descriptors.soap import Soap

    counted = Soap.plain

    def counting(self, positions, cell, *args, **kwargs):
        out = counted(self, positions, cell, *args, **kwargs)
        described.append(len(out))
        return out

    Soap.plain = counting

lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
for c in mw.setup_commands(a.data, a.temperature, barostat=None):
    lmp.command(c)
if a.melt:
    lmp.commands_list(mw.melt_region_commands(z_fraction=0.5, temperature=600.0,
                                              steps=a.melt))
    lmp.command(f"fix md all nvt temp {a.temperature} {a.temperature} 1000")
if a.start:
    lmp.command(f"reset_timestep {a.start}")
with icemon.hooks.lammps.attach(lmp, every=a.every, oxygens=1, log=a.log,
                                overlap=a.overlap, resume_from=a.resume_from) as mon:
    lmp.command(f"run {a.steps}")
per_rank = MPI.COMM_WORLD.gather(described)
if MPI.COMM_WORLD.rank == 0:
    out = {"ranks": MPI.COMM_WORLD.size, "errors": mon.errors, "frames": mon.n_frames}
    if a.count_soap:  # per frame, summed over the ranks
        out["described"] = [int(sum(c)) for c in zip(*per_rank)]
    print(json.dumps(out))
lmp.close()
