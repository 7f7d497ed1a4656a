"""What shell averaging does to melting fronts: the same mW melting run classified by the
shipped model (descriptors averaged over 4.8 Å) and by a model without averaging.

The live demo's run (``icemon.demo.live``: an mW ice Ih slab whose upper half is melted,
then run at 285 K so that both ice|liquid fronts move into the ice) is made once with the
shipped model attached; its logged positions are then classified again, offline, by the
comparison model (default: the v0.1 six-pass network, per-atom descriptors). Prints the
front positions frame by frame for both, their differences, and the melting speeds ± σ.

    python benchmarks/fronts_averaging.py [--compare benchmarks/models/v0.1-six-pass.npz]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compare", default=str(ROOT / "benchmarks" / "models" / "v0.1-six-pass.npz"))
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--every", type=int, default=500)
    a = p.parse_args()

    from icemon.analysis import FrontTracker, Log
    from icemon.demo.live import run_demo
    from icemon.execution.pipeline import Pipeline
    from icemon.geometry.frame import Frame
    from icemon.io.log import LogWriter

    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="icemon-fronts-"))
    shipped = run_demo(work, steps=a.steps, every=a.every, quiet=True)
    other = work / "compare.h5"
    pipe = Pipeline(a.compare)
    with Log(shipped) as log:
        writer = LogWriter(other, log.atom_ids, **pipe.log_settings(),
                           source="benchmarks/fronts_averaging.py")
        for k in range(log.n_frames):
            res = pipe.process(Frame(log.positions(k), log.cell(k), log.atom_ids,
                                     step=int(log.steps[k]), time=float(log.times[k])))
            writer.append(res)
        writer.close()
    results = {}
    for name, path in (("shipped (averaged 4.8 Å)", shipped), (Path(a.compare).stem, other)):
        with Log(path) as log:
            results[name] = FrontTracker(normal="z").compute(log).results
    (n1, r1), (n2, r2) = results.items()
    print(f"mW melting run, {a.steps} steps of 10 fs, every {a.every}; fronts along z (Å)")
    print(f"{'t/ps':>6s} | {'front 1':>8s} {'front 2':>8s} | {'front 1':>8s} {'front 2':>8s} |"
          f" {'Δ1':>6s} {'Δ2':>6s}")
    for j in range(len(r1.times)):
        z1, z2 = r1.positions[j], r2.positions[j]
        print(f"{r1.times[j]:6.1f} | {z1[0]:8.2f} {z1[1]:8.2f} | {z2[0]:8.2f} {z2[1]:8.2f} |"
              f" {z1[0] - z2[0]:6.2f} {z1[1] - z2[1]:6.2f}")
    d = r1.positions - r2.positions
    ok = np.isfinite(d).all(axis=1)
    print(f"left: {n1}; right: {n2}")
    print(f"front position difference: mean {d[ok].mean(axis=0).round(2)} Å, "
          f"max |Δ| {np.abs(d[ok]).max():.2f} Å over {ok.sum()} frames")
    for name, r in results.items():
        print(f"{name:>26s}: melting speed {r.melting_speed:.4f} ± "
              f"{r.melting_speed_error:.4f} Å/ps")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
