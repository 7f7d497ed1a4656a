"""Following a trajectory as another process appends to it (``icemon classify --follow``):
never a half-written frame, every frame once, labels equal to classifying the finished
file, the end found by the idle time."""

import subprocess
import sys

import numpy as np
import pytest

from icemon.analysis import Log
from icemon.cli import main

WRITER = """
import sys, time
import numpy as np
from icemon.lattices.references import reference

fmt, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
a = reference("Ic", 12.0)
frames = []
for k in range(n):
    b = a.copy()
    b.positions += rng.normal(0, 0.08, b.positions.shape)
    b.info.update(step=100 * k, time=0.2 * k)
    frames.append(b)
if fmt == "extxyz":
    from ase.io import write
    import io
    for b in frames:
        buf = io.StringIO()
        write(buf, b, format="extxyz")
        text = buf.getvalue()
        with open(path, "a") as fh:  # each frame in two pieces, a pause between them
            fh.write(text[: len(text) // 2]); fh.flush()
            time.sleep(0.7)
            fh.write(text[len(text) // 2:]); fh.flush()
        time.sleep(0.5)
else:
    import MDAnalysis as mda
    u = mda.Universe.empty(len(a), n_residues=len(a), trajectory=True,
                           atom_resindex=np.arange(len(a)), residue_segindex=[0] * len(a))
    u.add_TopologyAttr("name", ["OW"] * len(a))
    u.add_TopologyAttr("type", ["O"] * len(a))
    u.atoms.positions = a.positions
    u.dimensions = list(a.cell.lengths()) + [90, 90, 90]
    u.atoms.write(path.replace(".xtc", ".gro"))
    with mda.Writer(path, len(a)) as w:
        for k, b in enumerate(frames):
            u.atoms.positions = b.positions
            u.dimensions = list(b.cell.lengths()) + [90, 90, 90]
            u.trajectory.ts.time = b.info["time"]
            u.trajectory.ts.data["step"] = b.info["step"]
            w.write(u.atoms)
            time.sleep(1.0)
"""


@pytest.mark.parametrize("fmt", ["extxyz", "xtc"])
def test_follow_classifies_every_frame_as_it_is_appended(tmp_path, fmt):
    traj = tmp_path / f"grow.{fmt}"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writer = subprocess.Popen([sys.executable, str(script), fmt, str(traj), "5"])
    # MDAnalysis' xtc writer buffers its frames until it closes (as engines buffer between
    # flushes): --idle must outlast that, as the docs say
    idle = "4" if fmt == "extxyz" else "15"
    args = ["classify", str(traj), "--follow", "--idle", idle, "-q", "--denoise-steps", "0"]
    if fmt == "xtc":
        args += ["--top", str(tmp_path / "grow.gro")]
    try:
        assert main([*args, "-o", str(tmp_path / "live.h5")]) == 0
    finally:
        assert writer.wait(timeout=120) == 0
    # the finished file, classified after the fact
    offline = ["classify", str(traj), "-q", "--denoise-steps", "0", "-o", str(tmp_path / "off.h5")]
    if fmt == "xtc":
        offline += ["--top", str(tmp_path / "grow.gro")]
    assert main(offline) == 0
    with Log(tmp_path / "live.h5") as live, Log(tmp_path / "off.h5") as off:
        assert live.n_frames == off.n_frames == 5
        np.testing.assert_allclose(live.times, off.times)
        np.testing.assert_allclose(live.times, 0.2 * np.arange(5), atol=1e-3)
        for k in range(5):
            np.testing.assert_array_equal(live.labels(k), off.labels(k))


def test_follow_refuses_parallel_modes_and_a_file_that_never_comes(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "x.extxyz"), "--follow", "--workers", "2",
                 "-o", str(tmp_path / "a.h5")]) == 2
    assert "--follow" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "never.extxyz"), "--follow", "--idle", "1",
                 "-o", str(tmp_path / "b.h5")]) == 2
    assert "did not appear within 1 s" in capsys.readouterr().err


def test_follow_honours_start_stop_and_every(tmp_path):
    """--start, --stop and --every select the same frames when following as when reading
    the finished file (--stop was ignored with --follow)."""
    from ase.io import write

    from icemon.lattices.references import reference

    frames = []
    for k in range(7):
        a = reference("Ic", 12.0)
        a.info.update(step=10 * k, time=0.1 * k)
        frames.append(a)
    write(tmp_path / "done.extxyz", frames)
    args = ["--start", "1", "--stop", "4", "--every", "2", "-q", "--denoise-steps", "0"]
    assert main(["classify", str(tmp_path / "done.extxyz"), "--follow", "--idle", "1", *args,
                 "-o", str(tmp_path / "f.h5")]) == 0
    assert main(["classify", str(tmp_path / "done.extxyz"), *args,
                 "-o", str(tmp_path / "r.h5")]) == 0
    with Log(tmp_path / "f.h5") as f, Log(tmp_path / "r.h5") as r:
        assert f.steps.tolist() == r.steps.tolist() == [10, 30]


def _frames(n, step0=0):
    from icemon.lattices.references import reference

    out = []
    for k in range(n):
        a = reference("Ic", 12.0)
        a.info.update(step=step0 + 100 * k, time=0.1 * (step0 / 100 + k))
        out.append(a)
    return out


def test_follow_skips_a_last_frame_cut_mid_line(tmp_path):
    """A writer killed inside the last line: ASE read '11.158' cut to '11' as a number and
    the frame was logged as complete."""
    import io

    from ase.io import write

    from icemon.io.follow import FollowWarning, follow_frames

    buf = io.StringIO()
    write(buf, _frames(3), format="extxyz")
    text = buf.getvalue()
    (tmp_path / "cut.extxyz").write_text(text[:-8])  # the last number cut, no newline
    with pytest.warns(FollowWarning, match="ends inside a line"):
        frames = list(follow_frames(tmp_path / "cut.extxyz", idle=0.5, poll=0.1))
    assert [f.step for f in frames] == [0, 100]


def test_follow_stops_when_the_file_is_rewritten(tmp_path):
    """A file truncated and rewritten by a new run while followed: the follower went on at
    its old frame index, skipping the new run's first frames without a word."""
    from ase.io import write

    from icemon.io.follow import follow_frames
    from icemon.io.readers import TrajectoryError

    path = tmp_path / "re.extxyz"
    write(path, _frames(5))
    frames = follow_frames(path, idle=30, poll=0.1)
    seen = [next(frames).step for _ in range(4)]  # the last frame waits for the idle time
    write(path, _frames(2, step0=10000))  # a new run overwrites the file
    with pytest.raises(TrajectoryError, match="got shorter while it was followed"):
        next(frames)
    assert seen == [0, 100, 200, 300]
