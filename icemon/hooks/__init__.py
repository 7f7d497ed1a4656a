"""Simulation hooks: LAMMPS (fix external, MPI), ASE observers, i-PI; one shape (base), one
Monitor behind them."""
