"""Whether a crystal is the ice it resembles: a crystal of a phase fills every Wyckoff
orbit of that phase in proportion to its multiplicity; an impostor need not.

A lattice the model does not know may land within the threshold of an ice it does know
(ice XII inside ice V's unit). XII, read as V, fills two of V's four orbits and leaves
the others empty. Each atom labelled with an ice is matched, by its own (not averaged)
descriptor, to the nearest *site* of that ice (a distinct environment of its ideal
lattice; :meth:`OrbitCheck.local`, each executor for its own atoms), and when an orbit of
a frame's ice holds much less than its share of the atoms so labelled
(:attr:`OrbitCheck.floor`), every atom of that ice in the frame becomes ``unknown``.

Fit (:meth:`OrbitCheck.fit`, :func:`merged_orbits`, :func:`orbit_floors`): the sites
of the ideal references; orbits that synthetic ice mixes merged; floors from the
worst-filled orbit of synthetic ice, times a margin.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from icemon.classification.checks.base import FrameLabels, RegionalCheck, register
from icemon.classification.checks.family import confusion_matrix, joined

if TYPE_CHECKING:
    from icemon.classification.reference import Assessment, NearestReference

ORBIT_CHANCE = 1e-3
"""An orbit of a frame's ice is judged only when so many of its atoms are expected there
(its share × the atoms labelled with that ice) that independent atoms would leave it
below the floor less often than this (Poisson): 9.5 expected atoms for a floor of 0.2,
16.5 for 0.35, 30 for 0.5. A crystal's orbits fluctuate far less than independent atoms,
so genuine small crystallites are not judged by chance emptiness."""

ORBIT_MERGE_RATE = 0.1
"""Two orbits of a phase between which synthetic ice moves more than this share of
either's atoms (matched to the other's sites after noise, strain and denoising) count as
one orbit: their environments differ by less than strain can blur (sH has two such
orbits, sII's 32e and 8a are close), so their populations say nothing."""

ORBIT_SAMPLE_SHARE = 0.99
"""Synthetic-ice samples whose atoms are nearest to their own phase at least this often
set the floors: the check asks how evenly a crystal recognised as that ice fills its
orbits. (Under the calibration's strain, a few sH samples are read partly as sII, and
the atoms so read are those of one orbit.)"""

ORBIT_SAMPLE_MIN_EXPECTED = 20.0
"""Orbits of a synthetic sample expecting fewer atoms than this do not set floors (in a
sample of one or two unit cells, one misassigned atom of an orbit of six is 17 %)."""


@functools.lru_cache(maxsize=256)
def orbit_min_expected(floor: float, chance: float = ORBIT_CHANCE) -> float:
    """Fewest expected atoms on an orbit for it to be judged at ``floor``
    (:data:`ORBIT_CHANCE`); infinite for a floor of 0 (nothing judged)."""
    from scipy.stats import poisson

    if floor <= 0:
        return float("inf")
    for lam in np.arange(1.0, 1000.0, 0.5):
        if poisson.cdf(np.ceil(floor * lam) - 1, lam) < chance:
            return float(lam)
    return float("inf")


@register
@dataclass
class OrbitCheck(RegionalCheck):
    """The orbit check (see the module)."""

    site_features: np.ndarray
    """(S, k) PCA coordinates of the distinct per-atom (not averaged) environments of the
    ideal references, at each reference scale: the *sites*."""
    site_phase: np.ndarray
    """(S,) phase code of each site."""
    site_orbit: np.ndarray
    """(S,) orbit of each site (numbered over all phases)."""
    orbit_phase: np.ndarray
    """(O,) phase code of each orbit."""
    orbit_fraction: np.ndarray
    """(O,) share of its phase's atoms on each orbit (multiplicity / Z)."""
    floor: np.ndarray | None = None
    """(n_phases,) smallest population of an orbit, as a fraction of its share, for a
    frame's atoms of that ice to stay that ice; 0 = not checked. None: sites without
    floors (no check; the calibration measures them this way)."""

    name = "orbits"
    order = 40
    arrays = ("site_features", "site_phase", "site_orbit", "orbit_phase", "orbit_fraction",
              "orbit_floor")
    columns = 1

    def local(self, assessment: Assessment) -> np.ndarray:
        return self.orbits(assessment.own, assessment.nearest)

    def apply(self, frame: FrameLabels) -> None:
        if self.floor is None:
            return
        orbits = frame.columns[self.name][:, 0].astype(np.int64)
        for code, (ratio, _) in self.ratios(frame.labels, orbits).items():
            if ratio < self.floor[code]:
                frame.labels[frame.labels == code] = self.reference.unknown

    @classmethod
    def fit(cls, reference: NearestReference, features: np.ndarray, labels: np.ndarray,
            orbits: np.ndarray) -> OrbitCheck:
        """The sites: per-atom (not averaged) descriptors ``features`` (n, D) of reference
        atoms with phase ``labels`` and orbit ``orbits`` (numbered over all phases; every
        orbit's rows are the same environment, up to the density of the reference they
        came from); one row is kept per distinct environment. Floors 0 until
        :func:`orbit_floors` sets them."""
        y = reference.project(features)[0]
        labels, orbits = np.asarray(labels, dtype=np.int64), np.asarray(orbits, dtype=np.int64)
        _, first = np.unique(np.column_stack([np.round(y, 6), orbits]), axis=0,
                             return_index=True)
        first = np.sort(first)
        n_orbits = int(orbits.max()) + 1
        orbit_phase = np.zeros(n_orbits, dtype=np.int64)
        orbit_phase[orbits] = labels
        count = np.bincount(orbits, minlength=n_orbits).astype(np.float64)
        fraction = count / np.bincount(labels, minlength=reference.liquid)[orbit_phase]
        return cls(y[first], labels[first], orbits[first], orbit_phase, fraction,
                   np.zeros(reference.liquid)).bind(reference)

    def merge(self, group: np.ndarray) -> None:
        """Make orbits one: ``group`` (O,) gives each orbit its new number (0…G−1, orbits
        of one phase only); shares add up."""
        group = np.asarray(group, dtype=np.int64)
        n = int(group.max()) + 1
        phase = np.zeros(n, dtype=np.int64)
        phase[group] = self.orbit_phase
        if np.any(phase[group] != self.orbit_phase):
            raise ValueError("orbits of different phases cannot be merged")
        self.site_orbit = group[self.site_orbit]
        self.orbit_fraction = np.bincount(group, weights=self.orbit_fraction, minlength=n)
        self.orbit_phase = phase

    def orbits(self, y: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """(n,) int64 orbit of each atom: that of the site of phase ``nearest`` closest to
        the atom's own (not averaged) descriptor, given by its PCA coordinates ``y`` (n, k)
        (:meth:`NearestReference.project`)."""
        sites, phase = self.site_features, self.site_phase
        out = np.empty(len(y), dtype=np.int64)
        s2 = (sites * sites).sum(1)[None, :]
        chunk = 1 << 15
        for lo in range(0, len(y), chunk):
            q, code = y[lo:lo + chunk], np.asarray(nearest[lo:lo + chunk])
            d2 = (q * q).sum(1)[:, None] - 2.0 * q @ sites.T + s2
            d2[phase[None, :] != code[:, None]] = np.inf
            out[lo:lo + chunk] = self.site_orbit[np.argmin(d2, axis=1)]
        return out

    def ratios(self, labels: np.ndarray, orbits: np.ndarray,
               min_expected: float | None = None) -> dict[int, tuple[float, int]]:
        """{phase code: (smallest population / expected population over the phase's
        orbits that expect enough atoms to be judged (:func:`orbit_min_expected` of the
        phase's floor), atoms counted)} for every checked ice of a frame (a phase with >1
        orbit, a floor and enough atoms); 1 means every orbit holds its share. The atoms
        counted are those labelled with the ice and matched to its sites: one the family
        vote relabelled keeps the orbit of its own nearest ice and is left out.
        ``min_expected``: judge every orbit expecting at least this many atoms instead,
        floor or none (the calibration measures the floors this way)."""
        if self.floor is None and min_expected is None:
            return {}
        out: dict[int, tuple[float, int]] = {}
        labels = np.asarray(labels)
        for code in np.unique(labels):
            mine = np.flatnonzero(self.orbit_phase == code)
            if code < 0 or code >= self.reference.liquid or len(mine) < 2:
                continue
            # the atoms matched to this ice's sites (not those the family vote moved here)
            matched = (labels == code) & (self.orbit_phase[orbits] == code)
            n = int(matched.sum())
            expected = n * self.orbit_fraction[mine]
            least = (orbit_min_expected(float(self.floor[code])) if min_expected is None
                     else min_expected)
            checked = expected >= least
            if not checked.any():
                continue
            count = np.bincount(orbits[matched], minlength=len(self.orbit_phase))[mine]
            out[int(code)] = (float((count[checked] / expected[checked]).min()), n)
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"site_features": self.site_features, "site_phase": self.site_phase,
                "site_orbit": self.site_orbit, "orbit_phase": self.orbit_phase,
                "orbit_fraction": self.orbit_fraction,
                **({} if self.floor is None else {"orbit_floor": self.floor})}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray],
                    reference: NearestReference) -> OrbitCheck | None:
        if "site_features" not in arrays:
            return None
        return cls(*(np.asarray(arrays[k]) for k in cls.arrays[:5]),
                   np.asarray(arrays["orbit_floor"]) if "orbit_floor" in arrays else None
                   ).bind(reference)


def merged_orbits(check: OrbitCheck, samples: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
                  rate: float = ORBIT_MERGE_RATE) -> np.ndarray:
    """(O,) new number of each orbit after joining those that synthetic ice confuses:
    ``samples`` hold (phase code, nearest code, matched orbit, true orbit) of each atom of
    each synthetic-ice sample; orbits i and j join when more than ``rate`` of the atoms
    of i are matched to j or of j to i (transitively)."""
    phase = check.orbit_phase
    confusion = confusion_matrix(np.concatenate([t for *_, t in samples]),
                                 np.concatenate([m for _, _, m, _ in samples]), len(phase))
    return joined(confusion, rate, allowed=phase[:, None] == phase[None, :])


def orbit_floors(check: OrbitCheck, samples: list[tuple], margin: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(smallest orbit ratio, floor) of each phase from synthetic-ice ``samples`` (phase
    code, nearest code and :meth:`OrbitCheck.orbits` of each atom): how much of its share
    the worst-filled orbit of a noised, strained, denoised ideal lattice keeps when its
    atoms are matched to sites, over every sample of the phase read as that phase
    (:data:`ORBIT_SAMPLE_SHARE`), times ``margin`` (thermal motion mixes sites more than
    the synthetic noise does). A phase of one orbit gets NaN and floor 0 (nothing to
    check)."""
    n = check.reference.liquid
    ratio_min = np.full(n, np.nan)
    for code, nearest, orbits, *_ in samples:
        if np.mean(nearest == code) < ORBIT_SAMPLE_SHARE:
            continue  # a sample read as another ice in part: no crystal of this one
        labels = np.where(nearest == code, code, -1)  # the sample's own atoms only
        got = check.ratios(labels, orbits, ORBIT_SAMPLE_MIN_EXPECTED).get(code)
        if got is not None:
            ratio_min[code] = np.fmin(ratio_min[code], got[0])
    floor = np.where(np.isnan(ratio_min), 0.0, margin * np.nan_to_num(ratio_min))
    return ratio_min, floor
