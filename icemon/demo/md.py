"""LAMMPS commands that every demo water model shares: time step, velocities, thermostat."""

from __future__ import annotations


def thermostat_commands(temperature: float, seed: int, timestep: float,
                        barostat: str | None, pressure: float) -> list[str]:
    """``timestep`` (fs), velocities at ``temperature`` K (``seed``), and a Nosé–Hoover
    NVT (``barostat`` None) or NPT thermostat (``barostat`` "iso", "aniso", "tri", "z"...
    at ``pressure`` atm) with fix ID ``md``; damping 100 and 1000 time steps."""
    cmds = [
        f"timestep {timestep}",
        f"velocity all create {temperature} {seed} mom yes rot yes dist gaussian",
    ]
    if barostat is None:
        cmds.append(f"fix md all nvt temp {temperature} {temperature} {100 * timestep}")
    else:
        cmds.append(f"fix md all npt temp {temperature} {temperature} {100 * timestep} "
                    f"{barostat} {pressure} {pressure} {1000 * timestep}")
    return cmds
