"""icemon as an ASE dynamics observer: mW ice Ic at 250 K under Langevin dynamics.

The forces come from LAMMPS through ASE's LAMMPSlib calculator (mW water, metal units);
any ASE calculator works the same way. Every ``--every`` steps the observer classifies
the oxygens into ``--log``.

    python examples/ase_md.py --steps 2000 --every 200
"""

import argparse

import numpy as np
from ase import units
from ase.calculators.lammpslib import LAMMPSlib
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

import icemon.hooks.ase
import icemon.io.log
from icemon.demo import mw

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--log", default="ase_md.h5")
p.add_argument("--phase", default="Ic", help="starting ice (Ih, Ic, ...)")
p.add_argument("--temperature", type=float, default=250.0, help="K")
p.add_argument("--steps", type=int, default=2000, help="steps of 10 fs")
p.add_argument("--every", type=int, default=200)
a = p.parse_args()

atoms = mw.ice(a.phase, 20.0)
atoms.set_chemical_symbols(["O"] * len(atoms))
atoms.set_masses([mw.MASS] * len(atoms))
atoms.calc = LAMMPSlib(lmpcmds=["pair_style sw", f"pair_coeff * * {mw.POTENTIAL_METAL} O"],
                       atom_types={"O": 1}, atom_type_masses={"O": mw.MASS},
                       log_file=None, keep_alive=True)
MaxwellBoltzmannDistribution(atoms, temperature_K=a.temperature, rng=np.random.default_rng(1))
dyn = Langevin(atoms, 10 * units.fs, temperature_K=a.temperature, friction=0.01 / units.fs,
                fixcm=False)

with icemon.hooks.ase.Observer(atoms, log=a.log, dyn=dyn) as obs:
    dyn.attach(obs, interval=a.every)
    dyn.run(a.steps)
with icemon.io.log.open_log(a.log) as f:
    phases = icemon.io.log.log_phases(f)  # the model's names, "unknown" included
    n = f["step"].shape[0]
    for k in range(n):
        fr = f["fractions"][k]
        print(f"step {f['step'][k]:6d}  t = {f['time'][k]:6.2f} ps  " + ", ".join(
            f"{phases[i]} {100 * x:.1f}%" for i, x in enumerate(fr) if x > 0))
