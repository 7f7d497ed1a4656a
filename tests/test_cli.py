"""`icemon classify / demo / info` on real files, and their errors."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
from ase.io import read

from icemon.cli import main
from icemon.io.log import check_schema

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)


def test_classify_gcicenet_writes_valid_log(gcicenet, tmp_path, capsys):
    out, xyz = tmp_path / "ih.h5", tmp_path / "ih.extxyz"
    rc = main(["classify", str(gcicenet / "md_1h_dev.xtc"), "--top", str(gcicenet / "md_1h.tpr"),
               "--select", "name OW", "--every", "2", "--stop", "4", "-o", str(out),
               "--extxyz", str(xyz), "-q"])
    assert rc == 0
    with h5py.File(out, "r") as f:
        check_schema(f, out)
        assert f["labels"].shape == (2, 1024)
        np.testing.assert_allclose(f["time"][()], [0.0, 200.0])  # every 2nd frame, ps
        assert f["fractions"][:, PHASES.index("Ih")].min() > 0.999
        ids = f["atom_ids"][()]
        assert len(np.unique(ids)) == 1024 and ids[1] - ids[0] == 4  # OW of OW,HW1,HW2,MW
        assert f["positions"].shape == (2, 1024, 3)
    frames = read(xyz, index=":")
    assert len(frames) == 2
    assert frames[0].arrays["phase"].dtype.kind == "i"
    assert set(frames[0].arrays["phase"]) == {0}
    assert "score" in frames[0].arrays


def test_classify_refuses_to_overwrite(gcicenet, tmp_path, capsys):
    out = tmp_path / "x.h5"
    out.write_bytes(b"precious")
    rc = main(["classify", str(gcicenet / "md_w_dev.xtc"), "--top", str(gcicenet / "md_w.tpr"),
               "--stop", "1", "-o", str(out)])
    assert rc == 2
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("content, message", [
    (None, "does not exist"),
    (b"not an xtc file at all" * 10, "cannot"),
])
def test_classify_unreadable_trajectory(tmp_path, capsys, content, message, gcicenet):
    traj = tmp_path / "bad.xtc"
    if content is not None:
        traj.write_bytes(content)
    rc = main(["classify", str(traj), "--top", str(gcicenet / "md_w.tpr"), "-o",
               str(tmp_path / "o.h5")])
    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.h5").exists()


def test_classify_selection_without_atoms(gcicenet, tmp_path, capsys):
    rc = main(["classify", str(gcicenet / "md_w_dev.xtc"), "--top", str(gcicenet / "md_w.tpr"),
               "--select", "name XX", "-o", str(tmp_path / "o.h5")])
    assert rc == 2
    assert "matches no atoms" in capsys.readouterr().err


def test_unknown_model_file(gcicenet, tmp_path, capsys):
    rc = main(["classify", str(gcicenet / "md_w_dev.xtc"), "--top", str(gcicenet / "md_w.tpr"),
               "--model", str(tmp_path / "missing.npz"), "-o", str(tmp_path / "o.h5")])
    assert rc == 2
    assert "missing.npz" in capsys.readouterr().err


def test_demo_snapshots_prints_one_phase_table(capsys):
    # plain `icemon demo` runs the live LAMMPS demo: tests/test_demo.py
    assert main(["demo", "--snapshots"]) == 0
    out = capsys.readouterr().out
    assert out.count("phase") == 1 and "liquid water" in out and "sI clathrate" in out


def test_console_script_info():
    out = subprocess.run([sys.executable, "-m", "icemon", "info"], capture_output=True, text=True,
                         check=True).stdout
    assert '"format": "icemon-model/1"' in out
