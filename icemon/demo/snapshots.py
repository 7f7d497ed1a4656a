"""``icemon demo --snapshots``: classify the bundled snapshots, print one phase × snapshot table.

The bundled file (``icemon/data/demo-snapshots.extxyz``) holds single TIP4P/Ice MD frames
(oxygens only) of ice Ih, the empty sI clathrate and liquid water from the GCIceNet data
(MIT licence); each frame's ``title`` (extxyz comment) names it. The table has a row per
phase (the percentage of the snapshot's oxygens in it; ``-`` for none) and a column per
snapshot, then the number of oxygens.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, TextIO

SNAPSHOTS = Path(str(files("icemon") / "data" / "demo-snapshots.extxyz"))
"""The bundled snapshots: extxyz, oxygens only, Å, a ``title`` per frame."""


@dataclass
class Classified:
    """One snapshot's title (the part before its first comma), result and wall seconds."""

    title: str
    result: Any
    seconds: float


def classify_snapshots(pipe: Any, path: str | Path = SNAPSHOTS) -> tuple[list[Classified], str]:
    """Classify every frame of ``path`` (extxyz with a ``title`` per frame) with the
    :class:`~icemon.execution.pipeline.Pipeline` ``pipe``. Returns the classified snapshots and
    the titles' common remainder after the first comma (e.g. where the data come from;
    empty if the titles differ there)."""
    from ase.io import iread

    from icemon.io.readers import read_frames

    done: list[Classified] = []
    tails: set[str] = set()
    for k, (atoms, frame) in enumerate(zip(iread(str(path), index=":"), read_frames(path))):
        head, _, tail = str(atoms.info.get("title", f"snapshot {k}")).partition(",")
        tails.add(tail.strip())
        t0 = time.perf_counter()
        result = pipe.process(frame)
        done.append(Classified(head.strip(), result, time.perf_counter() - t0))
    return done, (tails.pop() if len(tails) == 1 else "")


def snapshot_table(snapshots: list[Classified]) -> str:
    """Rows: the phases (% of the snapshot's oxygens, ``-`` for none), then the number of
    oxygens; columns: the snapshots."""
    widths = [max(8, len(s.title)) for s in snapshots]

    def row(name: str, cells: list[str]) -> str:
        return f"{name:<8s}" + "".join(f"  {c:>{w}s}" for c, w in zip(cells, widths))

    head = row("phase", [s.title for s in snapshots])
    lines = [head, "-" * len(head)]
    for code, name in enumerate(snapshots[0].result.phases if snapshots else ()):
        lines.append(row(name, [f"{100 * s.result.fractions[code]:.1f} %"
                                if s.result.counts[code] else "-" for s in snapshots]))
    lines.append("-" * len(head))
    lines.append(row("oxygens", [str(s.result.frame.n_atoms) for s in snapshots]))
    return "\n".join(lines)


def run_snapshots(pipe: Any, path: str | Path = SNAPSHOTS, out: TextIO | None = None) -> None:
    """Classify the snapshots of ``path`` with ``pipe`` and print the model line and the
    phase × snapshot table."""
    out = out or sys.stdout
    print(f"model: {pipe.model.name} (sha256 {pipe.model.sha256[:12]}…), "
          f"liquid threshold {pipe.threshold:.3f}", file=out)
    snapshots, source = classify_snapshots(pipe, path)
    print(f"snapshots: {Path(path).name}" + (f" ({source})" if source else ""), file=out)
    print(snapshot_table(snapshots), file=out)
    n = sum(s.result.frame.n_atoms for s in snapshots)
    seconds = sum(s.seconds for s in snapshots)
    print(f"{n} oxygens classified in {seconds:.1f} s (the first snapshot includes the "
          f"model's start-up)", file=out)
