"""icemon on an i-PI run: mW ice Ic, classical or path-integral, LAMMPS as force engine.

i-PI (Python scripting interface) integrates the nuclei (PILE thermostat for path
integrals, SVR otherwise); a LAMMPS process computes mW forces through ``fix ipi`` (unix
socket); icemon classifies the centroids (or every bead) every ``--every`` steps.

    python examples/ipi_mw.py                      # 4 beads, 250 K
    python examples/ipi_mw.py --beads 1            # classical
    python examples/ipi_mw.py --mode all           # one log per bead
"""

import argparse
import os
import tempfile
from pathlib import Path

from ase import units
from ipi.scripting import (
    InteractiveSimulation,
    forcefield_xml,
    motion_nvt_xml,
    simulation_xml,
)

import icemon.hooks.ipi
from icemon.analysis import Log
from icemon.demo import mw

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--log", default="ipi_mw.h5")
p.add_argument("--phase", default="Ic")
p.add_argument("--size", type=float, default=15.0, help="smallest box height, Å")
p.add_argument("--temperature", type=float, default=250.0, help="K")
p.add_argument("--beads", type=int, default=4)
p.add_argument("--mode", choices=["centroid", "all"], default="centroid")
p.add_argument("--steps", type=int, default=200)
p.add_argument("--every", type=int, default=50)
p.add_argument("--overlap", action="store_true", help="classify while i-PI steps on")
p.add_argument("--timestep", type=float, default=5.0, help="fs")
p.add_argument("--seed", type=int, default=12345, help="i-PI random seed")
p.add_argument("--trajectory", default=None,
               help="classical runs (--beads 1): also let i-PI write the classified "
                    "configurations here, as extxyz, for offline checks")
a = p.parse_args()

work = Path(tempfile.mkdtemp(prefix="icemon-ipi-"))
log_path = Path(a.log).resolve()
trajectory = Path(a.trajectory).resolve() if a.trajectory else None
atoms = mw.ice(a.phase, a.size)
atoms.set_chemical_symbols(["O"] * len(atoms))
atoms.set_masses([mw.MASS] * len(atoms))
data = mw.write_data(atoms, work / "ice.data")
address = f"icemon-{os.getpid()}"
xml = simulation_xml(
    structures=[atoms] * a.beads if a.beads > 1 else atoms,
    forcefield=forcefield_xml("lammps", mode="unix", address=address),
    motion=motion_nvt_xml(timestep=a.timestep * units.fs, path_integrals=a.beads > 1),
    temperature=a.temperature,                    # K
    output=f"<output prefix='{work / 'sim'}'><checkpoint stride='100000'/>"
           + (f"<trajectory filename='traj' stride='{a.every}' format='ase' "
              f"cell_units='ase'> positions{{ase}} </trajectory>"
              if a.trajectory and a.beads == 1 else "") + "</output>",
)
# a fixed random seed makes the run reproducible (same trajectory with --mode all)
xml = xml.replace("<system>", f"<prng><seed>{a.seed}</seed></prng>\n<system>", 1)
os.chdir(work)                                    # i-PI writes RESTART files into the cwd
sim = InteractiveSimulation(xml)                  # opens the socket
driver = mw.start_lammps_driver(mw.ipi_client_commands(data, address), work)
try:
    with icemon.hooks.ipi.IpiMonitor(sim, log_path, every=a.every, beads=a.mode,
                               overlap=a.overlap) as mon:
        mon.run(a.steps)
finally:
    sim.stop()
    driver.wait(timeout=60)
if trajectory:
    written = sorted(work.glob("sim.traj*"))
    os.replace(written[0], trajectory)
for path in mon.paths:
    with Log(path) as log:
        print(f"{path}: {log.n_frames} frames")
        for k in range(log.n_frames):
            fr = log.fractions[k]
            print(f"  step {log.steps[k]:5d}  t = {log.times[k]:6.3f} ps  " + ", ".join(
                f"{log.phases[i]} {100 * x:.1f}%" for i, x in enumerate(fr) if x > 0))
