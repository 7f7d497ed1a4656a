"""TIP4P/Ice water in LAMMPS, for checks of phases that mW does not keep.

mW relaxes GenIce's ice V into another structure (``benchmarks/mw_stability.py``: its
time-averaged oxygens end 0.6 Å from V's sites at 200 K), so an MD check of ice V needs a
water model under which V is metastable: TIP4P/Ice (Abascal, Sanz, García Fernández and
Vega, J. Chem. Phys. 122, 234511 (2005)), the model of the GCIceNet evaluation frames.
Rigid molecules (``fix shake``), O–H 0.9572 Å, H–O–H 104.52°, the charge of O on the
massless M site 0.1577 Å along the bisector (LAMMPS' ``lj/cut/tip4p/long`` and
``pppm/tip4p``), ε_OO 0.21084 kcal/mol, σ_OO 3.1668 Å, q_H +0.5897 e.

Hydrogens come from GenIce2 (ice rules, zero net polarisation, random otherwise, seeded).
Units: LAMMPS ``real`` (Å, fs, kcal/mol, K).
"""

from __future__ import annotations

import contextlib
import io
import logging
import random
from pathlib import Path

import numpy as np
from ase import Atoms

from icemon.demo.md import thermostat_commands
from icemon.lattices.references import (
    lattice_name,
    reference_density,
    replication,
    unit_cell,
)

EPSILON = 0.21084
"""kcal/mol, O–O Lennard-Jones well depth."""
SIGMA = 3.1668
"""Å, O–O Lennard-Jones diameter."""
Q_H = 0.5897
"""e, charge of each hydrogen (the M site carries −2 q_H)."""
OM = 0.1577
"""Å, distance of the M site from O along the H–O–H bisector."""
OH, HOH = 0.9572, 104.52
"""Å and degrees: the rigid geometry (that of TIP3P and TIP4P too)."""
CUTOFF = 8.5
"""Å, real-space cutoff of Lennard-Jones and Coulomb (PPPM beyond)."""
MASSES = (15.9994, 1.008)
"""g/mol of O and H (the M site is massless)."""


def ice(phase: str, min_height: float = 22.0, seed: int = 1) -> Atoms:
    """Water molecules (O, H, H, O, H, H, ...) of a GenIce2 ``phase`` (a named phase or a
    GenIce2 lattice) at GenIce's density, replicated so that every cell height is
    ≥ ``min_height`` Å (≥ 2 × (:data:`CUTOFF` + skin) for LAMMPS), cell rotated into
    LAMMPS' lower-triangular form. Hydrogen order is random under the ice rules
    (``seed``)."""
    from genice2.genice import GenIce
    from genice2.plugin import safe_import

    rep = replication(np.asarray(unit_cell(phase).cell[:]), min_height)
    lattice = safe_import("lattice", lattice_name(phase)).Lattice()
    formatter = safe_import("format", "exyz").Format()
    water = safe_import("molecule", "tip3p").Molecule()  # O, H, H; TIP4P/Ice's geometry
    random.seed(seed)
    np.random.seed(seed)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ice = GenIce(lattice, density=reference_density(phase), reshape=np.diag(rep))
            ice.generate_ice(formatter, water=water)
    finally:
        root.setLevel(level)
    symbols, positions, cell = [], [], []
    for line in formatter.output.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].startswith("Vector"):
            cell.append([float(v) for v in parts[1:]])
        elif len(parts) == 4 and parts[0] in ("O", "H"):
            symbols.append(parts[0])
            positions.append([float(v) for v in parts[1:]])
    atoms = Atoms(symbols, positions=positions, cell=cell, pbc=True)
    if "".join(atoms.get_chemical_symbols()) != "OHH" * (len(atoms) // 3):
        raise RuntimeError(f"GenIce2 gave an unexpected atom order for {phase!r}")
    return lower_triangular(atoms)


def lower_triangular(atoms: Atoms) -> Atoms:
    """``atoms`` rotated so that the cell rows are a along x, b in the xy plane (LAMMPS'
    convention); the structure is unchanged."""
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    q, r = np.linalg.qr(cell.T)  # cell.T = q r  ⇒  cell = rᵀ qᵀ
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    q, r = q * signs, (r.T * signs).T
    out = atoms.copy()
    out.set_cell(r.T, scale_atoms=False)
    out.positions = atoms.positions @ q
    out.wrap()
    return out


def write_data(atoms: Atoms, path: str | Path) -> Path:
    """A LAMMPS data file (atom_style full: types 1 O, 2 H; one molecule per O, H, H with
    two O–H bonds and one H–O–H angle) of ``atoms`` from :func:`ice`."""
    path = Path(path)
    cell = np.asarray(atoms.cell[:])
    n = len(atoms)
    lines = [f"TIP4P/Ice water from icemon ({n // 3} molecules)", "",
             f"{n} atoms", f"{2 * n // 3} bonds", f"{n // 3} angles", "",
             "2 atom types", "1 bond types", "1 angle types", "",
             f"0.0 {cell[0, 0]:.10f} xlo xhi", f"0.0 {cell[1, 1]:.10f} ylo yhi",
             f"0.0 {cell[2, 2]:.10f} zlo zhi",
             f"{cell[1, 0]:.10f} {cell[2, 0]:.10f} {cell[2, 1]:.10f} xy xz yz", "",
             "Masses", "", f"1 {MASSES[0]}", f"2 {MASSES[1]}", "", "Atoms # full", ""]
    for k, (x, y, z) in enumerate(atoms.positions):
        kind = 1 if k % 3 == 0 else 2
        q = -2 * Q_H if kind == 1 else Q_H  # on O; LAMMPS moves it to M
        lines.append(f"{k + 1} {k // 3 + 1} {kind} {q:.6f} {x:.8f} {y:.8f} {z:.8f}")
    lines += ["", "Bonds", ""]
    for m in range(n // 3):
        o = 3 * m + 1
        lines += [f"{2 * m + 1} 1 {o} {o + 1}", f"{2 * m + 2} 1 {o} {o + 2}"]
    lines += ["", "Angles", ""]
    for m in range(n // 3):
        o = 3 * m + 1
        lines.append(f"{m + 1} 1 {o + 1} {o} {o + 2}")
    path.write_text("\n".join(lines) + "\n")
    return path


def setup_commands(data: str | Path, temperature: float, seed: int = 12345,
                   timestep: float = 2.0, barostat: str | None = None,
                   pressure: float = 1.0) -> list[str]:
    """LAMMPS commands: read ``data``, TIP4P/Ice with PPPM (accuracy 10⁻⁴), rigid
    molecules, velocities at ``temperature`` K and an NVT (``barostat`` None) or NPT
    (``barostat`` "tri" relaxes every component of a triclinic cell) thermostat, fix ID
    ``md``."""
    return [
        "units real", "atom_style full", "boundary p p p",
        f"read_data {data}",
        f"pair_style lj/cut/tip4p/long 1 2 1 1 {OM} {CUTOFF}",
        f"pair_coeff 1 1 {EPSILON} {SIGMA}", "pair_coeff 1 2 0.0 0.0",
        "pair_coeff 2 2 0.0 0.0",
        "bond_style harmonic", f"bond_coeff 1 450.0 {OH}",
        "angle_style harmonic", f"angle_coeff 1 55.0 {HOH}",
        "kspace_style pppm/tip4p 1.0e-4",
        "neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes",
        "fix rigid all shake 1.0e-5 50 0 b 1 a 1",
        *thermostat_commands(temperature, seed, timestep, barostat, pressure),
    ]
