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


def test_compile_failure_falls_back_to_eager_with_a_warning():
    """A compiler that fails (no C++ compiler, unsupported platform) costs speed, not the
    answer: one warning naming the failure, then the eager callable."""
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
