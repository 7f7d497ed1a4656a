"""Labels that must not change when the labelling path is reorganised: the frames of
``tests/scripts/golden_frames.py`` (GCIceNet ices, liquid and T; XII, IV, TS1, HS1, C15;
a replicated liquid; an ice|liquid slab) give the stored labels serially, through a
:class:`~icemon.FramePool` and on 1, 2 and 4 MPI ranks."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "scripts"))
from golden_frames import GOLDEN, frames  # noqa: E402


@pytest.fixture(scope="module")
def golden_frames(gcicenet):
    return frames(gcicenet)


def test_the_golden_frames_cover_every_outcome(golden_frames):
    """The stored labels hold ices, liquid, `unknown` and a mixed frame: equality means
    something for each check."""
    from .conftest import shipped_phases

    names = shipped_phases()
    golden = np.load(GOLDEN)
    seen = {names[c] for name, _ in golden_frames for c in np.unique(golden[name])}
    assert {"Ih", "Ic", "II", "III", "VI", "VII", "sI", "sII", "liquid", "unknown"} <= seen
    slab = golden["ice-liquid-slab"]
    assert 0.1 < (slab == names.index("Ih")).mean() < 0.9


def test_serial_labels_are_the_stored_ones(pipeline, golden_frames):
    golden = np.load(GOLDEN)
    for name, frame in golden_frames:
        np.testing.assert_array_equal(pipeline.process(frame).labels, golden[name], err_msg=name)


@pytest.mark.slow
def test_pool_labels_are_the_stored_ones(golden_frames):
    from icemon import FramePool

    golden = np.load(GOLDEN)
    with FramePool(workers=2) as pool:
        for (name, _), res in zip(golden_frames, pool.imap(f for _, f in golden_frames)):
            np.testing.assert_array_equal(res.labels, golden[name], err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_mpi_labels_are_the_stored_ones(gcicenet, ranks):
    from .test_parallel import _mpirun

    out = subprocess.run([_mpirun(), "-np", str(ranks), sys.executable,
                          str(ROOT / "tests" / "scripts" / "golden_mpi.py"), str(gcicenet)],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    same = json.loads(out.stdout.strip().splitlines()[-1])
    assert same and all(same.values()), same
