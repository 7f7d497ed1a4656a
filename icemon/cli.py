"""The ``icemon`` command line: demo, classify, train, info, report, watch, export.

Size: one module on purpose, every subcommand's parser next to its handler, so that
``icemon --help`` builds the whole parser without importing numpy or torch (handlers
import their work when they run).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from icemon.errors import IcemonError

if TYPE_CHECKING:
    from icemon.execution.pipeline import Pipeline
    from icemon.recording import Options


def _pipeline(args: argparse.Namespace, mpi: bool = False) -> Pipeline:
    """The (serial) pipeline the arguments ask for; under mpirun (``mpi``) one torch thread
    per rank unless ``--threads`` says otherwise."""
    import torch

    if getattr(args, "threads", 0):
        torch.set_num_threads(args.threads)
    elif mpi:
        torch.set_num_threads(1)  # one rank per core
    return _options(args).pipeline()


def _options(args: argparse.Namespace) -> Options:
    """The classification options the arguments give."""
    from icemon.recording import Options

    return Options(args.model, args.denoise_steps, args.device, args.compile)


MPI_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "SLURM_NTASKS")


def _mpi_comm():
    """MPI.COMM_WORLD when started by ``mpirun -np P`` with P > 1, else None (mpi4py is
    imported only then: a core install has no MPI)."""
    import os

    if not any(int(os.environ.get(v, "1") or 1) > 1 for v in MPI_SIZE_VARIABLES[:3]):
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise IcemonError("started under mpirun but mpi4py is not installed: "
                          "pip install \"icemon[lammps]\" (or your cluster's mpi4py)") from exc
    return MPI.COMM_WORLD if MPI.COMM_WORLD.size > 1 else None


COMPILE_HELP = ("torch.compile the network (the default unless $ICEMON_COMPILE=0): faster "
                "frames after a one-time compilation of ~40 s, ~4 s once cached; without a "
                "C++ compiler it falls back to eager with one warning. --no-compile: eager")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model file (default: the shipped model)")
    p.add_argument("--denoise-steps", type=int, default=None,
                   help="override the model's number of denoising updates (0 = none)")
    p.add_argument("--device", default="cpu",
                   help="torch device: cpu, or cuda (neighbour lists, network, SOAP and the "
                   "nearest reference on the GPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help=COMPILE_HELP)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")


DEMO_DIR = "icemon-demo"


def cmd_demo(args) -> int:
    """Watch an mW ice slab melt in a short LAMMPS run with icemon attached (--snapshots:
    classify the bundled TIP4P/Ice snapshots instead)."""
    if args.snapshots:
        from icemon.demo.snapshots import run_snapshots

        run_snapshots(_pipeline(args))
        return 0
    options = {"model": args.model, "denoise_steps": args.denoise_steps,
               "device": args.device, "compile": args.compile, "threads": args.threads or None}
    if args.nucleation:
        from icemon.demo import nucleation

        outdir = Path(args.outdir if args.outdir != DEMO_DIR else "icemon-nucleation")
        nucleation.run_nucleation_demo(
            outdir, steps=args.steps if args.steps is not None else nucleation.DEFAULT_STEPS,
            every=args.every if args.every is not None else nucleation.DEFAULT_EVERY,
            target=args.target, **options)
        return 0
    from icemon.demo.live import DEFAULT_EVERY, DEFAULT_STEPS, run_demo

    run_demo(Path(args.outdir), steps=args.steps if args.steps is not None else DEFAULT_STEPS,
             every=args.every if args.every is not None else DEFAULT_EVERY, **options)
    return 0


MAX_AUTO_WORKERS = 8
"""``icemon classify`` uses at most this many worker processes unless told (each holds a
model and its SOAP; beyond a few the frames' reading and logging are the limit)."""


def default_workers(args: argparse.Namespace, serial: bool) -> int:
    """Worker processes for ``icemon classify`` when ``--workers`` is not given: one per
    core this process may use (at most :data:`MAX_AUTO_WORKERS`), whole frames to each
    (measured on the GCIceNet frames: 2 one-thread workers 1.4-2.2x one frame at a time on
    2 threads); 1 when frames come one at a time (``--follow``, IMD, mpirun) or
    ``--threads`` asks for threads sharing each frame."""
    import os

    if serial or getattr(args, "threads", 0):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_AUTO_WORKERS))


def single_frame(args: argparse.Namespace) -> bool:
    """Whether ``icemon classify`` has exactly one frame to classify (``--start``,
    ``--stop``, ``--every`` applied), found by reading at most two frames: then neither
    worker processes nor compiling the network pay off (measured, a 432-O extxyz frame end
    to end: in process and eager 4.5 s, in process compiled 9.3 s, two eager workers 6.9 s,
    two compiled workers 12.0 s). False when the file cannot be read (the run itself
    reports why)."""
    from itertools import islice

    from icemon.io.readers import read_frames

    try:
        frames = read_frames(args.traj, args.top, args.select, args.start, args.stop,
                             args.every, water_only=False)
        return sum(1 for _ in islice(frames, 2)) == 1
    except Exception:  # noqa: BLE001 - the run reports an unreadable file
        return False


def cmd_classify(args) -> int:
    """Classify every K-th frame of a trajectory into an icemon/1 log (and extxyz)."""
    from icemon.errors import ConfigError
    from icemon.io.imd import is_imd
    from icemon.io.log import LogError
    from icemon.io.readers import TrajectoryError, mda_oxygens, read_frames, uses_ase

    out = Path(args.output)
    imd = is_imd(args.traj)
    if out.exists() and not args.append:
        raise LogError(f"{str(out)!r} exists; pass --append to extend it or choose another name")
    if args.every < 1:
        raise ConfigError(f"--every must be at least 1, got {args.every}")
    # under mpirun every rank reads the frames and classifies every P-th one whole
    # (frames, not atoms: measured faster on trajectories, see core.pool.share_frames);
    # rank 0 writes the log (and extxyz) in frame order
    comm = _mpi_comm()
    root = comm is None or comm.rank == 0
    if comm is not None:
        comm.Barrier()  # every rank has checked the output before rank 0 creates it
    source = f"icemon classify {args.traj}"
    xyz = None
    n_logged = 0  # frames this run appended to the log

    last_step = None  # of the last logged frame
    stream_closed = False  # an IMD stream ended by its engine (not by --stop or an error)

    def on_frame(res) -> None:
        """After each logged frame: the extxyz copy (opened with the first frame)."""
        nonlocal xyz, last_step
        last_step = res.frame.step
        if args.extxyz and root:
            if xyz is None:
                # appended to with --append, as the log is
                xyz = open(args.extxyz, "a" if args.append else "w")  # noqa: SIM115
            from icemon.io.extxyz import write_result

            write_result(xyz, res)

    try:
        if args.workers is not None and args.workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {args.workers}")
        # read ahead only when a default is to be chosen
        one_frame = (not (args.follow or imd) and (args.compile is None or args.workers is None)
                     and single_frame(args))
        if one_frame and args.compile is None:
            args.compile = False  # compiling pays off over frames, not for one
        if args.workers is None:  # one-thread workers on the cores there are
            args.workers = default_workers(args, serial=bool(args.follow or imd or comm
                                                             or one_frame))
        if args.workers > 1 and comm is not None:
            raise ConfigError("--workers shares whole frames between processes; under "
                              "mpirun the ranks already share the frames")
        if (args.follow or imd) and (args.workers > 1 or comm is not None):
            raise ConfigError(f"{'an IMD stream' if imd else '--follow'} is classified "
                              "frame by frame as it arrives: not with --workers or under "
                              "mpirun")
        if args.follow and imd:
            raise ConfigError("--follow is for files: an IMD stream is followed as it comes")
        if args.time_unit is not None and not imd:
            raise ConfigError("--time-unit is for IMD streams (files record their units)")
        if args.follow or imd or uses_ase(args.traj, args.top) or args.workers > 1 \
                or comm is not None:
            from tqdm.auto import tqdm

            from icemon.execution.pool import share_frames
            from icemon.recording import Recorder

            if args.workers > 1:  # whole frames to one-thread worker processes
                pipe = _options(args).pool(args.workers)
            else:
                pipe = _pipeline(args, mpi=comm is not None)
            if imd:
                from icemon.io.imd import imd_frames

                frames = imd_frames(args.traj, args.top, args.select, args.every,
                                    water_only=not args.all_oxygens,
                                    time_unit=args.time_unit or "ps", start=args.start,
                                    stop=args.stop, wait=args.idle, timeout=args.idle)
            elif args.follow:
                from icemon.io.follow import follow_frames

                frames = follow_frames(args.traj, args.top, args.select, args.every,
                                       idle=args.idle, water_only=not args.all_oxygens,
                                       start=args.start, stop=args.stop)
            else:
                frames = read_frames(args.traj, args.top, args.select, args.start, args.stop,
                                     args.every, water_only=not args.all_oxygens)
            if args.workers > 1:
                results = pipe.imap(frames)
            elif comm is not None:  # each rank classifies its frames whole
                results = share_frames(pipe, frames, comm)
            else:
                results = map(pipe.process, frames)
            recorder = Recorder(pipe, out, source=source, positions=not args.no_positions,
                                cluster_ids=args.cluster_ids)
            try:
                for res in tqdm(results, desc="classify", unit="frame",
                                disable=args.quiet or not root):
                    if root:
                        recorder.append(res)
                        on_frame(res)
                    n_logged += 1
                stream_closed = imd and args.stop is None
            finally:
                recorder.close()
                pipe.close()
            n_frames = n_logged
        else:
            # MDAnalysis reads it: its AnalysisBase slices the trajectory and shows progress
            from icemon.integrations.mdanalysis import IcePhases

            oxygens = mda_oxygens(args.traj, args.top, args.select)
            ice = IcePhases(oxygens, args.model, threads=args.threads or None,
                            device=args.device, denoise_steps=args.denoise_steps,
                            compile=args.compile, log=out, positions=not args.no_positions,
                            source=source, on_frame=on_frame,
                            water_only=not args.all_oxygens, cluster_ids=args.cluster_ids)
            try:
                ice.run(args.start, args.stop, args.every, verbose=not args.quiet and root,
                        progressbar_kwargs={"desc": "classify", "unit": "frame"})
            finally:
                n_logged = ice.n_logged
            n_frames = ice.n_frames
    finally:
        if n_logged and root:
            ranks = f" ({comm.size} MPI ranks)" if comm is not None else ""
            print(f"wrote {n_logged} frame(s) to {out}{ranks}", file=sys.stderr)
            if stream_closed:
                print(f"{args.traj}: the engine closed the stream after step {last_step} (the "
                      "run ended, or the engine stopped: its log tells which)", file=sys.stderr)
        if xyz is not None:
            xyz.close()
    if n_frames == 0:
        raise TrajectoryError(f"{args.traj!r} yielded no frames with start={args.start} "
                              f"stop={args.stop} every={args.every}")
    return 0


def _phase_list(spec: str) -> list[str]:
    """``Ih,Ic,...`` → names, each checked to build a GenIce2 reference (PhaseError)."""
    from icemon.errors import ConfigError
    from icemon.lattices.references import unit_cell
    from icemon.phases import LIQUID_NAME

    names = [p.strip() for p in spec.split(",") if p.strip()]
    if not names or LIQUID_NAME in names or len(set(names)) != len(names):
        raise ConfigError(f"--phases needs distinct ice phases (liquid is added by itself), "
                          f"not {spec!r}")
    for name in names:
        unit_cell(name)
    return names


def _train_config(args) -> dict:
    """The training config the arguments describe: ``--config``, then ``--set``,
    ``--steps`` and ``--phases`` (the machine settings, device and threads, apart)."""
    from icemon.training.train import apply_override

    cfg: dict = json.loads(Path(args.config).read_text()) if args.config else {}
    for assignment in args.set or []:
        apply_override(cfg, assignment)
    if args.steps is not None:
        cfg["steps"] = args.steps
    if args.phases:
        cfg["phases"] = _phase_list(args.phases)
        # settings of the config that belong to its own phase list
        weights = cfg.get("phase_weights")
        if weights is not None and len(weights) != len(cfg["phases"]):
            print(f"icemon: the config's phase_weights ({len(weights)} numbers) are for "
                  f"another phase list; --phases draws its {len(cfg['phases'])} phases "
                  f"uniformly", file=sys.stderr)
            cfg["phase_weights"] = None
        if cfg.get("metric_phases"):
            kept = [p for p in cfg["metric_phases"] if p in cfg["phases"]]
            cfg["metric_phases"] = kept or None
    return cfg


def _config_conflicts(new: dict, old: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """(dotted key, new value, old value) of every entry where two configs (both
    ``TrainConfig.to_dict()``) differ."""
    out = []
    for key in sorted(set(new) | set(old)):
        a, b = new.get(key), old.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_conflicts(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((prefix + key, a, b))
    return out


def cmd_train(args) -> int:
    """Algorithm 1 on the references, then classifier + threshold → model file."""
    import torch

    from icemon.training.build import build_model
    from icemon.training.train import TrainConfig, Trainer

    workdir = Path(args.workdir)
    ckpt = workdir / "checkpoint.pt"
    if args.resume and ckpt.exists():
        trainer = Trainer.resume(ckpt, steps=args.steps, overrides=args.set)
        if args.config:  # a resume keeps its checkpoint's config: say so if the file differs
            machine = {"device": trainer.config.device, "threads": trainer.config.threads}
            differ = _config_conflicts(
                TrainConfig.from_dict({**_train_config(args), **machine}).to_dict(),
                trainer.config.to_dict())
            if differ:
                listed = "; ".join(f"{k}: checkpoint {old!r}, {args.config} {new!r}"
                                   for k, new, old in differ)
                raise SystemExit(f"icemon: error: --resume continues {ckpt} with the config it "
                                 f"was started with, which differs from --config ({listed}). "
                                 "Change what may change on resume (SOAP, calibration, passes) "
                                 "with --set KEY=VALUE, or train in another --workdir")
        print(f"resuming {ckpt} at update {trainer.step}/{trainer.config.steps}", file=sys.stderr)
    else:
        if ckpt.exists() and not args.resume:
            raise SystemExit(f"icemon: error: {ckpt} exists; pass --resume to continue it "
                             f"or choose another --workdir")
        cfg = _train_config(args)
        cfg["device"] = args.device
        if args.threads:
            cfg["threads"] = args.threads
        trainer = Trainer(TrainConfig.from_dict(cfg), workdir)
    trainer.commands.append("icemon " + " ".join(shlex.quote(a) for a in args.argv))
    trainer.run(progress=not args.quiet)
    import numpy as np

    hist = np.array(trainer.history[-200:])[:, 1] if trainer.history else np.array([np.nan])
    info = {
        "command": trainer.commands[0],
        "commands": trainer.commands,
        "updates": trainer.step,
        "final_loss": float(hist.mean()),
        "train_seconds": trainer.seconds,
        "device": str(trainer.device),
        "threads": torch.get_num_threads(),
    }
    if trainer.init_sha256:
        info["init_sha256"] = trainer.init_sha256
    model = build_model(trainer.model, trainer.config, name=args.name or Path(args.output).stem,
                        train_info=info, progress=not args.quiet)
    model.save(args.output)
    print(f"saved {args.output} (sha256 {model.sha256[:12]}…); liquid threshold "
          f"{model.threshold:.3f}", file=sys.stderr)
    print(json.dumps(model.meta["calibration"], indent=1))
    return 0


def cmd_info(args) -> int:
    """Print a model file's configuration and provenance."""
    from icemon.model.modelfile import IcemonModel

    m = IcemonModel.load(args.model)
    print(json.dumps({"path": str(m.path), "sha256": m.sha256, **m.meta}, indent=1))
    return 0


def cmd_report(args) -> int:
    """Table of phase fractions, melting fronts and ice clusters of a log, PNG plots (-o DIR)."""
    from icemon.analysis.report import report

    report(args.log, args.output, normal=args.normal, bin_width=args.bin, onset=args.onset)
    return 0


def cmd_watch(args) -> int:
    """Follow a log that a running simulation writes; print each new frame."""
    from icemon.analysis.report import watch

    watch(args.log, interval=args.interval, idle=args.idle, normal=args.normal)
    return 0


def cmd_unlock(args) -> int:
    """Clear the "open for write" mark a writer on another host left (after its job ended)."""
    from icemon.io.log import LogError, clear_write_mark, open_for_writing, open_log
    from icemon.io.log.recovery import recorded_writer, writer_state

    path = Path(args.log)
    open_log(path).close()  # an icemon/1 log, readable, else LogError
    if not open_for_writing(path):
        print(f"{path}: not marked as being written; nothing to do", file=sys.stderr)
        return 0
    writer = recorded_writer(path)
    if writer and writer_state(writer) == "alive":
        raise LogError(f"{str(path)!r} is being written by pid {writer['pid']} on this host; "
                       "not unlocking it")
    clear_write_mark(path)
    who = f" by pid {writer.get('pid')} on {writer.get('host')!r}" if writer else ""
    print(f"{path}: cleared the mark left{who}; its complete frames are kept and the next "
          "writer appends after them", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    """Write logged frames as extended XYZ with per-atom phase and score (OVITO)."""
    from icemon.analysis.report import export

    n = export(args.log, args.extxyz, args.frames, denoised=args.denoised)
    print(f"wrote {n} frame(s) to {args.extxyz}", file=sys.stderr)
    return 0


def cmd_ipi(args) -> int:
    """Run an i-PI XML input (instead of `i-pi input.xml`) with the monitor attached."""
    from icemon.hooks.ipi import run_xml

    # an IpiError (an IcemonError) is printed by main as one line
    mon = run_xml(args.input, args.output, every=args.every, steps=args.steps,
                  beads=args.beads, model=args.model, compile=args.compile,
                  oxygens=args.oxygens, engine_timeout=args.engine_timeout, progress=not args.quiet)
    print(f"wrote {', '.join(map(str, mon.paths))}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="icemon", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    from icemon.demo import live  # light: no LAMMPS or torch until run_demo

    d = sub.add_parser("demo", help=cmd_demo.__doc__)
    d.add_argument("--outdir", default=DEMO_DIR,
                   help="folder for the log, the PNG plots and the LAMMPS files "
                        "(default: ./icemon-demo; ./icemon-nucleation with --nucleation)")
    d.add_argument("--steps", type=int, default=None,
                   help=f"MD steps of 10 fs at {live.TEMPERATURE:g} K "
                        f"(default {live.DEFAULT_STEPS}; with --nucleation: the longest run)")
    d.add_argument("--every", type=int, default=None,
                   help=f"classify every N steps (default {live.DEFAULT_EVERY})")
    d.add_argument("--nucleation", action="store_true",
                   help="watch an ice seed grow in supercooled mW water until a stop "
                        "condition (largest ice cluster ≥ --target) ends the run")
    d.add_argument("--target", type=int, default=None,
                   help="--nucleation: stop at this largest-cluster size (default: 1.5 × "
                        "the first frame's)")
    d.add_argument("--snapshots", action="store_true",
                   help="classify the bundled TIP4P/Ice snapshots instead: one table")
    _add_model_args(d)
    d.set_defaults(func=cmd_demo)

    c = sub.add_parser("classify", help=cmd_classify.__doc__)
    c.add_argument("traj", help="trajectory (xtc/trr/dcd/LAMMPS dump/extxyz/...) or a live "
                   "IMDv3 stream, imd://HOST:PORT (needs --top)")
    c.add_argument("--top", default=None, help="topology (tpr/gro/pdb/data) for MDAnalysis")
    c.add_argument("--select", default=None,
                   help='oxygen selection: MDAnalysis syntax with --top (default "name OW"), '
                        'else an element (default "O")')
    c.add_argument("--follow", action="store_true",
                   help="classify frames as an engine appends them to the file (never a "
                        "half-written one); stop once it has not changed for --idle seconds")
    c.add_argument("--idle", type=float, default=60.0,
                   help="--follow: seconds without a change after which the file is "
                        "complete; IMD: seconds to wait for the engine and between frames "
                        "(default 60)")
    c.add_argument("--time-unit", default=None, choices=["ps", "fs"],
                   help="IMD streams: the engine's time unit (default ps; LAMMPS units real "
                   "sends fs)")
    c.add_argument("--cluster-ids", action="store_true",
                   help="also log each molecule's ice cluster id per frame (a new log; the "
                        "per-frame cluster sizes are always logged)")
    c.add_argument("--all-oxygens", action="store_true",
                   help="keep selected oxygens without two hydrogens within 1.25 Å (by "
                        "default they are left out with a counted warning where the file "
                        "holds hydrogens: a substrate's or guest's oxygens, hydroxide)")
    c.add_argument("--start", type=int, default=0)
    c.add_argument("--stop", type=int, default=None)
    c.add_argument("--every", type=int, default=1, help="classify every K-th frame")
    c.add_argument("-o", "--output", required=True, help="icemon/1 HDF5 log to write")
    c.add_argument("--append", action="store_true", help="append to an existing log")
    c.add_argument("--extxyz", default=None, help="also write frames with phase/score columns")
    c.add_argument("--no-positions", action="store_true",
                   help="do not store positions/denoised in the log")
    c.add_argument("--workers", type=int, default=None,
                   help="classify whole frames in this many one-thread processes (default: "
                        "one per core, at most 8; 1 with --follow, IMD, --threads or under "
                        "mpirun)")
    c.add_argument("-q", "--quiet", action="store_true")
    _add_model_args(c)
    c.set_defaults(func=cmd_classify)

    t = sub.add_parser("train", help=cmd_train.__doc__)
    t.add_argument("--config", default=None, help="JSON training config")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set model.n_layers=3 (repeatable)")
    t.add_argument("--steps", type=int, default=None, help="total number of updates")
    t.add_argument("--phases", default=None,
                   help="reference phases, comma-separated, in code order (liquid comes "
                        "after them): Ih,Ic,II,III,VI,VII,sI (default), sII, sH, V or any "
                        "GenIce2 lattice name, at GenIce's density or at one given as "
                        "NAME:DENSITY in g/cm3 (e.g. XII:1.29)")
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    t.add_argument("--threads", type=int, default=0)
    t.add_argument("--workdir", default="icemon-train", help="checkpoints go here")
    t.add_argument("--resume", action="store_true", help="continue from workdir/checkpoint.pt")
    t.add_argument("-o", "--output", default="icemon-model.npz", help="model file to write")
    t.add_argument("--name", default=None, help="model name recorded in logs")
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    normal_help = "interface normal: x|y|z (= lattice a|b|c); default: found from the data"
    r = sub.add_parser("report", help=cmd_report.__doc__)
    r.add_argument("log", help="icemon/1 HDF5 log")
    r.add_argument("-o", "--output", default=None, help="directory for the PNG plots")
    r.add_argument("--normal", default=None, choices=["x", "y", "z", "a", "b", "c"],
                   help=normal_help)
    r.add_argument("--bin", type=float, default=2.0, help="profile bin width along the normal, Å")
    r.add_argument("--onset", type=int, default=None,
                   help="nucleus size (molecules): print the first frame whose largest ice "
                        "cluster reaches it and the induction time")
    r.set_defaults(func=cmd_report)

    w = sub.add_parser("watch", help=cmd_watch.__doc__)
    w.add_argument("log", help="icemon/1 HDF5 log (may not exist yet)")
    w.add_argument("--interval", type=float, default=1.0, help="seconds between checks")
    w.add_argument("--idle", type=float, default=None,
                   help="stop after this many seconds without a new frame (default: none "
                        "while the writer runs on this host; 600 s for a writer on another "
                        "host). A writer killed without closing the log ends the watch")
    w.add_argument("--normal", default=None, choices=["x", "y", "z", "a", "b", "c"],
                   help=normal_help)
    w.set_defaults(func=cmd_watch)

    u = sub.add_parser("unlock", help=cmd_unlock.__doc__)
    u.add_argument("log", help="icemon/1 HDF5 log whose writer ended without closing it")
    u.set_defaults(func=cmd_unlock)

    e = sub.add_parser("export", help=cmd_export.__doc__)
    e.add_argument("log", help="icemon/1 HDF5 log")
    e.add_argument("--extxyz", required=True, help="output .extxyz")
    e.add_argument("--frames", default=None, help="e.g. 0:10:2, -1, 1,3,7 (default all)")
    e.add_argument("--denoised", action="store_true", help="export the denoised positions")
    e.set_defaults(func=cmd_export)

    ip = sub.add_parser("ipi", help=cmd_ipi.__doc__)
    ip.add_argument("input", help="i-PI XML input (its sockets open; start the drivers after)")
    ip.add_argument("-o", "--output", required=True, help="icemon/1 HDF5 log")
    ip.add_argument("--every", type=int, default=100, help="classify every N i-PI steps")
    ip.add_argument("--steps", type=int, default=None, help="steps to run (default total_steps)")
    ip.add_argument("--beads", choices=["centroid", "all"], default="centroid")
    ip.add_argument("--oxygens", default="O", help="i-PI atom name of the oxygens")
    ip.add_argument("--engine-timeout", type=float, default=60.0,
                    help="give up after this many seconds without a connected force engine")
    ip.add_argument("--model", default=None, help="model file (default: the shipped model)")
    ip.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                    help=COMPILE_HELP)
    ip.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    ip.set_defaults(func=cmd_ipi)

    i = sub.add_parser("info", help=cmd_info.__doc__)
    i.add_argument("model", nargs="?", default=None)
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except IcemonError as exc:  # bad input, files or settings: a message, not a traceback
        print(f"icemon: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `icemon info | head`
        return 0
    except KeyboardInterrupt:
        print("icemon: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
