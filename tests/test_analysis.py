"""Log analysis: fractions, melting fronts on synthetic logs with known fronts, errors."""

import numpy as np
import pytest

from icemon import Frame, LogError, LogWriter
from icemon.analysis import FrontTracker, Log
from icemon.execution.pipeline import Result

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

IH, LIQ = PHASES.index("Ih"), PHASES.index("liquid")


def synthetic_log(path, fronts, times, cell=np.diag([30.0, 30.0, 80.0]), n=4000, seed=0,
                  positions=True):
    """Uniform random molecules; ice (Ih) between the two fronts (cyclic along c), liquid
    elsewhere. ``fronts``: (n_frames, 2) rising/falling front positions (Å along c)."""
    rng = np.random.default_rng(seed)
    height = cell[2, 2]
    with LogWriter(path, np.arange(n), model_name="synthetic", model_sha256="0" * 64,
                   threshold=1.0, positions=positions, phases=PHASES) as w:
        for k, ((z1, z2), t) in enumerate(zip(fronts, times)):
            frac = rng.uniform(0, 1, (n, 3))
            pos = frac @ cell
            z = frac[:, 2] * height
            ice = ((z - z1) % height) < ((z2 - z1) % height)
            labels = np.where(ice, IH, LIQ).astype(np.int8)
            frame = Frame(pos, cell, np.arange(n), step=100 * k, time=t)
            w.append(Result(frame, labels, np.zeros(n, np.float32), pos, labels, phases=PHASES))
    return path


def _circular_error(a, b, period):
    d = (np.asarray(a) - np.asarray(b)) % period
    return np.minimum(d, period - d)


@pytest.mark.parametrize("z1,z2", [(25.0, 55.0), (65.0, 95.0)])  # second slab wraps at 80 Å
def test_fronts_at_known_positions_and_speed(tmp_path, z1, z2):
    v = 0.08  # Å/ps, each front moving into the ice (melting)
    times = np.linspace(0.0, 100.0, 11)
    fronts = np.c_[z1 + v * times, z2 - v * times]
    log = Log(synthetic_log(tmp_path / "s.h5", fronts, times))
    tracker = FrontTracker().compute(log)
    res = tracker.results
    assert tracker.axis == 2  # found from the data
    assert _circular_error(res.positions, fronts, 80.0).max() < 1.0
    np.testing.assert_allclose(res.velocities, [v, -v], rtol=0.05)
    assert res.melting_speed == pytest.approx(v, rel=0.05)
    assert (res.velocity_errors > 0).all() and (res.velocity_errors < 0.05 * v).all()
    # ice lost per interface and nm²: 2 v t of slab × density / 2 interfaces
    density = 4000 / (30 * 30 * 80)  # molecules/Å³
    expected = v * times[-1] * density * 100.0
    assert res.melted_per_area[-1] == pytest.approx(expected, rel=0.1)


def test_growth_and_explicit_normal(tmp_path):
    v = -0.05  # the slab grows
    times = np.linspace(0.0, 100.0, 11)
    cell = np.diag([70.0, 30.0, 30.0])
    fronts = np.c_[30 + v * times, 45 - v * times]
    path = tmp_path / "g.h5"
    rng = np.random.default_rng(1)
    n = 3000
    with LogWriter(path, np.arange(n), model_name="s", model_sha256="0" * 64,
                   threshold=1.0, phases=PHASES) as w:
        for k, ((a, b), t) in enumerate(zip(fronts, times)):
            pos = rng.uniform(0, 1, (n, 3)) @ cell
            labels = np.where((pos[:, 0] > a) & (pos[:, 0] < b), IH, LIQ).astype(np.int8)
            w.append(Result(Frame(pos, cell, np.arange(n), step=k, time=t), labels,
                            np.zeros(n, np.float32), pos, labels, phases=PHASES))
    res = FrontTracker(normal="x").compute(Log(path)).results
    np.testing.assert_allclose(res.velocities, [v, -v], rtol=0.05)
    assert res.melting_speed < 0 and res.melted_per_area[-1] < 0


def test_fractions_and_counts(tmp_path):
    times = np.linspace(0, 10, 3)
    log = Log(synthetic_log(tmp_path / "f.h5", np.c_[[20.0] * 3, [60.0] * 3], times))
    assert log.n_frames == 3
    np.testing.assert_allclose(log.times, times)
    np.testing.assert_allclose(log.fractions.sum(axis=1), 1.0, rtol=1e-6)
    assert log.fractions[:, IH] == pytest.approx(0.5, abs=0.03)
    assert (log.counts.sum(axis=1) == 4000).all()


def test_log_without_positions_gives_fractions_but_no_fronts(tmp_path):
    path = synthetic_log(tmp_path / "n.h5", np.c_[[20.0] * 2, [60.0] * 2], [0.0, 1.0],
                         positions=False)
    log = Log(path)
    assert log.fractions.shape == (2, len(PHASES))
    with pytest.raises(LogError, match="without positions"):
        FrontTracker().compute(log)


def test_foreign_and_truncated_files(tmp_path):
    import h5py

    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(LogError, match="not an icemon log"):
        Log(tmp_path / "foreign.h5")
    good = synthetic_log(tmp_path / "good.h5", np.c_[[20.0] * 2, [60.0] * 2], [0.0, 1.0])
    data = good.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(LogError):
        Log(tmp_path / "cut.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(LogError, match="not a readable HDF5"):
        Log(tmp_path / "text.h5")
    with pytest.raises(LogError, match="no such log"):
        Log(tmp_path / "missing.h5")


WRITER = """
import sys
sys.path.insert(0, {root!r})
import numpy as np
from icemon import LogWriter
from tests.test_log import _result

from tests.test_log import PHASES
w = LogWriter(sys.argv[1], np.arange(5), model_name="m", model_sha256="a" * 64, threshold=3.0,
              phases=PHASES)
for line in sys.stdin:
    cmd, arg = line.split()
    if cmd == "append":
        w.append(_result(step=int(arg), seed=int(arg)))
    elif cmd == "error":
        w.record_error(int(arg), "boom")
    elif cmd == "torn":  # stop between resizing the datasets and writing the next row
        for name in ("time", "cell", "fractions", "labels", "scores", "positions",
                     "denoised", "step"):
            w.file[name].resize(w.file[name].shape[0] + 1, axis=0)
            w.file[name].flush()
        w.file.flush()
    print("ok", flush=True)
w.close()
"""


@pytest.fixture
def live_writer(tmp_path):
    """A LogWriter in another process (as in a running simulation), driven line by line."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=str(Path(__file__).resolve().parents[1])))
    path = tmp_path / "live.h5"
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def send(cmd: str) -> None:
        proc.stdin.write(cmd + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "ok", proc.poll()

    try:
        yield path, send
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_reader_never_takes_an_unwritten_row_for_a_frame(live_writer):
    from tests.test_log import _result

    path, send = live_writer
    send("append 0")
    send("append 10")
    with Log(path) as log:
        assert log.n_frames == 2
        send("torn 0")  # the datasets are one row longer, the row is not written
        assert log.refresh() == 2
        np.testing.assert_array_equal(log.steps, [0, 10])
        assert log.fractions.shape == (2, len(PHASES)) and log.times.shape == (2,)
        with pytest.raises(IndexError):
            log.labels(2)
        send("append 20")  # the writer completes the row
        assert log.refresh() == 3
        np.testing.assert_array_equal(log.steps, [0, 10, 20])
        np.testing.assert_array_equal(log.labels(2), _result(step=20, seed=20).labels)


def test_refresh_sees_new_frames_scores_and_errors(live_writer):
    from tests.test_log import _result

    path, send = live_writer
    send("append 0")
    with Log(path) as log:
        assert log.n_frames == 1 and log.errors == []
        send("append 10")
        send("error 15")
        send("append 20")
        assert log.refresh() == 3
        for k, step in enumerate((0, 10, 20)):
            expected = _result(step=step, seed=step)
            np.testing.assert_array_equal(log.scores(k), expected.scores)
            np.testing.assert_array_equal(log.labels(k), expected.labels)
            np.testing.assert_allclose(log.positions(k), expected.frame.positions, rtol=1e-6)
        assert log.errors == [(15, "boom")]


def test_unknown_is_not_ice_for_the_fronts_and_the_melted_amount(tmp_path):
    """A band of `unknown` beside the ice slab was counted as solid: the rising front sat
    at the band's far edge and the melted amount counted its molecules as ice."""
    from .conftest import shipped_phases

    names = shipped_phases()
    ih, liq, unk = names.index("Ih"), names.index("liquid"), names.index("unknown")
    cell = np.diag([30.0, 30.0, 80.0])
    n, times = 4000, np.linspace(0.0, 100.0, 11)
    v, z1, z2 = 0.08, 25.0, 55.0
    rng = np.random.default_rng(0)
    with LogWriter(tmp_path / "u.h5", np.arange(n), model_name="synthetic",
                   model_sha256="0" * 64, threshold=1.0, phases=names) as w:
        for k, t in enumerate(times):
            frac = rng.uniform(0, 1, (n, 3))
            pos, z = frac @ cell, frac[:, 2] * cell[2, 2]
            a, b = z1 + v * t, z2 - v * t
            labels = np.full(n, liq, np.int8)
            labels[(z >= a) & (z < b)] = ih
            labels[(z >= a - 8.0) & (z < a)] = unk  # ordered but unknown, growing with t
            w.append(Result(Frame(pos, cell, np.arange(n), step=100 * k, time=t), labels,
                            np.zeros(n, np.float32), pos, labels, phases=names))
    res = FrontTracker(normal="z").compute(Log(tmp_path / "u.h5")).results
    fronts = np.c_[z1 + v * times, z2 - v * times]
    assert np.abs(res.positions - fronts).max() < 1.0
    density = n / (30 * 30 * 80)
    assert res.melted_per_area[-1] == pytest.approx(v * times[-1] * density * 100.0, rel=0.1)
    assert res.unknown.min() > 0
