"""The one hook shape: every engine's ``attach`` takes the same keywords for the same things."""

import inspect

import pytest

import icemon.hooks.ase
import icemon.hooks.ipi
import icemon.hooks.lammps
from icemon.hooks.base import Hook

SHARED = {"log", "every", "oxygens", "model", "threads", "device", "positions", "overlap",
          "denoise_steps", "compile", "source", "on_frame"}


def _keywords(cls, attach) -> set[str]:
    names = set(inspect.signature(cls.__init__).parameters) | set(
        inspect.signature(attach).parameters)
    return names


@pytest.mark.parametrize("cls, attach", [
    (icemon.hooks.lammps.LammpsMonitor, icemon.hooks.lammps.attach),
    (icemon.hooks.ase.Observer, icemon.hooks.ase.attach),
    (icemon.hooks.ipi.IpiMonitor, icemon.hooks.ipi.attach),
])
def test_every_hook_takes_the_shared_keywords_and_reads_back_alike(cls, attach):
    assert SHARED <= _keywords(cls, attach), SHARED - _keywords(cls, attach)
    params = list(inspect.signature(attach).parameters)
    assert params[1] == "log"  # attach(engine, log, *, every, oxygens, ...)
    assert issubclass(cls, Hook)
    for name in ("n_frames", "errors", "paths", "close", "__enter__", "__exit__"):
        assert hasattr(cls, name)
