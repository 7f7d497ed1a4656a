"""The plots of a log, as :class:`matplotlib.figure.Figure` objects.

>>> fig = plot_fractions(log)                  # phase fractions against time
>>> save_figure(fig, "plots/run-fractions.png")

The figures are built on :class:`~matplotlib.figure.Figure` directly, never through
``pyplot``: no global figure registry to leak into, and the backend of the user's
session (Jupyter, Qt, ...) is never switched. Saving a ``Figure`` to PNG uses the Agg
renderer whatever that backend is; in a notebook the returned figure displays itself.

Phase colours come from :data:`icemon.phases.PHASE_COLORS` (OVITO-like, one fixed
colour per phase in every plot) when that table exists, else from matplotlib's default
colour cycle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from icemon import phases
from icemon.analysis.fronts import FrontTracker, phase_names_present
from icemon.io.log.reader import Log

AXIS_NAMES = "abc"
#: the two fronts' colours in the front map (on the blue solid-fraction map)
FRONT_COLORS = ("tab:red", "tab:orange")


def phase_color(name: str) -> tuple[float, float, float]:
    """Colour of a phase (RGB in 0..1; :func:`icemon.phases.phase_color`)."""
    return tuple(float(c) for c in phases.phase_color(name))  # type: ignore[return-value]


def _time_unit(label: str) -> str:
    return {"time": "ps", "MD step": "step"}.get(label.split(" (")[0], "frame")


def plot_fractions(log: Log, title: str | None = None) -> Figure:
    """Percentage of molecules in each phase present (≥ 0.1 % in some frame) against the
    simulation time (ps; MD steps for a log without times): one line per phase."""
    t, t_label = log.times_or_steps()
    fr = log.fractions
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    for i in phase_names_present(fr):
        name = log.phases[i]
        ax.plot(t, 100 * fr[:, i], marker="o", ms=3, label=name, color=phase_color(name))
    ax.set_xlabel(t_label)
    ax.set_ylabel("fraction of molecules (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(title or f"{log.path.name}: phase fractions ({log.n_atoms} molecules)")
    if ax.lines:
        ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_clusters(log: Log, onset: int | None = None, title: str | None = None) -> Figure:
    """Molecules in the largest ice cluster against time (ps; MD steps or frames without
    times), all ices together and the largest cluster of each ice phase present, with the
    ``onset`` size as a dashed line."""
    t, t_label = log.times_or_steps()
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    largest = log.largest_clusters().astype(float)
    largest[largest < 0] = np.nan  # frames without a record
    ax.plot(t, largest, marker="o", ms=3, color="black", label="all ices")
    by_phase = (log.largest_by_phase if "largest_by_phase" in log.file
                else np.zeros((log.n_frames, len(log.phases)), dtype=np.int64))
    for i, name in enumerate(log.phases):
        if i in (log.liquid, log.unknown) or by_phase[:, i].max() <= 0:
            continue
        ax.plot(t, by_phase[:, i], lw=1, color=phase_color(name), label=name)
    if onset is not None:
        ax.axhline(onset, ls="--", color="grey", label=f"onset {onset}")
    ax.set_xlabel(t_label)
    ax.set_ylabel("largest ice cluster (molecules)")
    ax.set_title(title or f"{log.path.name}: largest ice cluster ({log.n_atoms} molecules)")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_front_map(log: Log, tracker: FrontTracker, title: str | None = None) -> Figure:
    """Solid (any ice) fraction along the interface normal (Å) against time as a map,
    with the two fronts' positions per frame (points) and their least-squares lines
    (legend: velocity ± standard error, Å/ps). Positions are drawn modulo the box height."""
    res = tracker.results
    t = res.times
    height = res.centres[-1] + res.centres[0]
    dt = np.diff(t).mean() if len(t) > 1 else 1.0
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(res.profiles.T, origin="lower", aspect="auto", cmap="Blues", vmin=0, vmax=1,
                   extent=(t[0] - dt / 2, t[-1] + dt / 2, 0, height), interpolation="nearest")
    fig.colorbar(im, ax=ax, label="solid (ice) fraction")
    unit = _time_unit(res.time_label)
    for j in range(2):
        z = res.positions[:, j]
        ok = np.isfinite(z)
        if ok.sum() < 2:
            continue
        ax.plot(t[ok], z[ok] % height, "o", ms=3, color=FRONT_COLORS[j], label=f"front {j + 1}")
        coef = np.polyfit(t[ok], z[ok], 1)
        tt = np.linspace(t[ok][0], t[ok][-1], 100)
        ax.plot(tt, np.polyval(coef, tt) % height, "-", color=FRONT_COLORS[j], lw=1,
                label=f"fit {res.velocities[j]:+.3f} ± {res.velocity_errors[j]:.3f} Å/{unit}")
    ax.set_xlabel(res.time_label)
    ax.set_ylabel(f"position along the normal ({AXIS_NAMES[tracker.axis]}*) (Å)")
    ax.set_ylim(0, height)
    ax.set_title(title or f"{log.path.name}: solid fraction along the interface normal")
    if ax.lines:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, e.g. PNG) and return the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
