"""The compiled network (``Pipeline(compile=True)``) gives the eager network's answer."""

import numpy as np
import pytest
import torch

from icemon import Frame, Pipeline
from icemon.lattices.references import reference
from icemon.model.network import Compiled


@pytest.mark.slow
def test_compiled_pipeline_matches_eager(model, pipeline):
    """Same labels, denoised positions to float32 rounding, on a noisy ice VI frame
    (torch.compile with dynamic shapes: a second frame of another size reuses it)."""
    rng = np.random.default_rng(3)
    compiled = Pipeline(model, compile=True)
    assert compiled.denoiser.compiled
    for phase in ("VI", "Ih"):
        a = reference(phase, 12.0)
        x = a.positions + rng.normal(scale=0.1, size=a.positions.shape)
        frame = Frame(x, a.cell[:])
        with _no_compile_warning():
            got = compiled.process(frame)
        want = pipeline.process(frame)
        np.testing.assert_array_equal(got.labels, want.labels)
        np.testing.assert_allclose(got.denoised, want.denoised, atol=1e-4)
        np.testing.assert_allclose(got.scores, want.scores, rtol=1e-3, atol=1e-3)
    import icemon.model.network as network

    assert network._COMPILE_FAILED is None  # compiled, not an eager fallback


class _no_compile_warning:
    """Fail if the compiler fell back to eager (the test would then compare eager to eager)."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings(record=True)
        self._caught = self._ctx.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        failed = [w for w in self._caught if "torch.compile" in str(w.message)]
        assert not failed, failed[0].message


def test_compile_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    """A compiler that fails (no C++ compiler, unsupported platform) costs speed, not the
    answer: one warning naming the failure, then the eager callable."""
    import icemon.model.network as network

    monkeypatch.setattr(network, "_COMPILE_FAILED", None)  # restored after the test
    lin = torch.nn.Linear(3, 2)
    c = Compiled(lin, "test layer")

    def broken(*args):
        raise RuntimeError("no C++ compiler found")

    c._fn = broken
    x = torch.ones(4, 3)
    with pytest.warns(RuntimeWarning, match="torch.compile of the network's test layer failed.*"
                                            "no C\\+\\+ compiler"):
        y = c(x)
    torch.testing.assert_close(y, lin(x))
    torch.testing.assert_close(c(x), lin(x))  # and from then on, no further warning


def test_the_default_is_the_compiled_network_unless_icemon_compile_says_no(monkeypatch):
    """Users get the fast path without flags: Pipeline(), Options(), FramePool and every hook
    leave compile=None, which compiles; $ICEMON_COMPILE=0 (this suite's setting) or
    compile=False runs eagerly; a bad value is named."""
    from icemon.errors import ConfigError
    from icemon.model.network import resolve_compile
    from icemon.recording import Options

    monkeypatch.delenv("ICEMON_COMPILE", raising=False)
    assert resolve_compile(None) is True
    assert Options().compile is None and Pipeline().denoiser.compiled
    assert not Pipeline(compile=False).denoiser.compiled
    monkeypatch.setenv("ICEMON_COMPILE", "0")
    assert not Pipeline().denoiser.compiled and Pipeline(compile=True).denoiser.compiled
    monkeypatch.setenv("ICEMON_COMPILE", "maybe")
    with pytest.raises(ConfigError, match="ICEMON_COMPILE must be 0 or 1"):
        resolve_compile(None)


def test_classify_compiles_and_shares_frames_by_default(monkeypatch):
    """``icemon classify`` without flags: compiled network (None reaches the pipeline),
    one worker per core (at most 8), one at a time where frames arrive one by one."""
    import argparse

    from icemon.cli import MAX_AUTO_WORKERS, default_workers, parser

    args = parser().parse_args(["classify", "t.xtc", "-o", "x.h5"])
    assert args.compile is None and args.workers is None
    cores = len(__import__("os").sched_getaffinity(0))
    assert default_workers(args, serial=False) == max(1, min(cores, MAX_AUTO_WORKERS))
    assert default_workers(args, serial=True) == 1
    assert default_workers(argparse.Namespace(threads=2), serial=False) == 1
    assert parser().parse_args(["classify", "t.xtc", "-o", "x.h5",
                                      "--no-compile"]).compile is False


def test_a_machine_that_cannot_compile_says_so_once(monkeypatch):
    """Compiling is the default, so a machine without a C++ compiler must not pay a failed
    compilation, or print a warning, for every compiled piece (an MPI rank compiles the
    embedding and each block): the first failure warns once, the rest run eagerly."""
    import warnings

    import icemon.model.network as network

    monkeypatch.setattr(network, "_COMPILE_FAILED", None)
    pieces = [Compiled(torch.nn.Linear(3, 2), f"piece {k}") for k in range(3)]
    tried = []

    def broken(*args):
        tried.append(1)
        raise RuntimeError("no C++ compiler found")

    for c in pieces:
        c._fn = broken
    x = torch.ones(4, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for c in pieces:
            torch.testing.assert_close(c(x), c.eager(x))
    assert len(tried) == 1
    assert len([w for w in caught if "torch.compile" in str(w.message)]) == 1


def test_one_frame_is_classified_in_process_and_eagerly(tmp_path, monkeypatch):
    """Compiling and worker processes pay off over many frames; for one frame (a snapshot,
    or --start/--stop/--every leaving one) ``icemon classify`` runs in process, eagerly,
    unless --compile says otherwise."""
    import argparse

    from ase.io import write

    from icemon.cli import main, single_frame
    from icemon.recording import Options

    a = reference("Ih", 12.0)
    write(tmp_path / "one.extxyz", a)
    write(tmp_path / "three.extxyz", [a, a, a])
    args = dict(top=None, select=None, start=0, stop=None, every=1)
    assert single_frame(argparse.Namespace(traj=tmp_path / "one.extxyz", **args))
    assert not single_frame(argparse.Namespace(traj=tmp_path / "three.extxyz", **args))
    assert single_frame(argparse.Namespace(traj=tmp_path / "three.extxyz",
                                           **{**args, "every": 2, "start": 1}))
    assert not single_frame(argparse.Namespace(traj=tmp_path / "none.extxyz", **args))
    seen = []
    real = Options.pipeline

    def spy(self, comm=None):
        seen.append(self.compile)
        return real(self, comm)

    monkeypatch.setattr(Options, "pipeline", spy)
    monkeypatch.delenv("ICEMON_COMPILE", raising=False)
    assert main(["classify", str(tmp_path / "one.extxyz"), "-o", str(tmp_path / "a.h5"),
                 "-q"]) == 0
    assert seen == [False]  # in process (a pool would not call it here), eager
