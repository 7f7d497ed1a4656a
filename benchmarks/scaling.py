"""Cost per oxygen, per stage, and peak memory against system size (10³ … 10⁶ oxygens),
on the CPU and, with ``--device cpu cuda``, the GPU path in the same run.
``cpu/device`` runs the device path (neighbour lists, SOAP in torch, nearest reference)
on the CPU: what ``cuda`` runs, where a GPU is not at hand.

Ideal ice Ih with thermal-like noise (σ = 0.1 Å) is replicated to each size and one frame
is classified end to end (``Pipeline.process``) in a fresh process per size, timed on the
second call (the first starts SOAP helpers, compiles the network and warms caches up).
Printed per device and size: seconds, oxygens/s, seconds per oxygen relative to the
smallest size, the peak resident memory of the process and its SOAP helper processes
together (sampled every 20 ms from /proc, MB), and the pipeline's stage times (neighbour
lists, network, SOAP, classification): where a GPU would wait on the host.

    python benchmarks/scaling.py [--sizes 1024 8192 32768 110592] [--threads 2] [--model M]
                                 [--device cpu cpu/device cuda] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def _tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of ``pid`` and all its descendants."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def worker(n: int, threads: int, model: str | None, device: str = "cpu",
           compile: bool | None = None) -> None:
    import numpy as np
    import torch

    from icemon import Frame, Pipeline
    from icemon.lattices.references import reference

    torch.set_num_threads(threads)
    name, _, path = device.partition("/")
    pipe = Pipeline(model, device=name, compile=compile,
                    on_device=True if path == "device" else None)
    rng = np.random.default_rng(0)
    unit = reference("Ih", 10.0)
    pos0, cell0 = unit.positions, np.asarray(unit.cell[:])
    reps = [1, 1, 1]
    while len(pos0) * np.prod(reps) < n:
        k = int(np.argmin([np.linalg.norm(cell0[i]) * reps[i] for i in range(3)]))
        reps[k] += 1
    shifts = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1])
                       for k in range(reps[2])]) @ cell0
    pos = (pos0[None] + shifts[:, None]).reshape(-1, 3)
    cell = cell0 * np.array(reps)[:, None]
    frame = Frame(pos + rng.normal(0, 0.1, pos.shape), cell)
    pipe.process(frame)  # warm-up: helper processes, allocator, caches
    if pipe.start_helpers(len(frame.positions)) > 1:  # frames shared by helpers: once up
        pipe.process(frame)
    t0 = time.perf_counter()
    res = pipe.process(frame)
    dt = time.perf_counter() - t0
    print(json.dumps({"n": len(pos), "seconds": dt, "timings": res.timings,
                      "ice": float(np.mean(res.labels == 0))}), flush=True)
    pipe.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1024, 8192, 32768, 110592])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=None)
    p.add_argument("--device", nargs="+", default=["cpu"],
                   help="cpu, cpu/device (the device path on the CPU) and/or cuda")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="default: as a user gets it (compiled unless $ICEMON_COMPILE=0)")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker is not None:
        worker(a.worker, a.threads, a.model, a.device[0], a.compile)
        return 0
    print(f"{'device':>10s} {'oxygens':>8s} {'s':>8s} {'O/s':>9s} {'s/O rel.':>8s} "
          f"{'peak MB':>8s} {'nbr s':>6s} {'network s':>9s} {'SOAP s':>7s} {'classify s':>10s} "
          f"{'Ih %':>6s}")
    base_of: dict[str, float] = {}
    for device, n in [(d, n) for d in a.device for n in a.sizes]:
        base = base_of.get(device)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(n),
               "--threads", str(a.threads), "--device", device] + (
                   ["--model", a.model] if a.model else []) + (
                   [] if a.compile is None else ["--compile" if a.compile else "--no-compile"])
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        peak = 0.0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_mb(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, _ = proc.communicate()
        done.set()
        sampler.join()
        if proc.returncode != 0:
            print(f"{device:>10s} {n:8d} failed (exit {proc.returncode}; killed for memory?) "
                  f"peak {peak:.0f} MB")
            continue
        r = json.loads(out.strip().splitlines()[-1])
        per = r["seconds"] / r["n"]
        base = base_of.setdefault(device, per)
        t = r["timings"]
        print(f"{device:>10s} {r['n']:8d} {r['seconds']:8.2f} {r['n'] / r['seconds']:9.3g} "
              f"{per / base:8.2f} {peak:8.0f} {t['neighbors']:6.2f} {t['network']:9.2f} "
              f"{t['soap']:7.2f} {t['classify']:10.2f} {100 * r['ice']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
