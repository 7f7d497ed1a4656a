"""Accuracy and speed of icemon on the GCIceNet TIP4P/Ice trajectories.

Prints, per phase: accuracy on the raw frames (no denoising) and after denoising, over
the seven ices (7 classes: the nearest reference, no liquid) and with liquid (8 classes,
the model's automatic threshold); what the extra phase T becomes; and where the time goes
(neighbour lists, network, SOAP, classification) with oxygens/s end to end.

    python benchmarks/gcicenet.py [--model M.npz ...] [--data ../shared/data/gcicenet]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from icemon import PHASES, Pipeline, read_frames
from icemon.phases import LIQUID

TAGS = {"1h": 0, "1c": 1, "2": 2, "3": 3, "6": 4, "7": 5, "sI": 6, "w": 7, "T": -1}
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gcicenet"


def evaluate(model: str | None, data: Path, steps: int | None, frames: int | None) -> dict:
    pipe = Pipeline(model, denoise_steps=steps)
    raw = Pipeline(pipe.model, denoise_steps=0)
    rows = {}
    times: dict[str, float] = defaultdict(float)
    n_total = 0
    for tag, code in TAGS.items():
        acc = defaultdict(list)
        for frame in read_frames(data / f"md_{tag}_dev.xtc", data / f"md_{tag}.tpr", "name OW",
                                 stop=frames):
            r0 = raw.process(frame)
            r1 = pipe.process(frame)
            for k, v in r1.timings.items():
                times[k] += v
            n_total += frame.n_atoms
            if code >= 0:
                acc["raw7"].append(np.mean(r0.nearest == code))
                acc["den7"].append(np.mean(r1.nearest == code))
                acc["raw8"].append(np.mean(r0.labels == code))
                acc["den8"].append(np.mean(r1.labels == code))
            acc["counts"].append(r1.counts)
            acc["steps"].append(r1.n_denoise_steps)
        rows[tag] = {k: np.array(v) for k, v in acc.items()}
    return {"rows": rows, "times": dict(times), "atoms": n_total, "pipe": pipe}


def report(name: str, res: dict) -> None:
    pipe = res["pipe"]
    print(f"\n== model {name}: {pipe.model.net.config.hidden}, {pipe.model.net.config.n_layers} "
          f"layers, cutoff {pipe.model.net.config.cutoff} Å, ≤{pipe.denoiser.max_steps} "
          f"denoising steps, threshold {pipe.threshold:.3f}")
    print(f"{'data':>6s} {'phase':>7s} {'frames':>6s} | {'raw 7cl':>8s} {'den 7cl':>8s} "
          f"{'worst fr':>8s} | {'raw 8cl':>8s} {'den 8cl':>8s} {'worst fr':>8s} | steps | "
          f"labels after denoising")
    ice7, ice8, liq8, ice_as_liq = [], [], [], []
    for tag, r in res["rows"].items():
        code = TAGS[tag]
        counts = r["counts"].sum(axis=0)
        dist = ", ".join(f"{PHASES[i]} {100 * counts[i] / counts.sum():.2f}%"
                         for i in np.argsort(-counts) if counts[i])
        if code >= 0:
            print(f"{tag:>6s} {PHASES[code]:>7s} {len(r['den8']):6d} | {100 * r['raw7'].mean():8.2f} "
                  f"{100 * r['den7'].mean():8.2f} {100 * r['den7'].min():8.2f} | "
                  f"{100 * r['raw8'].mean():8.2f} {100 * r['den8'].mean():8.2f} "
                  f"{100 * r['den8'].min():8.2f} | {r['steps'].mean():5.1f} | {dist}")
            if code == LIQUID:
                liq8.append(r["den8"].mean())
            else:
                ice7.append(r["den7"].mean())
                ice8.append(r["den8"].mean())
                ice_as_liq.append(counts[LIQUID] / counts.sum())
        else:
            print(f"{tag:>6s} {'T':>7s} {len(r['counts']):6d} | {'':>8s} {'':>8s} {'':>8s} | "
                  f"{'':>8s} {'':>8s} {'':>8s} | {r['steps'].mean():5.1f} | {dist}")
    print(f"seven ices, 7 classes after denoising: {100 * np.mean(ice7):.3f} %  |  "
          f"8 classes: ices {100 * np.mean(ice8):.3f} %, liquid {100 * np.mean(liq8):.3f} %, "
          f"ice labelled liquid {100 * np.mean(ice_as_liq):.3f} %")
    t = res["times"]
    n = res["atoms"]
    print(f"time per stage over {n} oxygens: neighbour lists {t['neighbors']:.2f} s, "
          f"network {t['network']:.2f} s, SOAP {t['soap']:.2f} s, classify "
          f"{t['classify']:.2f} s; end to end {n / t['total']:.0f} O/s "
          f"({torch.get_num_threads()} torch threads)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", action="append", default=None,
                   help="model file(s) to compare (default: the shipped model)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--denoise-steps", type=int, default=None)
    p.add_argument("--frames", type=int, default=None, help="frames per file (default all)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for m in args.model or [None]:
        t0 = time.perf_counter()
        res = evaluate(m, args.data, args.denoise_steps, args.frames)
        report(m or "shipped", res)
        print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
