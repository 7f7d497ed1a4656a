"""The two SOAP backends side by side: numba kernels (the default) against dscribe.

On the GCIceNet frames, two one-process pipelines that differ only in their SOAP
backend classify every frame in turn (the order alternating round by round), so that
the machine's drift, tens of per cent within minutes on a shared VM, falls on both
alike. Prints the descriptors' largest difference (in units of each feature's spread
over the frame), whether any label differs, SOAP µs per oxygen and end-to-end O/s of
each, and their ratios.

    python benchmarks/soap_backends.py [--rounds 3] [--frames N] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gcicenet import DEFAULT_DATA, load  # noqa: E402

from icemon import Pipeline  # noqa: E402

BACKENDS = ("compiled", "dscribe")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--frames", type=int, default=None, help="frames per file (default all)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (one process)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    frames = [f for fr in load(args.data, args.frames).values() for f in fr]
    pipes = {}
    for backend in BACKENDS:
        os.environ["ICEMON_SOAP"] = backend  # what the pipeline's Soap reads
        pipes[backend] = Pipeline(processes=1)
        assert pipes[backend].soap.backend == backend, f"{backend} SOAP unavailable here"
    os.environ.pop("ICEMON_SOAP")
    # agreement, and the warm-up (compilation of the network and of the kernels)
    worst, differ = 0.0, 0
    for frame in frames:
        res = {b: pipe.process(frame) for b, pipe in pipes.items()}
        want = pipes["dscribe"].soap(res["dscribe"].denoised, frame.cell)
        got = pipes["compiled"].soap(res["dscribe"].denoised, frame.cell)
        spread = np.maximum(want.std(axis=0), 1e-300)
        worst = max(worst, float((np.abs(got - want) / spread).max()))
        differ += int((res["compiled"].labels != res["dscribe"].labels).sum())
    n_atoms = sum(f.n_atoms for f in frames)
    print(f"{len(frames)} frames, {n_atoms} O: descriptors differ by at most {worst:.1e} of "
          f"a feature's spread; labels differing: {differ}")
    total = {b: 0.0 for b in BACKENDS}
    soap = {b: 0.0 for b in BACKENDS}
    for k in range(args.rounds):
        order = BACKENDS if k % 2 == 0 else BACKENDS[::-1]
        for frame in frames:
            for b in order:
                t = pipes[b].process(frame).timings
                total[b] += t["total"]
                soap[b] += t["soap"]
    n = n_atoms * args.rounds
    for b in BACKENDS:
        print(f"{b:>9}: SOAP {1e6 * soap[b] / n:5.1f} µs/O, end to end "
              f"{1e6 * total[b] / n:5.1f} µs/O = {n / total[b]:.3g} O/s")
    print(f"compiled / dscribe: SOAP {soap['dscribe'] / soap['compiled']:.2f}× faster, end to "
          f"end {total['dscribe'] / total['compiled']:.2f}× ({args.threads} torch thread(s), "
          f"{args.rounds} interleaved rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
