"""Wall-time overhead of the icemon monitor on an mW LAMMPS run (≥ 8000 molecules).

The same run (mW ice Ih at 250 K, NVT, 10 fs steps) is timed without the monitor and with
it, for every = 100 and 1000 steps, with and without overlap, serially and on 2 MPI ranks.
Prints a table: MD wall time, monitored wall time, overhead (%), frames classified during
the timed run (step 0 is classified before it, which also warms the model up), and
monitor time per frame on rank 0.

    python benchmarks/insitu.py [--steps 2000] [--size 44] [--ranks 1 2]
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


def worker(a: argparse.Namespace) -> None:
    from lammps import lammps
    from mpi4py import MPI

    import icemon.hooks.lammps
    from icemon.core.pipeline import Pipeline
    from icemon.demo import mw

    comm = MPI.COMM_WORLD
    data = Path(a.data)
    pipe = Pipeline() if comm.rank == 0 else None
    modes = {"no": (False,), "yes": (True,), "both": (False, True)}[a.overlap]
    configs = [(None, False)] + [(e, o) for e in a.every for o in modes]
    rows = []
    for every, overlap in configs:
        lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
        lmp.commands_list(mw.setup_commands(data, 250.0, barostat=None))
        lmp.command("run 0")
        mon = None
        if every:
            log = Path(a.tmp) / f"np{comm.size}_{every}_{int(overlap)}.h5"
            if comm.rank == 0 and log.exists():
                log.unlink()
            comm.Barrier()
            mon = icemon.hooks.lammps.attach(lmp, every=every, oxygens=1, log=log,
                                       overlap=overlap, model=pipe.model if pipe else None)
            lmp.command("run 0")  # untimed: classifies step 0 and warms the model up
            if mon.monitor is not None:
                mon.monitor.flush()
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
                         "monitor_s": mon.monitor.seconds if mon else 0.0})
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
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a)

    from icemon.demo import mw

    tmp = Path(tempfile.mkdtemp(prefix="icemon-insitu-"))
    atoms = mw.ice("Ih", a.size)
    data = mw.write_data(atoms, tmp / "ice.data")
    mpirun = shutil.which("mpirun") or str(Path(sys.executable).parent / "mpirun")
    print(f"mW ice Ih, {len(atoms)} molecules, {a.steps} steps of 10 fs, {os.cpu_count()} cores")
    print(f"{'ranks':>5s} {'every':>6s} {'overlap':>7s} {'MD s':>7s} {'MD+mon s':>9s} "
          f"{'overhead':>9s} {'frames':>6s} {'mon s/frame':>11s}")
    for ranks in a.ranks:
        cmd = [mpirun, "-np", str(ranks), sys.executable, __file__, "--worker", "--data",
               str(data), "--tmp", str(tmp), "--steps", str(a.steps), "--overlap", a.overlap,
               "--every", *map(str, a.every)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(out.stderr[-3000:])
        rows = json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][0][7:])
        base = rows[0]["wall"]
        print(f"{ranks:5d} {'-':>6s} {'-':>7s} {base:7.2f} {'':>9s} {'':>9s} {'':>6s} {'':>11s}")
        for r in rows[1:]:
            print(f"{ranks:5d} {r['every']:6d} {'yes' if r['overlap'] else 'no':>7s} {base:7.2f} "
                  f"{r['wall']:9.2f} {100 * (r['wall'] - base) / base:8.1f}% {r['frames']:6d} "
                  f"{r['monitor_s'] / (r['frames'] + 1):11.3f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
