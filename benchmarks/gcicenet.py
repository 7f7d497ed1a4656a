"""Accuracy and speed of icemon on the GCIceNet TIP4P/Ice trajectories, against CHILL+.

Prints, per model and phase: accuracy on the raw frames (no denoising) and after denoising,
over the seven ices (the nearest of the model's references, no liquid) and with liquid
(the model's automatic threshold; and its ``unknown`` label, if it has one); what the
extra phase T becomes; the margins on either side of the liquid threshold (how far below it
the highest score of any ice atom lies, how far above it the lowest liquid score: a model
whose 100 % rests on a few per cent of margin may not hold on frames it has not seen);
where the time goes (neighbour lists, network, SOAP, classification); end-to-end oxygens/s with 1 and 2
threads sharing each frame, and (``--workers``) with whole frames shared by one-thread
worker processes (:class:`icemon.execution.pool.FramePool`, what ``icemon classify --workers``
does: wall time of every frame through the pool, pickling included). OVITO's CHILL+
(``pip install ovito``; optional) is timed on the same frames in the same run, again
after every model, and each model's throughput is printed as a ratio to the mean of
the CHILL+ runs just before and after it. A closing Pareto table
lists every model on one line.

    python benchmarks/gcicenet.py [--model M.npz ...] [--threads 1 2] [--data DIR] [--compile no|yes|both] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from icemon import Frame, Pipeline, read_frames

TAGS = {"1h": "Ih", "1c": "Ic", "2": "II", "3": "III", "6": "VI", "7": "VII", "sI": "sI",
        "w": "liquid", "T": "T"}
"""File tag → the phase its frames hold (T: an extra dense phase no model has a reference
for; what it becomes is reported)."""
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "gcicenet"


def load(data: Path, frames: int | None) -> dict[str, list[Frame]]:
    return {tag: list(read_frames(data / f"md_{tag}_dev.xtc", data / f"md_{tag}.tpr",
                                  "name OW", stop=frames)) for tag in TAGS}


def chillplus_rate(frames: dict[str, list[Frame]]) -> tuple[float, dict[str, float]] | None:
    """(O/s of OVITO's CHILL+ over every frame, its ice fraction per tag), or None when
    ``ovito`` is not installed. Building OVITO's data from arrays is timed too, as icemon's
    frame set-up is."""
    try:
        from ovito.data import DataCollection
        from ovito.modifiers import ChillPlusModifier
        from ovito.pipeline import Pipeline as OvitoPipeline
        from ovito.pipeline import StaticSource
    except ImportError:
        return None
    n, seconds, ice = 0, 0.0, {}
    for tag, frs in frames.items():
        solid = []
        for fr in frs:
            t0 = time.perf_counter()
            dc = DataCollection()
            cell = dc.create_cell(np.column_stack([fr.cell.T, np.zeros(3)]), pbc=(True,) * 3)
            assert cell is not None
            dc.create_particles(count=fr.n_atoms).create_property("Position", data=fr.positions)
            pipe = OvitoPipeline(source=StaticSource(data=dc))
            pipe.modifiers.append(ChillPlusModifier(cutoff=3.5))
            out = pipe.compute()
            st = np.asarray(out.particles["Structure Type"][...])
            seconds += time.perf_counter() - t0
            n += fr.n_atoms
            solid.append(np.mean(st != 0))  # 0 = Other
        ice[tag] = float(np.mean(solid))
    return n / seconds, ice


def pool_rate(model: str | None, frames: dict[str, list[Frame]], steps: int | None,
              workers: int, compile: bool) -> float:
    """O/s of every frame through a :class:`FramePool` of ``workers`` processes (wall
    time, after each worker has classified frames of both sizes)."""
    from icemon.execution.pool import FramePool

    every = [fr for frs in frames.values() for fr in frs]
    with FramePool(model, workers, denoise_steps=steps, compile=compile) as pool:
        list(pool.imap([frames["1h"][0], frames["w"][0]] * (2 * workers)))  # warm-up
        t0 = time.perf_counter()
        n = sum(r.frame.n_atoms for r in pool.imap(every))
        return n / (time.perf_counter() - t0)


def evaluate(model: str | None, frames: dict[str, list[Frame]], steps: int | None,
             threads: list[int], compile: bool = False, workers: list[int] = ()) -> dict:
    torch.set_num_threads(max(threads))
    pipe = Pipeline(model, denoise_steps=steps, compile=compile)
    raw = Pipeline(pipe.model, denoise_steps=0, processes=1)  # accuracy only
    names = pipe.model.phases
    rows = {}
    times: dict[str, float] = defaultdict(float)
    n_total = 0
    # warm-up (helper processes, allocator; compilation, on two frame sizes)
    pipe.process(frames["1h"][0])
    pipe.process(frames["w"][0])
    # frames shared by helper processes (the default on 2+ threads): once they are up
    if pipe.start_helpers(frames["1h"][0].n_atoms) > 1:
        pipe.process(frames["1h"][0])
        pipe.process(frames["w"][0])
    for tag, phase in TAGS.items():
        code = names.index(phase) if phase in names else -1
        acc = defaultdict(list)
        for frame in frames[tag]:
            r0 = raw.process(frame)
            r1 = pipe.process(frame)
            n_total += frame.n_atoms
            if code >= 0:
                acc["raw7"].append(np.mean(r0.nearest == code))
                acc["den7"].append(np.mean(r1.nearest == code))
                acc["raw8"].append(np.mean(r0.labels == code))
                acc["den8"].append(np.mean(r1.labels == code))
            acc["counts"].append(r1.counts)
            acc["max_score"].append(float(r1.scores.max()))
            acc["min_score"].append(float(r1.scores.min()))
            acc["steps"].append(r1.n_denoise_steps)
        rows[tag] = {k: np.array(v) for k, v in acc.items()}
    # timed apart from the accuracy loop above (the raw pipeline's work between frames
    # is not what a user's run has)
    rate = {}
    for t in sorted(threads, reverse=True):
        torch.set_num_threads(t)
        pipe.process(frames["1h"][0])
        total = 0.0
        for frs in frames.values():
            for frame in frs:
                timings = pipe.process(frame).timings
                total += timings["total"]
                if t == max(threads):
                    for k, v in timings.items():
                        times[k] += v
        rate[t] = n_total / total
    torch.set_num_threads(max(threads))
    shared = pipe.team_size(frames["1h"][0].n_atoms)
    pipe.close()
    pool = {w: pool_rate(model, frames, steps, w, compile) for w in workers}
    return {"rows": rows, "times": dict(times), "atoms": n_total, "pipe": pipe, "rate": rate,
            "pool": pool, "processes": shared}


def report(name: str, res: dict, chill: float | None) -> dict:
    pipe = res["pipe"]
    names = pipe.model.phases
    liquid = names.index("liquid")
    unknown = names.index("unknown") if "unknown" in names else -1
    c = pipe.model.net.config
    s = pipe.model.soap
    print(f"\n== model {name}: {c.hidden}, {c.n_layers} blocks, l ≤ {c.lmax}, cutoff {c.cutoff} Å, "
          f"≤{pipe.denoiser.max_steps} passes; SOAP r_cut {s.r_cut} Å n {s.n_max} l {s.l_max}, "
          f"PCA {pipe.classifier.reference.components.shape[0]}; threshold {pipe.threshold:.3f}"
          f"{f', shell-averaged over {pipe.classifier.shell} Å' if pipe.classifier.shell else ''}")
    print(f"{'data':>6s} {'phase':>7s} {'frames':>6s} | {'raw 7cl':>8s} {'den 7cl':>8s} "
          f"{'worst fr':>8s} | {'raw 8cl':>8s} {'den 8cl':>8s} {'worst fr':>8s} | steps | "
          f"labels after denoising")
    ice7, ice8, liq8, ice_as_liq, t_liq, t_unk = [], [], [], [], float("nan"), float("nan")
    ice_max, liq_min = 0.0, float("inf")
    for tag, r in res["rows"].items():
        code = names.index(TAGS[tag]) if TAGS[tag] in names else -1
        counts = r["counts"].sum(axis=0)
        dist = ", ".join(f"{names[i]} {100 * counts[i] / counts.sum():.2f}%"
                         for i in np.argsort(-counts) if counts[i])
        if code >= 0:
            print(f"{tag:>6s} {names[code]:>7s} {len(r['den8']):6d} | {100 * r['raw7'].mean():8.2f} "
                  f"{100 * r['den7'].mean():8.2f} {100 * r['den7'].min():8.2f} | "
                  f"{100 * r['raw8'].mean():8.2f} {100 * r['den8'].mean():8.2f} "
                  f"{100 * r['den8'].min():8.2f} | {r['steps'].mean():5.1f} | {dist}")
            if code == liquid:
                liq8.append(r["den8"].mean())
                liq_min = min(liq_min, r["min_score"].min())
            else:
                ice_max = max(ice_max, r["max_score"].max())
                ice7.append(r["den7"].mean())
                ice8.append(r["den8"].mean())
                ice_as_liq.append(counts[liquid] / counts.sum())
        else:
            t_liq = counts[liquid] / counts.sum()
            t_unk = counts[unknown] / counts.sum() if unknown >= 0 else 0.0
            print(f"{tag:>6s} {'T':>7s} {len(r['counts']):6d} | {'':>8s} {'':>8s} {'':>8s} | "
                  f"{'':>8s} {'':>8s} {'':>8s} | {r['steps'].mean():5.1f} | {dist}")
    worst7 = min(r["den7"].min() for tag, r in res["rows"].items()
                 if TAGS[tag] not in ("liquid", "T"))
    summary = {"ice7": np.mean(ice7), "worst7": worst7, "ice8": np.mean(ice8),
               "liq8": np.mean(liq8), "ice_as_liq": np.mean(ice_as_liq), "T_liq": t_liq,
               "T_unknown": t_unk, "rate": res["rate"], "chill": chill, "pool": res["pool"],
               "ice_margin": 1.0 - ice_max / pipe.threshold,
               "liquid_margin": liq_min / pipe.threshold - 1.0}
    print(f"phase T: {100 * t_liq:.2f} % liquid, {100 * t_unk:.2f} % unknown")
    n_classes = len(names) - 1 - (unknown >= 0)
    print(f"seven ices, nearest reference ({n_classes} classes) after denoising: "
          f"{100 * summary['ice7']:.3f} % (worst frame "
          f"{100 * worst7:.3f} %)  |  with liquid: ices {100 * summary['ice8']:.3f} %, liquid "
          f"{100 * summary['liq8']:.3f} %, ice labelled liquid {100 * summary['ice_as_liq']:.3f} %")
    print(f"margins to the threshold {pipe.threshold:.3f}: highest ice score {ice_max:.3f} "
          f"({100 * summary['ice_margin']:.1f} % below), lowest liquid score {liq_min:.3f} "
          f"({100 * summary['liquid_margin']:.1f} % above)")
    t, n = res["times"], res["atoms"]
    rates = ", ".join(f"{r:.3g} O/s with {k} thread{'s' if k > 1 else ''}"
                      for k, r in sorted(res["rate"].items()))
    how = (f"{max(res['rate'])} threads, {res['processes']} processes sharing each frame; "
           "neighbour lists counted in the network" if res["processes"] > 1
           else f"{max(res['rate'])} threads")
    print(f"time per stage over {n} oxygens ({how}): neighbour lists "
          f"{t['neighbors']:.2f} s, network {t['network']:.2f} s, SOAP {t['soap']:.2f} s, "
          f"classify {t['classify']:.2f} s; end to end {rates}")
    for w, r in sorted(res["pool"].items()):
        print(f"whole frames shared by {w} one-thread worker processes: {r:.3g} O/s")
    if chill:
        print("throughput / CHILL+: " + ", ".join(
            [f"{r / chill:.3f} ({k} thr)" for k, r in sorted(res["rate"].items())]
            + [f"{r / chill:.3f} ({w} workers)" for w, r in sorted(res["pool"].items())]))
    return summary


def pareto(summaries: dict[str, dict]) -> None:
    threads = sorted({k for s in summaries.values() for k in s["rate"]})
    workers = sorted({k for s in summaries.values() for k in s["pool"]})
    head = (f"{'model':>28s} | {'7cl ices':>8s} {'worst fr':>8s} | {'8cl ices':>8s} "
            f"{'liquid':>8s} {'ice→liq':>8s} {'T→liq':>6s} {'T→unk':>6s} {'ice mg':>6s} "
            f"{'liq mg':>6s} | "
            + " ".join(f"{f'O/s {t}thr':>10s}" for t in threads)
            + "".join(f" {f'O/s {w}wkr':>10s}" for w in workers) + " | ×CHILL+ (best)")
    print("\n== Pareto table (accuracy in %, throughput end to end)\n" + head)
    for name, s in summaries.items():
        best = max([s["rate"][max(threads)], *s["pool"].values()])
        ratio = f"{best / s['chill']:.3f}" if s["chill"] else "n/a"
        print(f"{name[-28:]:>28s} | {100 * s['ice7']:8.3f} {100 * s['worst7']:8.3f} | "
              f"{100 * s['ice8']:8.3f} {100 * s['liq8']:8.3f} {100 * s['ice_as_liq']:8.3f} "
              f"{100 * s['T_liq']:6.1f} {100 * s['T_unknown']:6.1f} "
              f"{100 * s['ice_margin']:6.1f} {100 * s['liquid_margin']:6.1f} | "
              + " ".join(f"{s['rate'].get(t, float('nan')):10.3g}" for t in threads)
              + "".join(f" {s['pool'].get(w, float('nan')):10.3g}" for w in workers)
              + f" | {ratio}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", action="append", default=None,
                   help="model file(s) to compare (default: the shipped model)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--denoise-steps", type=int, default=None)
    p.add_argument("--frames", type=int, default=None, help="frames per file (default all)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts to time (accuracy uses the largest)")
    p.add_argument("--compile", choices=["no", "yes", "both"], default="yes",
                   help="run the network through torch.compile (compiled in the warm-up; "
                        "yes, the default, is what a user gets); both: every model eager and "
                        "compiled, in the same run")
    p.add_argument("--soap", nargs="+", choices=["auto", "compiled", "dscribe"],
                   default=["auto"],
                   help="SOAP backend(s), each timed in this run (auto, the default, is "
                        "what a user gets: the compiled kernels where numba runs)")
    p.add_argument("--workers", type=int, nargs="*", default=[],
                   help="also time whole frames shared by this many one-thread worker "
                        "processes (FramePool; e.g. --workers 2)")
    args = p.parse_args()
    frames = load(args.data, args.frames)
    chill = chillplus_rate(frames)
    if chill is None:
        print("OVITO not installed (pip install ovito): no CHILL+ comparison")
    else:
        print(f"CHILL+ (OVITO, cutoff 3.5 Å): {chill[0]:.3g} O/s; its ice fraction per file: "
              + ", ".join(f"{k} {100 * v:.1f}%" for k, v in chill[1].items()))
    summaries = {}
    modes = {"no": [False], "yes": [True], "both": [False, True]}[args.compile]
    # models are named by file stem, or by their path where stems repeat (a rebuilt model
    # is ice-denoiser.npz like the shipped one): the Pareto table keeps one row per name
    stems = [Path(m).stem for m in args.model or []]
    labels = {m: Path(m).stem if stems.count(Path(m).stem) == 1 else str(Path(m).with_suffix(""))
              for m in args.model or []}
    import os

    for m, compiled, soap in [(m, c, b) for m in args.model or [None] for c in modes
                              for b in args.soap]:
        t0 = time.perf_counter()
        os.environ["ICEMON_SOAP"] = soap  # read by every Pipeline, helper and worker
        res = evaluate(m, frames, args.denoise_steps, args.threads, compiled, args.workers)
        # CHILL+ is timed again right after every model, and each model is compared with
        # the mean time of the CHILL+ runs just before and just after it: this machine's
        # speed drifts by tens of per cent within minutes (measured: the same network took
        # 3.9 s and 2.7 s in one run), so one CHILL+ figure at the start would not be a peer
        # in the same conditions.
        peer = None
        if chill is not None:
            after = chillplus_rate(frames)
            assert after is not None
            peer = 2.0 / (1.0 / chill[0] + 1.0 / after[0])
            print(f"CHILL+ before / after this model: {chill[0]:.3g} / {after[0]:.3g} O/s "
                  f"(peer rate {peer:.3g})")
            chill = after
        name = ((labels[m] if m else "shipped") + (" (compiled)" if compiled else "")
                + ("" if soap == "auto" else f" ({soap} SOAP)"))
        summaries[name] = report(name, res, peer)
        print(f"({time.perf_counter() - t0:.0f} s)")
    pareto(summaries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
