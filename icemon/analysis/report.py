"""What ``icemon report``, ``icemon watch`` and ``icemon export`` print, plot and write."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from icemon.analysis.fronts import FrontResults, FrontTracker, phase_names_present
from icemon.errors import ConfigError
from icemon.io.log import LogError, open_for_writing
from icemon.io.log.reader import Log
from icemon.io.log.recovery import writer_state

AXIS_NAMES = "abc"


def fronts_or_reason(log: Log, normal: str | None, bin_width: float
                     ) -> tuple[FrontTracker | None, str]:
    """Fronts of the log, or None and a one-line reason why there are none."""
    if not log.has_positions:
        return None, ("the log has no positions (written with positions=False): fractions "
                      "only, no fronts or export")
    if log.n_frames == 0:
        return None, "the log has no frames yet"
    tracker = FrontTracker(normal=normal, bin_width=bin_width).compute(log)
    if not np.isfinite(tracker.positions).any():
        return tracker, "no ice|liquid fronts found (no slab of ice and liquid in any frame)"
    return tracker, ""


def table(log: Log, tracker: FrontTracker | None, max_rows: int = 25) -> str:
    """Per-frame table (subsampled to ``max_rows``): step, time, phase fractions, fronts."""
    t, t_label = log.times_or_steps()
    fr = log.fractions
    present = phase_names_present(fr)
    rows = np.unique(np.linspace(0, log.n_frames - 1, min(max_rows, log.n_frames)).astype(int))
    res = tracker.results if tracker is not None else None
    head = f"{'frame':>5s} {'step':>9s} {'time/ps':>9s} " + " ".join(
        f"{log.phases[i]:>7s}" for i in present)
    if res is not None:
        head += f" {'front 1/Å':>10s} {'front 2/Å':>10s}"
    lines = [head]
    for k in rows:
        line = f"{k:5d} {log.steps[k]:9d} {t[k] if t_label.startswith('time') else np.nan:9.2f} "
        line += " ".join(f"{100 * fr[k, i]:6.2f}%" for i in present)
        if res is not None:
            j = np.searchsorted(res.frames, k)
            if j < len(res.frames) and res.frames[j] == k:
                line += " " + " ".join(f"{z:10.2f}" for z in res.positions[j])
        lines.append(line)
    return "\n".join(lines)


def front_summary(res: FrontResults, axis: int) -> str:
    unit = {"time": "Å/ps", "MD step": "Å/step"}.get(res.time_label.split(" (")[0], "Å/frame")
    ok = np.isfinite(res.positions).all(axis=1)
    first = (f"interface normal: lattice direction {AXIS_NAMES[axis]} (reciprocal), "
             f"interface area {res.area:.1f} Å², fronts in {ok.sum()} of {len(ok)} frames")
    lines = [first]
    for j, name in enumerate(("front 1 (liquid→ice going +normal)",
                              "front 2 (ice→liquid going +normal)")):
        lines.append(f"{name}: velocity {res.velocities[j]:+.4f} ± "
                     f"{res.velocity_errors[j]:.4f} {unit}")
    verb = "melting" if res.melting_speed >= 0 else "growth"
    lines.append(f"{verb} speed (fronts moving into the {'ice' if verb == 'melting' else 'liquid'}): "
                 f"{abs(res.melting_speed):.4f} ± {res.melting_speed_error:.4f} {unit}"
                 + (f" = {abs(res.melting_speed) * 100:.2f} ± {res.melting_speed_error * 100:.2f} m/s"
                    if unit == "Å/ps" else ""))
    lines.append(f"ice {'melted' if res.melted_per_area[-1] >= 0 else 'grown'} by the last "
                 f"frame: {abs(res.melted_per_area[-1]):.2f} molecules per nm² of interface")
    if len(res.unknown) and res.unknown.max() > 0:
        lines.append(f"unknown (ordered, not a known ice; not counted as ice): "
                     f"{res.unknown.min()}–{res.unknown.max()} molecules per frame")
    return "\n".join(lines)


def nucleation_summary(log: Log, onset: int | None = None) -> str:
    """Largest ice cluster over the run, its composition in the last frame, and with
    ``onset`` (molecules) the first frame whose largest cluster reaches it and the
    induction time (from the first frame); the stop condition that ended the run, if
    one did. Frames logged before icemon logged clusters are measured from their denoised
    positions (:meth:`Log.largest_clusters`)."""
    if onset is not None and onset < 1:
        raise ConfigError(f"--onset is a nucleus size in molecules (≥ 1), not {onset}")
    largest = log.largest_clusters()
    known = largest >= 0
    if not known.any():
        return ("clusters: not recorded (a log written before icemon logged clusters, "
                "without positions)")
    t, t_label = log.times_or_steps()
    unit = {"time (ps)": "ps", "MD step": "MD steps"}.get(t_label, "logged frames")
    rule = log.cluster_rule
    k = int(np.flatnonzero(known)[-1])
    comp = (log.cluster_composition[k] if "cluster_composition" in log.file
            and log.cluster_composition[k].min() >= 0 else log.clusters(k).composition)
    parts = ", ".join(f"{log.phases[i]} {comp[i]}" for i in np.argsort(-comp) if comp[i] > 0)
    lines = [f"largest ice cluster (O–O ≤ {rule.cutoff:g} Å"
             + (f", ≥ {rule.min_ice_neighbours} ice neighbours" if rule.min_ice_neighbours else "")
             + f"): {largest[known].min()}–{largest[known].max()} molecules, "
             f"{largest[k]} in the last frame ({parts or 'no ice'})"]
    if not known.all():
        lines.append(f"({int((~known).sum())} frame(s) have no cluster record and no positions)")
    if onset is not None:
        reached = np.flatnonzero(known & (largest >= onset))
        if len(reached):
            j = int(reached[0])
            unsure = " (frames without a record before it)" if (~known[:j]).any() else ""
            lines.append(f"onset (largest cluster ≥ {onset}): frame {j}, step {log.steps[j]}, "
                         f"{t_label} {t[j]:g}; induction time {t[j] - t[0]:g} {unit}"
                         + unsure)
        else:
            lines.append(f"onset: the largest cluster never reached {onset} molecules")
    if log.stopped is not None:
        lines.append(f"stopped at step {log.stopped['step']}: {log.stopped['reason']}")
    return "\n".join(lines)


def report(path: str | Path, outdir: str | Path | None, normal: str | None = None,
           bin_width: float = 2.0, out: TextIO | None = None,
           onset: int | None = None) -> list[Path]:
    """Print the report of a log and write its PNG plots into ``outdir`` (``onset``:
    a nucleus size in molecules, for the onset and induction time)."""
    out = out or sys.stdout
    with Log(path) as log:
        t, t_label = log.times_or_steps()
        print(f"{log.path}: {log.n_frames} frames, {log.n_atoms} molecules, "
              f"{t_label} {t[0] if log.n_frames else 0:g} … {t[-1] if log.n_frames else 0:g}",
              file=out)
        if log.n_frames == 0:
            return []
        tracker, reason = fronts_or_reason(log, normal, bin_width)
        print(table(log, tracker if not reason else None), file=out)
        if reason:
            print(f"fronts: {reason}", file=out)
        else:
            print(front_summary(tracker.results, tracker.axis), file=out)
        print(nucleation_summary(log, onset), file=out)
        if log.errors:
            print(f"{len(log.errors)} frame(s) were skipped by the monitor, e.g. step "
                  f"{log.errors[0][0]}: {log.errors[0][1]}", file=out)
        written = []
        if outdir is not None:
            from icemon.analysis import plots  # matplotlib only when plotting

            outdir = Path(outdir)
            outdir.mkdir(parents=True, exist_ok=True)
            stem = log.path.stem
            written.append(plots.save_figure(plots.plot_fractions(log),
                                             outdir / f"{stem}-fractions.png"))
            if tracker is not None and not reason:
                written.append(plots.save_figure(plots.plot_front_map(log, tracker),
                                                 outdir / f"{stem}-fronts.png"))
            if (log.largest_clusters() >= 0).any():
                written.append(plots.save_figure(plots.plot_clusters(log, onset),
                                                 outdir / f"{stem}-clusters.png"))
            for p in written:
                print(f"wrote {p}", file=out)
        return written


def _writer_done(path: Path) -> bool:
    """True once no process holds the log open for writing. (Opening the file with h5py
    would not tell: HDF5 reuses this process's own reader handle.)"""
    return not open_for_writing(path)


UNSEEN_WRITER_IDLE = 600.0
"""s without a new frame after which :func:`watch` stops following a log whose writer it
cannot see (another host, or no record), unless ``idle`` says otherwise."""


def watch(path: str | Path, interval: float = 1.0, idle: float | None = None,
          normal: str | None = None, out: TextIO | None = None) -> int:
    """Follow a log: print each new frame's fractions and fronts until the writer closes
    the log, its process is gone without closing it (killed; pid and host recorded in the
    log), ``idle`` seconds pass without a new frame (default: no limit while the writer
    runs on this host, :data:`UNSEEN_WRITER_IDLE` for a writer it cannot see), or Ctrl-C.
    Returns frames seen."""
    out = out or sys.stdout
    path = Path(path)
    deadline = time.time() + (idle or 0)
    while not path.exists():
        if idle is not None and time.time() > deadline:
            raise LogError(f"no such log: {str(path)!r}")
        time.sleep(interval)
    log = Log(path)
    print(f"watching {path} ({log.n_atoms} molecules); Ctrl-C to stop", file=out, flush=True)
    seen = 0
    last_new = time.time()
    try:
        record = json.loads(log.file.attrs.get("writer", "{}"))
    except (TypeError, ValueError):
        record = {}
    limit = idle if idle is not None else (
        UNSEEN_WRITER_IDLE if writer_state(record) == "unseen" else None)
    try:
        while True:
            done = _writer_done(path)
            if not done and writer_state(record) == "gone":
                n = log.refresh()
                for k in range(seen, n):
                    print(_frame_line(log, k, normal), file=out, flush=True)
                print(f"the writer (pid {record.get('pid')} on {record.get('host')}) is gone "
                      f"without closing the log (killed?); stopping after {n} frames", file=out,
                      flush=True)
                return n
            if done:  # re-open: a fresh handle sees everything the writer flushed at close
                log.close()
                log = Log(path)
            n = log.refresh()
            for k in range(seen, n):
                print(_frame_line(log, k, normal), file=out, flush=True)
            if n > seen:
                last_new = time.time()
            seen = n
            if done:
                print(f"log closed by its writer after {seen} frames", file=out, flush=True)
                return seen
            if limit is not None and time.time() - last_new > limit:
                print(f"no new frame for {limit:g} s; stopping after {seen} frames", file=out,
                      flush=True)
                return seen
            time.sleep(interval)
    finally:
        log.close()


def _frame_line(log: Log, k: int, normal: str | None) -> str:
    f = log.file
    fr = f["fractions"][k]
    line = (f"frame {k:5d} step {f['step'][k]:9d} t {f['time'][k]:9.2f} ps  "
            + "  ".join(f"{name} {100 * fr[i]:.1f}%"
                        for i, name in enumerate(log.phases) if fr[i] >= 5e-4))
    if log.has_positions:
        try:
            z = FrontTracker(normal=normal).compute(log, start=k, stop=k + 1).positions[0]
            if np.isfinite(z).all():
                line += f"  fronts {z[0]:.1f} {z[1]:.1f} Å"
        except (ValueError, LogError):
            pass
    return line


def parse_frames(spec: str | None, n: int) -> list[int]:
    """'0:10:2', '5', '1,3,7', '-1' → frame indices of a log with ``n`` frames."""
    if not spec:
        return list(range(n))
    out: list[int] = []
    for part in spec.split(","):
        if ":" in part:
            bits = [int(b) if b else None for b in part.split(":")]
            out.extend(range(n)[slice(*bits)])
        else:
            k = int(part)
            if not -n <= k < n:
                raise LogError(f"frame {k} out of range: the log has {n} frames")
            out.append(k % n)
    return out


def _positions(log: Log, k: int, denoised: bool) -> np.ndarray:
    """Frame ``k``'s positions as given, or denoised: the given ones moved by the minimum
    image of the denoising displacement (the log's denoised positions are wrapped into
    the cell; an unwrapped trajectory stays unwrapped)."""
    given = log.positions(k)
    if not denoised:
        return given
    from icemon.geometry.frame import minimum_image

    return given + minimum_image(log.positions(k, denoised=True) - given, log.cell(k))


def export(path: str | Path, extxyz: str | Path, frames: str | None = None,
           denoised: bool = False) -> int:
    """Write frames of a log as extended XYZ (see :func:`icemon.io.extxyz.write_frame`:
    OVITO reads the phase names), with each molecule's ice cluster (``cluster`` column:
    the log's ids, the same as :meth:`Log.cluster_ids`). Returns the number of frames
    written."""
    from icemon.io.extxyz import write_frame

    with Log(path) as log:
        if not log.has_positions:
            raise LogError(f"{str(path)!r} has no positions (written with positions=False): "
                           "export needs them; fractions are still in the log")
        ids = log.atom_ids
        ks = parse_frames(frames, log.n_frames)
        steps, times = log.steps, log.times
        with open(extxyz, "w") as fh:
            for k in ks:
                write_frame(fh, _positions(log, k, denoised), log.cell(k), log.labels(k),
                            log.scores(k), ids, steps[k], times[k],
                            {"positions": "denoised" if denoised else "as simulated"},
                            phases=log.phases, cluster_ids=log.cluster_ids(k))
        return len(ks)
