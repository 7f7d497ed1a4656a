"""No silent wrong answer (issue: trust): wrong length units both ways, selections given
as boolean masks, non-finite numbers, and input checks that run whatever the number of
denoising passes. Each of these returned plausible labels without a word before."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from icemon import Frame, FrameError
from icemon.lattices.references import reference

BOHR = 1.0 / 0.529177  # Å → Bohr: coordinates in Bohr are 1.89× the Å values


def _ice(phase="Ic", size=16.0):
    a = reference(phase, size)
    return a.positions.copy(), np.asarray(a.cell[:])


@pytest.mark.parametrize("steps", [None, 0])
def test_coordinates_in_bohr_are_refused_with_a_units_hint(pipeline, steps):
    """512 oxygens of ice Ic handed over in Bohr as if Å came back 100 % `unknown`."""
    from icemon import Pipeline

    pos, cell = _ice()
    pipe = pipeline if steps is None else Pipeline(pipeline.model, denoise_steps=steps)
    with pytest.raises(FrameError, match="sparse.*units"):
        pipe.process(Frame(pos * BOHR, cell * BOHR))
    assert (pipe.process(Frame(pos, cell)).labels == pipe.model.phases.index("Ic")).all()


def test_overlapping_atoms_are_refused_without_denoising(pipeline):
    from icemon import Pipeline

    pos, cell = _ice()
    pos[1] = pos[0] + 0.1
    with pytest.raises(FrameError, match="overlapping"):
        Pipeline(pipeline.model, denoise_steps=0).process(Frame(pos, cell))


def test_an_ice_slab_in_vacuum_is_not_taken_for_wrong_units(pipeline):
    """Sparse on average is not sparse between neighbours: a slab with vacuum classifies."""
    pos, cell = _ice("Ih", 18.0)
    cell = cell.copy()
    cell[2] *= 2.0  # half the box is vacuum
    res = pipeline.process(Frame(pos, cell))  # classified, not refused
    assert (res.labels == pipeline.model.phases.index("Ih")).mean() >= 0.4


def test_a_boolean_mask_selects_those_atoms():
    """``select=<bool mask>`` took the mask's 0/1 values as indices (192 atoms selected
    for 64 oxygens)."""
    water = Atoms()
    for k in range(8):
        m = molecule("H2O")
        m.translate([3.0 * k, 0, 0])
        water += m
    water.cell = [30.0, 10.0, 10.0]
    water.pbc = True
    mask = np.array(water.get_chemical_symbols()) == "O"
    frame = Frame.from_ase(water, select=mask)
    assert frame.n_atoms == 8
    np.testing.assert_array_equal(frame.atom_ids, np.flatnonzero(mask))
    with pytest.raises(FrameError, match="mask"):
        Frame.from_ase(water, select=mask[:-1])


def test_a_boolean_mask_selects_the_oxygens_in_the_ase_hook(tmp_path):
    import icemon.hooks.ase as hook

    a = reference("Ih", 14.0)
    atoms = Atoms("O" * len(a), positions=a.positions, cell=a.cell, pbc=True)
    mask = np.zeros(len(atoms), dtype=bool)
    mask[::2] = True
    obs = hook.Observer(atoms, tmp_path / "m.h5", oxygens=mask)
    try:
        np.testing.assert_array_equal(obs.indices, np.flatnonzero(mask))
    finally:
        obs.close()


def test_non_finite_network_output_is_an_error_not_ice(pipeline, monkeypatch):
    """A NaN score compared as "not liquid" and argmin made it Ih."""
    import torch

    pos, cell = _ice()
    real = pipeline.denoiser.net

    def nan_net(*args):
        out = real(*args)
        return out * torch.tensor(float("nan"))

    monkeypatch.setattr(pipeline.denoiser, "net", nan_net)
    with pytest.raises(FrameError, match="non-finite"):
        pipeline.process(Frame(pos, cell))


def test_non_finite_descriptors_are_an_error_not_ice(pipeline, monkeypatch):
    pos, cell = _ice()
    real = pipeline.soap.__class__.__call__

    def nan_soap(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        out[3] = np.nan
        return out

    monkeypatch.setattr(pipeline.soap.__class__, "__call__", nan_soap)
    with pytest.raises(FrameError, match="non-finite"):
        pipeline.process(Frame(pos, cell))


@pytest.mark.parametrize("steps", [None, 0])
def test_the_mpi_path_refuses_wrong_units_too(pipeline, steps):
    """The same checks on a rank's share (run on COMM_SELF: the code every rank runs)."""
    from mpi4py import MPI

    from icemon import Pipeline
    from icemon.execution.mpi import CollectiveError, Ranks

    pos, cell = _ice()
    pipe = pipeline if steps is None else Pipeline(pipeline.model, denoise_steps=steps)
    frame = Frame(pos * BOHR, cell * BOHR)
    with pytest.raises(CollectiveError, match="sparse.*units"):
        pipe.process_with(frame, Ranks.for_frame(MPI.COMM_SELF, frame, pipe.soap.config.reach))


def _water_data(tmp_path):
    """A LAMMPS data file of ice Ih water numbered as VMD's TopoTools does (types by
    element name: H = 1, O = 2) with real masses."""
    from ase.io import write

    a = reference("Ih", 14.0)
    o = a.positions
    h = np.concatenate([o + [0.96, 0.0, 0.0], o + [-0.24, 0.93, 0.0]])
    atoms = Atoms(["O"] * len(o) + ["H"] * len(h), positions=np.concatenate([o, h]),
                  cell=a.cell, pbc=True)
    path = tmp_path / "water.data"
    write(path, atoms, format="lammps-data", specorder=["H", "O"], masses=True,
          units="real", atom_style="atomic")
    return path, len(o)


def _lammps_with(data):
    from lammps import lammps
    from mpi4py import MPI  # noqa: F401

    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(["units real", "atom_style atomic", "boundary p p p",
                       f"read_data {data}", "pair_style zero 4.0", "pair_coeff * *"])
    return lmp


def test_lammps_oxygens_are_never_guessed_as_type_1(tmp_path):
    """Type 1 is hydrogen here: the hook took type 1 by default and classified the
    hydrogens. Now the oxygen type comes from the masses, and a hydrogen type is refused."""
    from mpi4py import MPI  # noqa: F401

    import icemon.hooks.lammps as hook
    from icemon.analysis import Log

    data, n_oxygens = _water_data(tmp_path)
    lmp = _lammps_with(data)
    with pytest.raises(hook.LammpsError, match="type 1 has mass 1.008"):
        hook.attach(lmp, tmp_path / "h.h5", every=10, oxygens=1)
    with hook.attach(lmp, tmp_path / "o.h5", every=10, denoise_steps=0) as mon:
        assert mon.oxygen_type == 2
        lmp.command("run 0")
    with Log(tmp_path / "o.h5") as log:
        assert log.n_atoms == n_oxygens
    lmp.close()


def test_lammps_without_a_single_oxygen_mass_asks_for_the_type(tmp_path):
    import icemon.hooks.lammps as hook

    data, _ = _water_data(tmp_path)
    lmp = _lammps_with(data)
    lmp.command("mass 1 16.0")  # two types with an oxygen's mass: ambiguous
    with pytest.raises(hook.LammpsError, match="pass oxygens=TYPE: 2 atom types"):
        hook.attach(lmp, tmp_path / "x.h5", every=10)
    lmp.close()


def test_no_public_phase_list_disagrees_with_the_model(pipeline):
    """`(res.labels == icemon.LIQUID)` counted sII with the shipped model (icemon.LIQUID was
    the eight-name list's 7). Names and codes now come from the model or the log only."""
    import icemon
    from icemon.errors import PhaseError
    from icemon.execution.pipeline import Result

    for name in ("PHASES", "LIQUID", "ICE_PHASES"):
        with pytest.raises(AttributeError, match="come from the model or the log"):
            getattr(icemon, name)
    pos, cell = _ice()
    res = pipeline.process(Frame(pos, cell))
    assert res.phases[res.liquid] == "liquid" and res.phases[res.unknown] == "unknown"
    assert res.ice.all()
    with pytest.raises(PhaseError, match="vocabulary"):
        Result(res.frame, res.labels, res.scores, res.denoised, res.nearest)


def test_a_file_without_steps_logs_unknown_steps_and_reports_frames(tmp_path):
    """An extxyz without step info was logged with its frame index as the MD step, and the
    report gave velocities in Å/step."""
    from ase.io import write

    from icemon.analysis import Log
    from icemon.cli import main

    a = reference("Ih", 16.0)
    frames = []
    for k in range(3):
        at = Atoms("O" * len(a), positions=a.positions + k * 0.01, cell=a.cell, pbc=True)
        frames.append(at)
    write(tmp_path / "t.extxyz", frames)
    assert main(["classify", str(tmp_path / "t.extxyz"), "-o", str(tmp_path / "t.h5"),
                 "--quiet"]) == 0
    with Log(tmp_path / "t.h5") as log:
        assert (log.steps == -1).all()
        t, label = log.times_or_steps()
        assert label == "frame" and list(t) == [0.0, 1.0, 2.0]


def test_a_log_of_other_labelling_rules_is_not_extended(tmp_path, monkeypatch):
    """Appends never compared icemon_version: a log written under other labelling rules
    (another major.minor) was extended silently. A patch release may append."""
    import icemon
    from icemon import LogError, LogWriter
    from icemon.io.log import open_log

    from .test_log import PHASES, _result

    path = tmp_path / "v.h5"
    kw = dict(model_name="m", model_sha256="a" * 64, threshold=3.0, phases=PHASES)
    monkeypatch.setattr(icemon, "__version__", "0.1.0")
    with LogWriter(path, np.arange(5), **kw) as w:
        w.append(_result(step=0))
    monkeypatch.setattr(icemon, "__version__", "0.2.0")
    with pytest.raises(LogError, match="labelling rules of icemon 0.1.0 in the log, 0.2.0 now"):
        LogWriter(path, np.arange(5), **kw)
    monkeypatch.setattr(icemon, "__version__", "0.1.7")
    with LogWriter(path, np.arange(5), **kw) as w:
        w.append(_result(step=10))
    with open_log(path) as f:
        assert list(f["step"][:2]) == [0, 10]


def test_an_interrupted_soap_call_leaves_no_stale_rows_for_the_next(monkeypatch):
    """Helper replies carry no job id: a call interrupted in the parent (Ctrl-C) left the
    helpers' rows in the pipes, and the next call read them as its own."""
    from icemon.descriptors.soap import Soap

    soap = Soap(processes=2, backend="dscribe")
    a, cell = _ice("Ih", 20.0)
    b = a + np.random.default_rng(0).normal(0, 0.2, a.shape)
    real = soap._soap.create
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    try:
        monkeypatch.setattr(soap._soap, "create", interrupted)
        with pytest.raises(KeyboardInterrupt):
            soap(a, cell)
        np.testing.assert_allclose(soap(b, cell), soap.plain(b, cell), rtol=1e-6, atol=1e-9)
    finally:
        soap.close()


def test_soap_helpers_are_capped():
    """Their number followed torch's thread count (~60 interpreters on a 128-core node)."""
    import torch

    from icemon.descriptors.soap import MAX_PROCESSES, Soap

    assert Soap(processes=1000).n_processes() == MAX_PROCESSES
    threads = torch.get_num_threads()
    torch.set_num_threads(64)
    try:
        assert Soap().n_processes() == MAX_PROCESSES
    finally:
        torch.set_num_threads(threads)


def _wet_ice_with_substrate():
    """Ice Ic water (two hydrogens per oxygen) plus four oxygens of a 'substrate' without
    hydrogens, and one hydroxide (one hydrogen)."""
    a = reference("Ic", 14.0)
    o = a.positions
    h1 = o + [0.96, 0.0, 0.0]
    h2 = o + [-0.24, 0.93, 0.0]
    cell = np.asarray(a.cell[:]).copy()
    cell[2, 2] += 12.0  # room for the substrate above the ice
    top = o[:5, :] * [1, 1, 0] + [0, 0, a.cell[2, 2] + 6.0]
    symbols = ["O"] * len(o) + ["H"] * (2 * len(o)) + ["O"] * 5 + ["H"]
    pos = np.concatenate([o, h1, h2, top, top[4:5] + [0.97, 0, 0]])
    return Atoms(symbols, positions=pos, cell=cell, pbc=True), len(o)


def test_oxygens_that_are_not_waters_are_left_out_with_a_count():
    """Non-water oxygens (substrate, hydroxide) were classified with the water and averaged
    into its shells; now left out with a warning that counts them, unless asked."""
    from icemon.geometry.frame import NotWaterWarning

    atoms, n_water = _wet_ice_with_substrate()
    with pytest.warns(NotWaterWarning, match="5 of .* selected oxygens"):
        frame = Frame.from_ase(atoms)
    assert frame.n_atoms == n_water
    assert Frame.from_ase(atoms, water_only=False).n_atoms == n_water + 5


def test_the_ase_hook_monitors_water_oxygens_only(tmp_path):
    import icemon.hooks.ase as hook
    from icemon.geometry.frame import NotWaterWarning

    atoms, n_water = _wet_ice_with_substrate()
    with pytest.warns(NotWaterWarning):
        obs = hook.Observer(atoms, tmp_path / "w.h5", denoise_steps=0)
    try:
        assert len(obs.indices) == n_water
    finally:
        obs.close()


OTHER_HOST_WRITER = """
import json, os, signal, sys
import numpy as np
from icemon import Frame, LogWriter
from icemon.execution.pipeline import Result
phases = ("Ih", "liquid")
w = LogWriter(sys.argv[1], np.arange(3), model_name="m", model_sha256="a" * 64,
              threshold=3.0, phases=phases)
frame = Frame(np.eye(3) * 3.0, np.eye(3) * 10, np.arange(3), step=0)
w.append(Result(frame, np.zeros(3, np.int8), np.zeros(3, np.float32), frame.positions,
                np.zeros(3, np.int8), phases=phases))
w.file.attrs["writer"] = json.dumps({"host": "node-0042", "pid": os.getpid()})
w.file.flush()
os.kill(os.getpid(), signal.SIGKILL)  # the job's node goes down with the log open
"""


def test_a_log_marked_open_by_another_host_is_not_taken_over(tmp_path):
    """Two jobs on a shared file system: the writer on another host was taken for dead and
    its log written by both. Now refused with the remedy; `icemon unlock` clears the mark
    once the user knows that job has ended; then the log is appended to."""
    import subprocess
    import sys

    from icemon import LogWriter
    from icemon.execution.pipeline import Result
    from icemon.io.log import Log, LogError

    def writer():
        return LogWriter(path, np.arange(3), model_name="m", model_sha256="a" * 64,
                         threshold=3.0, phases=("Ih", "liquid"))

    path = tmp_path / "shared.h5"
    script = tmp_path / "writer.py"
    script.write_text(OTHER_HOST_WRITER)
    subprocess.run([sys.executable, str(script), str(path)], timeout=300)
    with pytest.raises(LogError, match="node-0042.*cannot tell.*icemon unlock"):
        writer()
    with Log(path) as log:  # untouched, still readable
        assert log.steps.tolist() == [0]
    out = subprocess.run([sys.executable, "-m", "icemon", "unlock", str(path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "node-0042" in out.stderr, out.stderr
    frame = Frame(np.eye(3) * 3.0, np.eye(3) * 10, np.arange(3), step=1)
    with writer() as w:
        w.append(Result(frame, np.zeros(3, np.int8), np.zeros(3, np.float32), frame.positions,
                        np.zeros(3, np.int8), phases=("Ih", "liquid")))
    with Log(path) as log:
        assert log.steps.tolist() == [0, 1]


def test_network_file_systems_are_recognised(tmp_path):
    """Logs on NFS/SMB: SWMR reading is not safe there (HDF5 does not support it); the
    writer warns. Read from the mount table: the longest mount point holding the log."""
    from icemon.io.log.recovery import shared_filesystem

    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\n"
                      "server:/export /mnt/shared nfs4 rw,relatime 0 0\n"
                      "//nas/scratch /mnt/shared/smb cifs rw 0 0\n"
                      "/dev/sdb1 /mnt/shared/local xfs rw 0 0\n"
                      "lustre@tcp:/fs /lustre lustre rw 0 0\n")
    assert shared_filesystem("/mnt/shared/run/a.h5", mounts) == "nfs4"
    assert shared_filesystem("/mnt/shared/smb/a.h5", mounts) == "cifs"
    assert shared_filesystem("/mnt/shared/local/a.h5", mounts) is None
    assert shared_filesystem("/mnt/sharedX/a.h5", mounts) is None  # not under /mnt/shared
    assert shared_filesystem("/lustre/run/a.h5", mounts) is None  # POSIX ordering
    assert shared_filesystem("/home/a.h5", tmp_path / "missing") is None


def test_mdanalysis_and_icemon_classify_monitor_water_oxygens_only(tmp_path):
    """The same rule for MDAnalysis (IcePhases and the files icemon classify reads with
    it) and for the files ASE reads: the substrate and the hydroxide are left out."""
    from contextlib import nullcontext

    import MDAnalysis as mda
    from ase.io import write

    from icemon.cli import main
    from icemon.geometry.frame import NotWaterWarning
    from icemon.integrations.mdanalysis import IcePhases
    from icemon.io.log import Log

    atoms, n_water = _wet_ice_with_substrate()
    write(tmp_path / "wet.pdb", atoms)
    u = mda.Universe(str(tmp_path / "wet.pdb"))
    with pytest.warns(NotWaterWarning, match="5 of .* selected oxygens"):
        ice = IcePhases(u.select_atoms("name O"), denoise_steps=0)
    assert ice.run().results.labels.shape == (1, n_water)
    assert IcePhases(u.select_atoms("name O"), denoise_steps=0,
                     water_only=False).run().results.labels.shape == (1, n_water + 5)
    write(tmp_path / "wet.extxyz", atoms)
    for args, expected in (([], n_water), (["--all-oxygens"], n_water + 5)):
        out = tmp_path / f"wet{len(args)}.h5"
        with pytest.warns(NotWaterWarning) if not args else nullcontext():
            assert main(["classify", str(tmp_path / "wet.extxyz"), "-o", str(out), "-q",
                         "--denoise-steps", "0", *args]) == 0
        with Log(out) as log:
            assert log.n_atoms == expected


def test_the_ipi_hook_monitors_water_oxygens_only(tmp_path):
    import icemon.hooks.ipi
    from icemon.geometry.frame import NotWaterWarning

    from .test_ipi import _dummy_simulation

    atoms, n_water = _wet_ice_with_substrate()
    with _dummy_simulation(atoms, tmp_path, temperature=1.0) as sim:
        with pytest.warns(NotWaterWarning, match="5 of .* selected oxygens"):
            hook = icemon.hooks.ipi.attach(sim, tmp_path / "w.h5", denoise_steps=0)
        with hook:
            assert len(hook.indices) == n_water
        with icemon.hooks.ipi.attach(sim, tmp_path / "all.h5", denoise_steps=0,
                                     water_only=False) as hook:
            assert len(hook.indices) == n_water + 5


def test_a_non_periodic_structure_is_refused_on_every_ase_path(tmp_path):
    """A cluster or slab in vacuum (pbc False) was classified with periodic images that do
    not exist: 100 % Ih for a crystallite in vacuum."""
    from ase.io import write

    from icemon import read_frames

    a = reference("Ih", 15.0)
    for pbc in (False, [True, True, False]):
        a.pbc = pbc
        with pytest.raises(FrameError, match="fully periodic"):
            Frame.from_ase(a)
    write(tmp_path / "vacuum.extxyz", a)
    with pytest.raises(FrameError, match="fully periodic"):
        list(read_frames(tmp_path / "vacuum.extxyz"))


def test_files_without_times_get_no_invented_times(tmp_path):
    """MDAnalysis gives PDB/GRO frames 1 ps apart when the file records no time (its own
    default); those were logged as real ps (velocities off by the true spacing)."""
    import MDAnalysis as mda
    from ase.io import write

    from icemon.integrations.mdanalysis import IcePhases

    a = reference("Ih", 12.0)
    a.set_chemical_symbols(["O"] * len(a))
    write(tmp_path / "two.pdb", [a, a])
    u = mda.Universe(str(tmp_path / "two.pdb"))
    ice = IcePhases(u.atoms, denoise_steps=0).run()
    assert np.isnan(ice.results.times).all() and (ice.results.steps == -1).all()


def test_tip4p_virtual_sites_are_not_taken_for_oxygens(gcicenet):
    """TIP4P's M site, 0.15 Å from its oxygen, passed every geometric check: selected
    ("name MW"), 1,024 massless sites were labelled 100 % Ih on the wrong atom ids."""
    import MDAnalysis as mda

    from icemon.integrations.mdanalysis import IcePhases

    u = mda.Universe(str(gcicenet / "md_1h.tpr"), str(gcicenet / "md_1h_dev.xtc"))
    with pytest.raises(FrameError, match="massless atoms without an element"):
        IcePhases(u.select_atoms("name MW"))
    with pytest.raises(FrameError, match=r"not oxygens \(element H"):
        IcePhases(u.select_atoms("name OW or name HW1"))


def test_classify_append_extends_the_extxyz_too(tmp_path):
    """--extxyz with --append truncated the earlier extxyz: the log held 4 frames, the
    extxyz only the last 2."""
    from ase.io import read, write

    from icemon.cli import main

    frames = []
    for k in range(4):
        a = reference("Ic", 12.0)
        a.info.update(step=10 * k, time=0.1 * k)
        frames.append(a)
    write(tmp_path / "a.extxyz", frames[:2])
    write(tmp_path / "b.extxyz", frames[2:])
    args = ["-o", str(tmp_path / "l.h5"), "--extxyz", str(tmp_path / "out.extxyz"), "-q",
            "--denoise-steps", "0"]
    assert main(["classify", str(tmp_path / "a.extxyz"), *args]) == 0
    assert main(["classify", str(tmp_path / "b.extxyz"), *args, "--append"]) == 0
    assert [f.info["step"] for f in read(tmp_path / "out.extxyz", ":")] == [0, 10, 20, 30]


def test_export_of_denoised_positions_keeps_an_unwrapped_trajectory_unwrapped(tmp_path,
                                                                             pipeline):
    """The log's denoised positions are wrapped into the cell; export --denoised moved
    atoms of an unwrapped trajectory by whole box vectors."""
    from ase.io import read

    from icemon.analysis.report import export
    from icemon.recording import Recorder

    pos, cell = _ice()
    rng = np.random.default_rng(3)
    shift = rng.integers(-2, 3, (len(pos), 1)) * cell[0]  # unwrapped: atoms a box away
    frame = Frame(pos + shift + rng.normal(0, 0.05, pos.shape), cell, step=0)
    with Recorder(pipeline, tmp_path / "u.h5", atom_ids=frame.atom_ids) as rec:
        rec.record(frame)
    export(tmp_path / "u.h5", tmp_path / "d.extxyz", denoised=True)
    moved = read(tmp_path / "d.extxyz").positions - frame.positions
    assert np.abs(moved).max() < 0.5  # denoising moves by tenths of an Å, not by boxes
