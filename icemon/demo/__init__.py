"""Example support, not API: the mW water model for LAMMPS and the live demo."""
