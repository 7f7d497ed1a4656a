"""The report's plots: plain matplotlib Figures that never touch the user's backend."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from icemon.analysis import FrontTracker, Log
from icemon.analysis.plots import (
    phase_color,
    plot_fractions,
    plot_front_map,
    save_figure,
)

from .test_analysis import synthetic_log

ROOT = Path(__file__).resolve().parents[1]


def _melting_log(path: Path) -> Path:
    v, times = 0.08, np.linspace(0.0, 100.0, 11)
    return synthetic_log(path, np.c_[25 + v * times, 55 - v * times], times)


def test_figures_hold_one_line_per_phase_and_the_front_fits(tmp_path):
    with Log(_melting_log(tmp_path / "melt.h5")) as log:
        fig = plot_fractions(log)
        assert isinstance(fig, Figure) and len(fig.axes) == 1
        ax = fig.axes[0]
        labels = [line.get_label() for line in ax.lines]
        assert labels == ["Ih", "liquid"]
        assert len(ax.lines[0].get_xdata()) == log.n_frames
        np.testing.assert_allclose(ax.lines[1].get_ydata(), 100 * log.fractions[:, log.phases.index(
            "liquid")])
        from matplotlib.colors import to_rgb

        assert to_rgb(ax.lines[0].get_color()) == to_rgb(phase_color("Ih"))

        tracker = FrontTracker(normal="z").compute(log)
        fig = plot_front_map(log, tracker)
        assert isinstance(fig, Figure)
        assert len(fig.axes) == 2  # the map and its colour bar
        ax = fig.axes[0]
        assert len(ax.images) == 1 and ax.images[0].get_array().shape[1] == log.n_frames
        labels = [line.get_label() for line in ax.lines]
        assert labels[0] == "front 1" and labels[2] == "front 2"
        assert labels[1].startswith("fit +0.08") and labels[3].startswith("fit -0.08")
        png = save_figure(fig, tmp_path / "fronts.png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


BACKEND_CHECK = """
import sys, matplotlib
matplotlib.use("svg")                       # the user's choice, not Agg
from icemon.analysis.report import report
written = report(sys.argv[1], sys.argv[2], out=open("/dev/null", "w"))
assert len(written) == 3, written  # fractions, fronts, clusters
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_report_keeps_the_backend_and_never_loads_pyplot(tmp_path):
    log = _melting_log(tmp_path / "melt.h5")
    out = subprocess.run([sys.executable, "-c", BACKEND_CHECK, str(log), str(tmp_path / "p")],
                         check=False, capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "False"]
    for name in ("melt-fractions.png", "melt-fronts.png", "melt-clusters.png"):
        assert (tmp_path / "p" / name).read_bytes()[:4] == b"\x89PNG"
