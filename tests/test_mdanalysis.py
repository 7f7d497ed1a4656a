"""`icemon.integrations.mdanalysis.IcePhases` on the GCIceNet ice Ih trajectory, and `icemon classify`
running it: the same labels, results of the documented shapes, the log, the errors."""

import subprocess
import sys
import warnings

import MDAnalysis as mda
import numpy as np
import pytest

from icemon import FrameError
from icemon.cli import main
from icemon.errors import ConfigError
from icemon.integrations.mdanalysis import IcePhases
from icemon.io.log import LogWriter
from icemon.io.log.reader import Log

from .conftest import shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

IH = PHASES.index("Ih")


@pytest.fixture
def universe(gcicenet):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tpr version notes
        return mda.Universe(str(gcicenet / "md_1h.tpr"), str(gcicenet / "md_1h_dev.xtc"))


def _log_arrays(path):
    with Log(path) as log:
        n = log.n_frames
        return {"labels": np.array([log.labels(k) for k in range(n)]),
                "scores": np.array([log.scores(k) for k in range(n)]),
                "times": log.times, "steps": log.steps, "atom_ids": log.atom_ids,
                "fractions": log.fractions, "source": log.file.attrs["source"],
                "positions": log.has_positions}


@pytest.mark.slow
def test_equals_icemon_classify(universe, gcicenet, tmp_path):
    """The issue's acceptance check: the analysis and the command give the same labels."""
    ice = IcePhases(universe.select_atoms("name OW")).run(stop=4, step=2)
    r = ice.results
    assert r.labels.shape == r.scores.shape == (2, 1024)
    assert r.labels.dtype == np.int8 and r.scores.dtype == np.float32
    assert r.phases == ice.pipeline.model.phases
    assert r.fractions.shape == (2, len(r.phases))
    np.testing.assert_allclose(r.fractions.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(r.frames, [0, 2])
    np.testing.assert_allclose(r.times, [0.0, 200.0])  # ps
    np.testing.assert_array_equal(r.times, ice.times)  # MDAnalysis's own attribute agrees
    assert "denoised" not in r  # only with keep_denoised
    assert (r.labels == IH).mean() >= 0.995

    out = tmp_path / "cli.h5"
    assert main(["classify", str(gcicenet / "md_1h_dev.xtc"), "--top",
                 str(gcicenet / "md_1h.tpr"), "--stop", "4", "--every", "2", "-o", str(out),
                 "-q"]) == 0
    cli = _log_arrays(out)
    np.testing.assert_array_equal(r.labels, cli["labels"])
    np.testing.assert_allclose(r.scores, cli["scores"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(r.fractions, cli["fractions"])
    np.testing.assert_array_equal(r.times, cli["times"])
    np.testing.assert_array_equal(r.steps, cli["steps"])
    np.testing.assert_array_equal(r.atom_ids, cli["atom_ids"])
    assert cli["source"].startswith("icemon classify ")


def test_log_on_frame_and_denoised(universe, model, tmp_path):
    """log= leaves a readable icemon/1 log of the run; on_frame sees every result."""
    import torch

    seen = []
    path = tmp_path / "run.h5"
    before = torch.get_num_threads()
    ice = IcePhases(universe.select_atoms("name OW"), model, log=path, keep_denoised=True,
                    on_frame=seen.append, threads=1).run(start=1, stop=2, verbose=False)
    assert torch.get_num_threads() == before  # threads= holds during run() only
    r = ice.results
    assert ice.n_logged == 1 and len(seen) == 1
    assert r.denoised.shape == (1, 1024, 3) and np.isfinite(r.denoised).all()
    np.testing.assert_allclose(r.denoised[0], seen[0].denoised, atol=1e-4)  # Å, float32
    logged = _log_arrays(path)
    np.testing.assert_array_equal(logged["labels"], r.labels)
    np.testing.assert_allclose(logged["times"], [100.0])
    assert logged["positions"] and "IcePhases" in logged["source"]
    # the run closed the log: it can be appended to by a later run (steps go forward)
    IcePhases(universe.select_atoms("name OW"), model, log=path).run(start=3, stop=4)
    assert len(_log_arrays(path)["labels"]) == 2


def test_log_closed_when_a_frame_fails(universe, model, tmp_path):
    path = tmp_path / "run.h5"

    def fail(res):
        raise RuntimeError("callback failed")

    ice = IcePhases(universe.select_atoms("name OW"), model, log=path, on_frame=fail,
                    positions=False)
    with pytest.raises(RuntimeError, match="callback failed"):
        ice.run(stop=1)
    logged = _log_arrays(path)  # readable (closed), the frame before the failure kept
    assert len(logged["labels"]) == 1 and not logged["positions"]
    LogWriter(path, logged["atom_ids"], **ice.pipeline.log_settings()).close()  # not held


@pytest.mark.filterwarnings("ignore:Guessed all Masses:UserWarning",
                            "ignore:Reader has no dt:UserWarning")
def test_lammps_dump_has_no_times(universe, model, tmp_path):
    """A LAMMPS dump records steps, not times: times are NaN, as `icemon classify` logs."""
    ow = universe.select_atoms("name OW")
    box = universe.dimensions[:3]
    lines = []
    for step in (500, 1000):
        lines += ["ITEM: TIMESTEP", str(step), "ITEM: NUMBER OF ATOMS", str(len(ow)),
                  "ITEM: BOX BOUNDS pp pp pp", *(f"0.0 {x:.6f}" for x in box),
                  "ITEM: ATOMS id type x y z"]
        lines += [f"{k + 1} 1 {x:.6f} {y:.6f} {z:.6f}" for k, (x, y, z) in
                  enumerate(ow.positions)]
    dump = tmp_path / "ice.lammpstrj"
    dump.write_text("\n".join(lines) + "\n")
    u = mda.Universe(str(dump), format="LAMMPSDUMP", topology_format="LAMMPSDUMP")
    ice = IcePhases(u.select_atoms("type 1"), model).run(step=2)
    r = ice.results
    assert np.isnan(r.times).all() and list(r.steps) == [500]
    np.testing.assert_array_equal(r.atom_ids, np.arange(1, len(ow) + 1))
    assert (r.labels == IH).mean() >= 0.995


def test_empty_selection_is_refused(universe):
    with pytest.raises(FrameError, match="empty"):
        IcePhases(universe.select_atoms("name XX"))


def test_no_periodic_box_is_refused():
    u = mda.Universe.empty(3, trajectory=True)
    u.atoms.positions = np.array([[0, 0, 0], [3, 0, 0], [0, 3, 0]], dtype=np.float32)
    assert u.dimensions is None
    with pytest.raises(FrameError, match="periodic box"):
        IcePhases(u.atoms)


def test_updating_selection_is_refused(universe):
    with pytest.raises(ConfigError, match="fixed set of atoms"):
        IcePhases(universe.select_atoms("name OW and prop z < 10", updating=True))


def test_classify_no_frames(gcicenet, tmp_path, capsys):
    out = tmp_path / "o.h5"
    rc = main(["classify", str(gcicenet / "md_1h_dev.xtc"), "--top", str(gcicenet / "md_1h.tpr"),
               "--start", "100", "-o", str(out), "-q"])
    assert rc == 2
    assert "yielded no frames" in capsys.readouterr().err
    assert not out.exists()


def test_classify_every_zero(gcicenet, tmp_path, capsys):
    rc = main(["classify", str(gcicenet / "md_1h_dev.xtc"), "--top", str(gcicenet / "md_1h.tpr"),
               "--every", "0", "-o", str(tmp_path / "o.h5")])
    assert rc == 2
    assert "--every" in capsys.readouterr().err


def test_import_does_not_load_torch():
    """The network's stack is loaded when an analysis is made, not on import."""
    code = ("import sys, icemon.integrations.mdanalysis; "
            "print([m for m in ('torch', 'e3nn', 'dscribe', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout
