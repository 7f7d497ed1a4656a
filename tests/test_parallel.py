"""The monitor's work shared by MPI ranks: shares, halos, identical answers, collective errors.

The MPI checks run the real LAMMPS library under ``mpirun`` (4 ranks oversubscribe a
2-core machine, which only costs time)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from icemon import Frame, Pipeline
from icemon.demo import mw
from icemon.execution.mpi import Decomposition, best_grid
from icemon.geometry.neighbors import neighbor_list
from icemon.io.log import complete_frames, open_log
from icemon.lattices.references import reference

from .conftest import gcicenet_frame, shipped_phases

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "tests" / "scripts" / "mw_run.py"


def _mpirun() -> str:
    return shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")


@pytest.mark.parametrize("size", [2, 3, 4, 8])
def test_shares_are_equal_compact_and_halos_hold_every_neighbour(size):
    ice = reference("Ih", 30.0)
    pos, cell = ice.positions, np.asarray(ice.cell[:])
    dec = Decomposition.build(pos, cell, size, halo=6.0)
    counts = np.bincount(dec.owner, minlength=size)
    assert counts.sum() == len(pos) and counts.max() - counts.min() <= 1
    frac = np.linalg.solve(cell.T, pos.T).T % 1.0
    i, j, _ = neighbor_list(pos, cell, 4.0)
    for rank in range(size):
        own = dec.own(rank)
        lo, hi = dec.bounds[rank, :, 0], dec.bounds[rank, :, 1]
        assert ((frac[own] >= lo) & (frac[own] <= hi)).all()  # a box in fractional coordinates
        halo = set(dec.halo(rank, pos, cell, 4.0).tolist())
        mine = np.isin(i, own)
        assert set(j[mine].tolist()) <= halo  # every neighbour of an own atom is there
        if size > 1:
            assert len(halo) < len(pos)  # ... and it is a halo, not the whole frame


def test_grid_cuts_the_long_directions():
    assert best_grid(2, np.array([30.0, 30.0, 90.0]), 6.0) == (1, 1, 2)
    # slabs beat columns for 4 ranks in a 60 Å cube (halo volume 1.8 against 1.4² = 1.96)
    assert best_grid(4, np.array([60.0, 60.0, 60.0]), 6.0) == (1, 1, 4)
    assert sorted(best_grid(16, np.array([60.0, 60.0, 60.0]), 6.0)) == [1, 4, 4]
    assert best_grid(64, np.array([300.0, 300.0, 300.0]), 6.0) == (4, 4, 4)


@pytest.mark.parametrize("skin, lists", [(1.2, 1), (0.01, 2)])
def test_one_skin_list_serves_both_passes_of_a_rank(monkeypatch, pipeline, gcicenet,
                                                     skin, lists):
    """A rank builds its share's neighbour list once per frame while the skin rule holds
    and rebuilds it when it does not; either way the answer is the serial pipeline's.
    Run in one process on ``COMM_SELF`` (the same code every rank runs), on one torch
    thread: with two, the network's float32 sums vary from run to run by up to 5e-5 Å
    (measured), above the tolerance that compares the two paths' arithmetic."""
    import torch
    from mpi4py import MPI

    from icemon.execution import mpi as parallel

    builds = []
    real = parallel.neighbor_pairs
    monkeypatch.setattr(parallel, "neighbor_pairs",
                        lambda *a, **k: builds.append(1) or real(*a, **k))
    monkeypatch.setattr(pipeline.denoiser, "skin", skin)
    frame = gcicenet_frame(gcicenet, "3")  # real TIP4P/Ice ice III: first steps ~0.3 Å
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = pipeline.process_with(frame, parallel.Ranks.for_frame(
            MPI.COMM_SELF, frame, pipeline.soap.config.reach))
        ref = pipeline.process(frame)
    finally:
        torch.set_num_threads(threads)
    assert res.n_denoise_steps == ref.n_denoise_steps == 2
    assert len(builds) == lists
    np.testing.assert_array_equal(res.labels, ref.labels)
    np.testing.assert_allclose(res.denoised, ref.denoised, atol=2e-5)


def _run(tmp_path, data, ranks, name, *args):
    out = subprocess.run([_mpirun(), "-np", str(ranks), sys.executable, str(RUN), str(data),
                          str(tmp_path / name), *args], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def big_ih(tmp_path_factory):
    return mw.write_data(mw.ice("Ih", 30.0), tmp_path_factory.mktemp("mw") / "ih30.data")


@pytest.mark.slow
def test_labels_equal_the_serial_pipeline_on_1_2_and_4_ranks(tmp_path, big_ih):
    """Every rank count logs, frame by frame, what the serial pipeline gives on the logged
    positions: labels identical, the same schema, and denoised positions within 2e-5 Å:
    the same float32 arithmetic summed in another order (the serial pass reuses a skin
    neighbour list, a rank builds its share's list), which leaves a few float32 units of
    ~25 Å coordinates (measured: at most 1.3e-5 Å, in the liquid)."""
    serial = Pipeline()
    schemas = {}
    for ranks in (1, 2, 4):
        name = f"np{ranks}.h5"
        res = _run(tmp_path, big_ih, ranks, name, "--every", "50", "--steps", "50",
                   "--melt", "1500", "--temperature", "260", "--count-soap")
        described = res.pop("described")
        assert res == {"ranks": ranks, "errors": [], "frames": 2}
        if ranks > 1:  # each rank describes its own atoms only: no SOAP halo work
            assert described == [len(mw.ice("Ih", 30.0))] * 2
        with open_log(tmp_path / name) as f:
            n = complete_frames(f)
            schemas[ranks] = {k: (v.dtype, v.shape[1:]) for k, v in f.items()
                              if isinstance(v, h5py.Dataset)}
            schemas[ranks]["attrs"] = sorted(set(f.attrs) - {"source", "created"})
            for k in range(n):
                frame = Frame(f["positions"][k], f["cell"][k], f["atom_ids"][()])
                ref = serial.process(frame)
                np.testing.assert_array_equal(f["labels"][k], ref.labels)
                np.testing.assert_allclose(f["denoised"][k], ref.denoised, atol=2e-5)
                # the same float32 rounding, through standardised SOAP
                np.testing.assert_allclose(f["scores"][k], ref.scores, rtol=0, atol=5e-5)
            labels = f["labels"][n - 1]
        # an ice|liquid slab: both phases present, so the equality means something
        assert 0.2 < (labels == PHASES.index("Ih")).mean() < 0.8
        assert 0.2 < (labels == shipped_phases().index("liquid")).mean() < 0.8
    assert schemas[1] == schemas[2] == schemas[4]


@pytest.mark.slow
def test_a_fault_on_one_rank_is_recorded_once_and_every_rank_goes_on(tmp_path, big_ih):
    res = _run(tmp_path, big_ih, 2, "fault.h5", "--every", "50", "--steps", "100",
               "--fault-rank", "1")
    assert res["frames"] == 2
    assert len(res["errors"]) == 1
    step, message = res["errors"][0]
    assert step == 50 and "rank 1: RuntimeError: injected fault" in message
    with open_log(tmp_path / "fault.h5") as f:
        np.testing.assert_array_equal(f["step"][: complete_frames(f)], [0, 100])
        assert len(f["errors"]) == 1


@pytest.mark.parametrize("mode, message", [
    ("overlap", "rank 1: FrameError: atoms"), ("embed", "rank 1: RuntimeError: injected embed fault"),
    ("block", "rank 1: RuntimeError: injected block fault")])
def test_a_fault_inside_a_pass_on_one_rank_stops_that_frame_on_every_rank(mode, message):
    """A failure inside a denoising pass on rank 1 only (overlapping atoms in its share; the
    network's embedding or a block raising there) travels with the next exchange: both ranks raise the
    same error for that frame, nobody waits forever, and the next frame is classified."""
    out = subprocess.run([_mpirun(), "-np", "2", sys.executable,
                          str(ROOT / "tests" / "scripts" / "pass_fault.py"), mode],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(r["rank"] for r in ranks) == [0, 1]
    for r in ranks:
        assert len(r["errors"]) == 1 and message in r["errors"][0], r
        assert r["labels"][PHASES.index("Ih")] == sum(r["labels"])  # the good frame
    assert ranks[0]["errors"] == ranks[1]["errors"]


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["xtc", "extxyz"])
def test_mpirun_icemon_classify_writes_the_serial_labels(tmp_path, gcicenet, suffix):
    """``mpirun -np 2 icemon classify`` (MDAnalysis and ASE readers) deals the frames to
    the ranks and writes the same log as the serial command, in frame order (three frames:
    one full round of two ranks and a partial one)."""
    if suffix == "xtc":
        traj = [str(gcicenet / "md_w_dev.xtc"), "--top", str(gcicenet / "md_w.tpr")]
    else:
        from ase import Atoms
        from ase.io import write

        from icemon.io.readers import read_frames

        frames = list(read_frames(gcicenet / "md_1c_dev.xtc", gcicenet / "md_1c.tpr",
                                  stop=3))
        write(tmp_path / "ic.extxyz", [Atoms("O" * f.n_atoms, positions=f.positions,
                                             cell=f.cell, pbc=True) for f in frames])
        traj = [str(tmp_path / "ic.extxyz")]
    args = [*traj, "--stop", "3", "--quiet"]
    exe = [sys.executable, "-m", "icemon", "classify"]
    # one torch thread, as each rank has: with two, torch sometimes computes the second
    # thread's half of an elementwise op (the radial basis' sin) differently, by up to
    # 2.4e-5 (seen in 1 of 8 fresh processes on the 2-vCPU VM, before and after session
    # 18), which moves a frame's denoised positions by up to 6e-5 Å from run to run
    serial = subprocess.run([*exe, *args, "--threads", "1", "-o", str(tmp_path / "s.h5")],
                            capture_output=True, text=True, timeout=600)
    assert serial.returncode == 0, serial.stderr[-2000:]
    par = subprocess.run([_mpirun(), "-np", "2", *exe, *args, "-o", str(tmp_path / "p.h5")],
                         capture_output=True, text=True, timeout=600)
    assert par.returncode == 0, par.stderr[-2000:]
    assert "(2 MPI ranks)" in par.stderr
    with open_log(tmp_path / "s.h5") as s, open_log(tmp_path / "p.h5") as p:
        assert complete_frames(s) == complete_frames(p) == 3
        np.testing.assert_array_equal(s["labels"][()], p["labels"][()])
        np.testing.assert_array_equal(s["step"][()], p["step"][()])
        np.testing.assert_allclose(s["denoised"][()], p["denoised"][()], atol=2e-5)


@pytest.mark.slow
def test_mpirun_icemon_classify_stops_on_every_rank_at_a_bad_frame(tmp_path, gcicenet):
    """A frame that fails on rank 1 (two atoms on one site) stops every rank with the
    serial command's message, nobody left waiting, and the frame before it is logged."""
    from ase import Atoms
    from ase.io import write

    from icemon.io.readers import read_frames

    frames = list(read_frames(gcicenet / "md_1c_dev.xtc", gcicenet / "md_1c.tpr", stop=3))
    atoms = [Atoms("O" * f.n_atoms, positions=f.positions, cell=f.cell, pbc=True)
             for f in frames]
    atoms[1].positions[1] = atoms[1].positions[0]
    write(tmp_path / "bad.extxyz", atoms)
    exe = [sys.executable, "-m", "icemon", "classify", str(tmp_path / "bad.extxyz"), "-q"]
    serial = subprocess.run([*exe, "-o", str(tmp_path / "s.h5")], capture_output=True,
                            text=True, timeout=600, check=False)
    par = subprocess.run([_mpirun(), "-np", "2", *exe, "-o", str(tmp_path / "p.h5")],
                         capture_output=True, text=True, timeout=600, check=False)
    assert serial.returncode != 0 and par.returncode != 0
    assert "overlapping oxygens" in serial.stderr and "overlapping oxygens" in par.stderr
    with open_log(tmp_path / "s.h5") as s, open_log(tmp_path / "p.h5") as p:
        assert complete_frames(s) == complete_frames(p) == 1
        np.testing.assert_array_equal(s["labels"][()], p["labels"][()])


@pytest.mark.slow
def test_regional_checks_give_the_serial_labels_on_2_ranks(gcicenet):
    """The orbit check (ice XII read as V → unknown), the averaged repeat distance (ice
    IV's scattered atoms), the family vote (thermal sI's atoms read as sII) and the
    topology check (TS1 voted sI) need the whole frame's labels and positions, a
    liquid box written 2×2×2 its replicas, the growth check's ordered cores the own
    scores of every atom: two ranks sharing each frame give the serial labels, and the
    checks have acted (XII, IV, TS1 all unknown, sI all sI, the replicated liquid all
    liquid, the small nucleus found)."""
    out = subprocess.run([_mpirun(), "-np", "2", sys.executable,
                          str(ROOT / "tests" / "scripts" / "regional_checks.py"), str(gcicenet)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["frame"]: r for r in json.loads(out.stdout.strip().splitlines()[-1])}
    phases = shipped_phases()
    for name, expected in (("12", "unknown"), ("4", "unknown"), ("TS1", "unknown"),
                           ("sI", "sI"), ("w222", "liquid")):
        assert rows[name]["same"], rows[name]
        counts = rows[name]["counts"]
        assert counts[phases.index(expected)] == sum(counts), (name, counts)
    nucleus = rows["nucleus"]
    assert nucleus["same"], nucleus
    assert sum(nucleus["counts"]) - nucleus["counts"][phases.index("liquid")] >= 10, nucleus


def test_more_ranks_than_oxygens_give_the_serial_labels():
    """4 ranks on frames of 2 and 6 oxygens: ranks that own no atom take part in every
    collective step (they crashed on empty shares before) and the labels are the serial
    ones (ice Ic)."""
    out = subprocess.run([_mpirun(), "-np", "4", sys.executable,
                          str(ROOT / "tests" / "scripts" / "few_atoms_mpi.py")],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert sorted(result) == ["2", "6"]
    for shared, serial in result.values():
        assert shared == serial == [PHASES.index("Ic")] * len(serial)
