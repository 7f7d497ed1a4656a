"""The shipped model on real TIP4P/Ice frames (first frame of each GCIceNet file).

The full accuracy table comes from benchmarks/gcicenet.py; this guards against
regressions of the shipped model with bounds below the measured values."""

import numpy as np
import pytest

from icemon import LIQUID, PHASES

from .conftest import GCICENET_TAGS, gcicenet_frame

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("tag, phase", GCICENET_TAGS.items())
def test_first_frame_accuracy(pipeline, gcicenet, tag, phase):
    res = pipeline.process(gcicenet_frame(gcicenet, tag))
    code = PHASES.index(phase)
    acc = res.fractions[code]
    if code == LIQUID:
        assert acc >= 0.99, res.table()
    else:
        assert acc >= 0.995, res.table()
        assert np.mean(res.nearest == code) >= 0.999, "seven-class accuracy"


def test_denoising_is_what_makes_it_work(model, gcicenet):
    """Without denoising, ice Ic is mostly not recognised (the paper's point)."""
    from icemon import Pipeline

    raw = Pipeline(model, denoise_steps=0).process(gcicenet_frame(gcicenet, "1c"))
    assert raw.fractions[PHASES.index("Ic")] < 0.8
