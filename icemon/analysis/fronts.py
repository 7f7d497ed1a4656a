"""Melting and growth fronts from an ``icemon/1`` log.

>>> log = Log("run.h5")                    # icemon.io.log.reader, also while a run writes
>>> fronts = FrontTracker(normal="z").compute(log)
>>> fronts.positions, fronts.velocities    # Å per frame and front; Å/ps ± standard error

The melting front is where the solid (any ice phase) fraction along the interface
normal crosses one half. A periodic slab has two fronts. Positions come from an
integral estimator that is exact for a sharp front and insensitive to the bin width:
over a window that holds one front, solid on one side and liquid on the other, the front
lies at ``window end − ∫ s(z) dz`` (or ``window start + ∫ s(z) dz``), with ``s`` the solid
fraction of the molecules in each bin. Velocities are least-squares slopes of position
against time with their standard errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from icemon.errors import ConfigError, IcemonError
from icemon.geometry.frame import fractional
from icemon.io.log import LogError
from icemon.io.log.reader import Log
from icemon.phases import is_ice

AXES = {"x": 0, "y": 1, "z": 2, "a": 0, "b": 1, "c": 2}


def solid_profile(positions: np.ndarray, cell: np.ndarray, labels: np.ndarray, axis: int,
                  bin_width: float, liquid: int, unknown: int = -1
                  ) -> tuple[np.ndarray, np.ndarray, float]:
    """Solid fraction per slab along the normal of the cell face spanned by the two
    other lattice vectors: (bin centres Å, solid fraction per bin (NaN if empty), height Å).
    Solid = ice: any label but ``liquid`` and ``unknown`` (their codes in the model's
    vocabulary; ordered but unknown structure is no ice and moves no front)."""
    frac = fractional(positions, cell)[:, axis]
    recip = np.linalg.inv(cell).T
    height = 1.0 / np.linalg.norm(recip[axis])
    n_bins = max(4, int(round(height / bin_width)))
    idx = np.minimum((frac * n_bins).astype(np.int64), n_bins - 1)
    total = np.bincount(idx, minlength=n_bins).astype(np.float64)
    solid = np.bincount(idx, weights=is_ice(labels, liquid, unknown), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = solid / total
    centres = (np.arange(n_bins) + 0.5) * height / n_bins
    return centres, s, height


def _fill_empty(s: np.ndarray) -> np.ndarray:
    """Empty bins (NaN; e.g. between the molecular layers of a crystal) take the value
    interpolated from their cyclic neighbours."""
    ok = np.flatnonzero(np.isfinite(s))
    if len(ok) == 0:
        return np.zeros_like(s)
    n = len(s)
    x = np.r_[ok - n, ok, ok + n]
    return np.interp(np.arange(n), x, np.r_[s[ok], s[ok], s[ok]])


def find_fronts(s: np.ndarray, height: float, window: float = 12.0
                ) -> tuple[float, float]:
    """(rising, falling) front positions in Å of a periodic solid-fraction profile ``s``:
    where solid starts and where it ends going along the normal; NaN if the profile has
    no solid or no liquid region."""
    n = len(s)
    w = height / n
    s = _fill_empty(s)
    solid = s > 0.5
    if solid.all() or not solid.any():
        return np.nan, np.nan
    # the longest cyclic run of solid bins is the slab
    start, best, run_start, run = 0, 0, None, 0
    doubled = np.r_[solid, solid]
    for i, v in enumerate(doubled):
        if v:
            if run == 0:
                run_start = i
            run += 1
            if run > best and run <= n:
                best, start = run, run_start
        else:
            run = 0
    rise_bin, fall_bin = start % n, (start + best) % n  # first solid, first liquid after
    half = max(1, int(round(window / 2 / w)))
    if best < half or n - best < half:  # a slab (or liquid) too thin for the window
        return np.nan, np.nan

    def integral(lo: int, hi: int) -> float:  # ∫ s over bins lo..hi-1 (cyclic), Å
        return float(s[np.arange(lo, hi) % n].sum() * w)

    lo = rise_bin - half
    rising = (rise_bin + half) * w - integral(lo, rise_bin + half)
    falling = (fall_bin - half) * w + integral(fall_bin - half, fall_bin + half)
    return rising % height, falling % height


def _fit(t: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and its standard error."""
    ok = np.isfinite(t) & np.isfinite(z)
    t, z = t[ok], z[ok]
    if len(t) < 3:
        return np.nan, np.nan
    design = np.c_[t, np.ones_like(t)]
    coef = np.linalg.lstsq(design, z, rcond=None)[0]
    resid = z - design @ coef
    sigma2 = resid @ resid / (len(t) - 2)
    cov = sigma2 * np.linalg.inv(design.T @ design)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


@dataclass
class FrontResults:
    frames: np.ndarray
    """(n,) log frame indices analysed."""
    times: np.ndarray
    """(n,) ps (or MD steps if the log has no times; see ``time_label``)."""
    time_label: str
    centres: np.ndarray
    """(n_bins,) bin centres along the normal, Å (from the first frame's cell)."""
    profiles: np.ndarray
    """(n, n_bins) solid fraction per bin (empty bins interpolated from their neighbours)."""
    positions: np.ndarray
    """(n, 2) rising and falling front positions, Å, unwrapped over time."""
    velocities: np.ndarray
    """(2,) front velocities along the normal, Å/ps (per step without times)."""
    velocity_errors: np.ndarray
    """(2,) standard errors of the velocities."""
    melting_speed: float
    """Mean speed at which the fronts move into the ice (Å/ps; negative = growth)."""
    melting_speed_error: float
    area: float
    """Interface area (Å²) of the cell face the fronts are parallel to."""
    melted_per_area: np.ndarray
    """(n,) molecules of ice lost since the first frame, per interface and nm²
    (negative = grown); ice only (``unknown`` is not ice)."""
    unknown: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    """(n,) molecules labelled ``unknown`` (ordered, not a known ice) per frame: reported on
    their own, never counted as ice."""


class FrontTracker:
    """Melting/growth fronts of a slab geometry (freud-style: ``compute`` returns self).

    Args:
        normal: interface normal as a lattice-vector name ("x"/"a", "y"/"b", "z"/"c"),
            or None to take the direction with the most contrast in the first frame
            that holds both solid and liquid.
        bin_width: slab thickness of the profile, Å.
        window: width of the window (Å) of the integral front estimator; it must hold
            one front and some solid and liquid on each side.
        denoised: use the denoised positions.
    """

    def __init__(self, normal: str | None = None, bin_width: float = 2.0,
                 window: float = 12.0, denoised: bool = False) -> None:
        if normal is not None and normal not in AXES:
            raise ConfigError(f"normal must be one of {sorted(AXES)} or None, not {normal!r}")
        self.normal = normal
        self.bin_width = float(bin_width)
        self.window = float(window)
        self.denoised = denoised
        self._results: FrontResults | None = None

    def _axis(self, log: Log, frames: np.ndarray) -> int:
        if self.normal is not None:
            return AXES[self.normal]
        fractions = log.file["fractions"]  # row reads: `watch` calls this once per frame
        liquid, unknown = log.liquid, log.unknown

        def ice(k: int) -> float:
            row = fractions[k]
            return 1.0 - row[liquid] - (row[unknown] if unknown >= 0 else 0.0)

        k = next((k for k in frames if 0.05 < ice(k) < 0.95), frames[0])
        pos, cell, lab = log.positions(k, self.denoised), log.cell(k), log.labels(k)
        spread = []
        for axis in range(3):
            _, s, _ = solid_profile(pos, cell, lab, axis, self.bin_width * 2, liquid, unknown)
            spread.append(np.nanvar(s))
        return int(np.argmax(spread))

    def compute(self, log: Log, start: int = 0, stop: int | None = None, step: int = 1
                ) -> FrontTracker:
        if not log.has_positions:
            raise LogError(f"{str(log.path)!r} was written without positions: fronts need "
                           "them (monitor option positions=True)")
        frames = np.arange(log.n_frames)[start:stop:step]
        if len(frames) == 0:
            raise ConfigError("no frames to analyse")
        self.axis = self._axis(log, frames)
        times, label = log.times_or_steps()
        cell0 = log.cell(frames[0])
        n_bins = None
        width = self.bin_width
        profiles, fronts, heights, solid, unknown = [], [], [], [], []
        liquid, unknown_code = log.liquid, log.unknown
        for k in frames:
            lab = log.labels(k)
            _, s, h = solid_profile(log.positions(k, self.denoised), log.cell(k), lab,
                                    self.axis, width, liquid, unknown_code)
            if n_bins is None:  # later frames use the first frame's number of bins
                n_bins = len(s)
                width = h / n_bins
            elif len(s) != n_bins:  # the box changed a lot: resample on the first grid
                s = np.interp(np.linspace(0, 1, n_bins, endpoint=False),
                              np.linspace(0, 1, len(s), endpoint=False), s)
            profiles.append(_fill_empty(s))
            heights.append(h)
            fronts.append(find_fronts(s, h, self.window))
            solid.append(is_ice(lab, liquid, unknown_code).sum())
            unknown.append(int((lab == unknown_code).sum()) if unknown_code >= 0 else 0)
        positions = np.array(fronts, dtype=np.float64)
        heights = np.array(heights)
        for j in range(2):  # unwrap across the periodic boundary
            z = positions[:, j]
            ok = np.flatnonzero(np.isfinite(z))
            for a, b in zip(ok[:-1], ok[1:]):
                jump = z[b] - z[a]
                z[b] -= heights[b] * np.round(jump / heights[b])
        t = times[frames]
        vel = np.array([_fit(t, positions[:, j]) for j in range(2)])
        # rising front moving +normal and falling front moving −normal both shrink the slab
        speeds = np.array([vel[0, 0], -vel[1, 0]])
        melting = float(np.mean(speeds))
        melting_err = float(np.sqrt(vel[0, 1] ** 2 + vel[1, 1] ** 2) / 2)
        a_vecs = np.delete(cell0, self.axis, axis=0)
        area = float(np.linalg.norm(np.cross(a_vecs[0], a_vecs[1])))
        solid = np.array(solid, dtype=np.float64)
        melted = (solid[0] - solid) / (2 * area / 100.0)
        centres = (np.arange(n_bins) + 0.5) * heights[0] / n_bins
        self._results = FrontResults(frames, t, label, centres,
                                     np.array(profiles), positions, vel[:, 0], vel[:, 1],
                                     melting, melting_err, area, melted,
                                     np.array(unknown, dtype=np.int64))
        return self

    @property
    def results(self) -> FrontResults:
        if self._results is None:
            raise IcemonError("call compute(log) first")
        return self._results

    @property
    def positions(self) -> np.ndarray:
        return self.results.positions

    @property
    def velocities(self) -> np.ndarray:
        return self.results.velocities

    @property
    def velocity_errors(self) -> np.ndarray:
        return self.results.velocity_errors


def phase_names_present(fractions: np.ndarray, min_fraction: float = 1e-3) -> list[int]:
    """Codes of the phases that reach ``min_fraction`` in some frame."""
    if not fractions.size:
        return []
    return [i for i in range(fractions.shape[1]) if fractions[:, i].max() >= min_fraction]
