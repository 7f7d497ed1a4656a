"""Fit the classifier on the references and derive the liquid threshold by itself.

The threshold is never picked by hand: it is derived from two *synthetic* score
distributions, both passed through the same denoiser as real data:

* ice: the reference supercells, randomly strained and noised with σ ~ U(0, σ_max) as in
  training (the thermal noise the denoiser is meant to remove);
* disorder: random packings of oxygens at each reference density with an excluded
  O–O distance (a structure that has no lattice at all).

The threshold is the ``ice_quantile`` (default 99.9 %) quantile of the synthetic-ice
scores: a fixed, small rate of thermally noisy ice called liquid (Neyman–Pearson), and
as much disorder as possible caught. The random packing is the *least* ordered liquid
one can imagine (real water is locally more ice-like), so the valley between it and ice
(``rule="valley"``, which minimises the sum of both synthetic error rates) sits too far
from ice; it is kept as an option and its value is recorded for comparison.

``rule="phase_quantile"`` takes that quantile for each phase on its own (over the
synthetic-ice atoms nearest to it) and makes it the phase's score unit
(:attr:`~icemon.classification.reference.NearestReference.phase_scale`; the threshold is then 1): every ice is called
liquid at the same small rate. One pooled quantile is set by the phases whose
descriptors strain and noise move farthest (VII; with ten references also sII and V) and
is then too loose near the stiff ones: measured, it let the ten-lattice network call
1.7 % of the liquid and ices XVII and 0 some ice. With the seven ices the two rules
agree where the liquid lands (nearest ice III, whose own unit is the pooled quantile).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from icemon.classification.checks.family import families
from icemon.classification.checks.orbits import OrbitCheck, merged_orbits, orbit_floors
from icemon.classification.checks.repeat import (
    REPEAT_K,
    far_average,
    repeat_distance,
    repeat_threshold,
)
from icemon.classification.classifier import PhaseClassifier
from icemon.classification.reference import NearestReference, shell_average
from icemon.descriptors.soap import Soap
from icemon.errors import ConfigError
from icemon.geometry.neighbors import neighbor_list
from icemon.lattices.references import reference
from icemon.model.denoise import Denoiser
from icemon.phases import SEVEN_ICES
from icemon.training.train import noisy_sample

REPEAT_HEIGHT = 20.0
"""Å. Smallest height of the synthetic-ice supercells the repeat threshold is derived
from: large enough that every Wyckoff orbit of every reference has more than ``repeat_k``
atoms in one sample (sH's smallest orbit has 2 of its 34 molecules per cell), so that the
repeat check sees crystals as crystals. (The liquid threshold keeps its own supercells of
2 r_cut: measured, deriving it from these larger ones moved the shipped model's threshold
from 2.76 to 4.15, the pooled quantile then being set by other phases' strain tails.)"""

REFERENCE_SCALES: tuple[float, ...] = (0.97, 1.0, 1.03)
"""Isotropic scalings of each reference included as reference environments (the same
ice exists over a range of densities)."""


def fit_classifier(soap: Soap, n_components: int = 30,
                   scales: tuple[float, ...] = REFERENCE_SCALES,
                   shell: float = 0.0, phases: tuple[str, ...] = SEVEN_ICES,
                   symprec: float = 0.0,
                   metric_phases: tuple[str, ...] | None = None) -> PhaseClassifier:
    """Scaler + PCA + reference environments from the ideal references only (their
    descriptors shell-averaged over ``shell`` Å, as frames will be); the reference of
    ``phases[k]`` gets code k; ``symprec``: see :func:`reference`. The per-atom
    descriptors give the sites and orbits of the orbit check
    (:meth:`~icemon.classification.checks.orbits.OrbitCheck.fit`): an orbit is a distinct environment of the
    reference at scale 1, and keeps its atoms at the other scales. ``metric_phases``: the
    phases whose environments set the standardisation and PCA (default all): adding a
    reference then leaves the metric, the units and the scores of the others as they
    were."""
    feats, own, labels = [], [], []
    for code, phase in enumerate(phases):
        atoms = reference(phase, min_height=2 * soap.config.r_cut, symprec=symprec)
        for s in scales:
            pos, cell = atoms.positions * s, np.asarray(atoms.cell[:]) * s
            f = soap(pos, cell)
            own.append(f)
            feats.append(shell_average(f, pos, cell, shell))
            labels.append(np.full(len(f), code))
    codes = np.concatenate(labels)
    metric = None if metric_phases is None else np.isin(
        codes, [phases.index(p) for p in metric_phases])
    ref = NearestReference.fit(np.concatenate(feats), codes, n_components, metric_rows=metric)
    ref.shell = float(shell)
    ref.liquid = len(phases)
    orbits, offset, k = [], 0, 0
    for _phase in phases:
        at_one = own[k + (scales.index(1.0) if 1.0 in scales else 0)]
        _, orbit = np.unique(np.round(ref.project(at_one)[0], 4), axis=0, return_inverse=True)
        orbits += [offset + orbit.ravel()] * len(scales)
        offset += int(orbit.max()) + 1
        k += len(scales)
    sites = OrbitCheck.fit(ref, np.concatenate(own), np.concatenate(labels),
                           np.concatenate(orbits))
    return PhaseClassifier(ref, [sites])


def random_packing(rng: np.random.Generator, cell: np.ndarray, n_atoms: int,
                   d_min: float = 2.5, iterations: int = 200) -> np.ndarray:
    """Random positions (Å) in ``cell`` pushed apart until no pair is closer than ~d_min."""
    pos = rng.uniform(size=(n_atoms, 3)) @ cell
    for _ in range(iterations):
        i, j, s = neighbor_list(pos, cell, d_min)
        if len(i) == 0:
            break
        vec = pos[j] + s - pos[i]
        r = np.linalg.norm(vec, axis=1)
        push = (0.5 * (d_min - r) / np.maximum(r, 1e-6))[:, None] * vec
        disp = np.zeros_like(pos)
        np.add.at(disp, i, -0.5 * push)
        pos = pos + disp
    return pos


@dataclass
class Calibration:
    threshold: float
    ice_scores: np.ndarray
    disorder_scores: np.ndarray
    rule: str = "ice_quantile"
    repeat_threshold: float = float("inf")
    """The ``ice_quantile`` quantile of the synthetic-ice repeat distances
    (:func:`~icemon.classification.checks.repeat.repeat_distance`): at most this far, an environment
    above the liquid threshold is ordered (``unknown``), beyond it liquid."""
    ice_repeats: np.ndarray | None = None
    disorder_repeats: np.ndarray | None = None
    phase_scale: np.ndarray | None = None
    """Per-phase score unit of the ``phase_quantile`` rule (then the scores here are
    already divided by it and the threshold is 1)."""
    orbit_ratio_min: np.ndarray | None = None
    """(n_phases,) smallest orbit population / share found in any synthetic-ice sample
    of each phase (:meth:`~icemon.classification.checks.orbits.OrbitCheck.ratios`; NaN: one orbit)."""
    orbit_floor: np.ndarray | None = None
    """(n_phases,) ``orbit_margin`` × :attr:`orbit_ratio_min` (0 where unchecked)."""
    family: np.ndarray | None = None
    """(n_phases,) family of each ice (:func:`families`; -1: none)."""
    phase_confusion: np.ndarray | None = None
    """(n_phases, n_phases) share of each ice's synthetic atoms nearest to each ice."""
    disorder_repeats_averaged: np.ndarray | None = None
    """The synthetic disorder's repeat distances averaged as the model averages them
    (:attr:`~icemon.classification.checks.repeat.RepeatCheck.shell`), when it does."""

    @property
    def separated(self) -> bool:
        """Whether the threshold lies below the median synthetic-disorder score."""
        return bool(self.threshold < np.median(self.disorder_scores))

    def summary(self) -> dict:
        q = lambda x, p: float(np.quantile(x, p))
        return {
            "threshold": self.threshold,
            "rule": self.rule,
            **({} if self.phase_scale is None else
               {"phase_quantiles": [float(v) for v in self.phase_scale]}),
            "separated": self.separated,
            "valley_threshold": valley_threshold(self.ice_scores, self.disorder_scores),
            "ice_atoms": len(self.ice_scores),
            "disorder_atoms": len(self.disorder_scores),
            "ice_q50": q(self.ice_scores, 0.5), "ice_q999": q(self.ice_scores, 0.999),
            "ice_max": float(self.ice_scores.max()),
            "disorder_min": float(self.disorder_scores.min()),
            "disorder_q001": q(self.disorder_scores, 0.001),
            "disorder_q50": q(self.disorder_scores, 0.5),
            "ice_above": float(np.mean(self.ice_scores > self.threshold)),
            "disorder_below": float(np.mean(self.disorder_scores <= self.threshold)),
            **({} if self.ice_repeats is None or self.disorder_repeats is None else {
                "repeat_threshold": self.repeat_threshold,
                "repeat_ice_q50": q(self.ice_repeats, 0.5),
                "repeat_ice_max": float(self.ice_repeats.max()),
                "repeat_disorder_q001": q(self.disorder_repeats, 0.001),
                "repeat_disorder_q50": q(self.disorder_repeats, 0.5),
                # random packings that would be called an unknown crystal (at the threshold)
                "repeat_disorder_below": float(np.mean(
                    self.disorder_repeats <= self.repeat_threshold)),
            }),
            **({} if self.family is None else {
                "families": [int(v) for v in self.family],
                "phase_confusion": [[round(float(v), 5) for v in row]
                                    for row in self.phase_confusion]}),
            **({} if self.disorder_repeats_averaged is None else {
                "repeat_disorder_averaged_q001": q(self.disorder_repeats_averaged, 0.001),
                "repeat_disorder_averaged_below": float(np.mean(
                    self.disorder_repeats_averaged <= self.repeat_threshold))}),
            **({} if self.orbit_floor is None else {
                "orbit_ratio_min": [None if np.isnan(v) else float(v)
                                    for v in self.orbit_ratio_min],
                "orbit_floor": [float(v) for v in self.orbit_floor]}),
        }


PHASE_QUANTILE_MIN_ATOMS = 1000
"""Fewest synthetic-ice atoms nearest to one phase for its own quantile; a phase with
fewer (it can happen only to a phase whose samples land nearest to another) takes the
pooled quantile."""


def phase_quantiles(scores: np.ndarray, codes: np.ndarray, n_phases: int,
                    quantile: float) -> np.ndarray:
    """The ``phase_quantile`` rule: for each phase, the ``quantile`` of the synthetic-ice
    scores of the atoms nearest to it, i.e. each ice is called liquid at the same small
    rate (1 − quantile) however far strain and noise move its descriptor."""
    pooled = float(np.quantile(scores, quantile))
    out = np.full(n_phases, pooled)
    for k in range(n_phases):
        mine = scores[codes == k]
        if len(mine) >= PHASE_QUANTILE_MIN_ATOMS:
            out[k] = float(np.quantile(mine, quantile))
    return out


def valley_threshold(ice: np.ndarray, disorder: np.ndarray) -> float:
    """Threshold minimising the two synthetic error rates (geometric middle of the gap)."""
    cand = np.unique(np.concatenate([ice, disorder]))
    cand = cand[cand > 0]
    ice_s, dis_s = np.sort(ice), np.sort(disorder)
    err = (1 - np.searchsorted(ice_s, cand, side="right") / len(ice_s)) \
        + np.searchsorted(dis_s, cand, side="right") / len(dis_s)
    best = np.flatnonzero(err == err.min())
    # the optimal set is an interval between consecutive candidates: take its log-middle
    lo = cand[best[0]]
    hi_idx = best[-1] + 1
    hi = cand[hi_idx] if hi_idx < len(cand) else cand[best[-1]]
    return float(np.sqrt(lo * hi))


def calibrate(denoiser: Denoiser, soap: Soap, classifier: PhaseClassifier, *,
              sigma_max: float, strain: float, seed: int = 0, ice_samples: int = 6,
              disorder_samples: int = 2, disorder_atoms: int = 512, repeat_samples: int = 2,
              unknown: bool = True,
              rule: str = "ice_quantile", ice_quantile: float = 0.999,
              ice_sigma: float | None = None, progress: bool = True,
              phases: tuple[str, ...] = SEVEN_ICES, symprec: float = 0.0,
              orbit_margin: float = 0.5, repeat_shell: float = 0.0,
              repeat_sigma: float | None = None, repeat_k: int = REPEAT_K) -> Calibration:
    """Score synthetic ice and synthetic disorder and derive the threshold by ``rule``.

    ``ice_sigma`` sets the synthetic ice's noise (Å per component): None draws σ ~ U(0,
    σ_max) as in training; a number uses that σ for every sample. With few denoising
    passes, small synthetic noise is removed completely, so under U(0, σ_max) the quantile
    is set by nearly ideal samples and real thermal motion lands above it; a fixed σ of
    the size of thermal motion near melting (≈ 0.15 Å for oxygen in ice Ih) calibrates on
    the case the monitor meets. Descriptors are shell-averaged as in :class:`Pipeline`
    (``classifier.shell``).

    ``unknown``: also derive the repeat threshold of the ``unknown`` label, from
    ``repeat_samples`` larger supercells per phase (:data:`REPEAT_HEIGHT`), strained the
    same way and noised with ``repeat_sigma`` (None: as the synthetic ice) (their own
    random numbers, so the liquid threshold is the same with or without). A lattice the
    network was never trained on comes out of the passes less ordered than the ones it
    was: measured, the averaged repeat distances of six such lattices (C14, C36, LTA, sV,
    HS2, IV) reach 0.30–0.51 against the 0.30 of the shipped model's σ = 0.15 Å synthetic
    ice, and the liquid's start at 0.69. Noised with σ_max, the largest noise the network
    is trained to remove, synthetic ice gives 0.49: an ordered structure counts as
    ordered up to the disorder the denoiser is built for. When the classifier has sites:
    its orbits that synthetic ice mixes merged (:func:`merged_orbits`, changing the
    classifier) and the orbit floors (:func:`orbit_floors`, ``orbit_margin``; 0 turns the
    orbit check off) from the synthetic-ice samples; always the phase families
    (:func:`families`). ``repeat_shell`` (Å): the radius over which the model averages
    repeat distances; the synthetic disorder's averages are recorded against the
    threshold too."""
    if ice_sigma is not None and not 0 < ice_sigma <= sigma_max:
        raise ConfigError(f"calibration σ {ice_sigma} Å is outside (0, sigma_max = "
                          f"{sigma_max} Å], the noise the denoiser was trained on")
    rng = np.random.default_rng(seed)
    rng_repeat = np.random.default_rng(seed + 1)
    jobs = []
    ref = classifier.reference
    sites = classifier.check("orbits")
    assert sites is None or isinstance(sites, OrbitCheck)
    checks_orbits = sites is not None and unknown and orbit_margin > 0
    true_orbits = {}  # each reference atom's orbit, from its ideal environment
    for code, phase in enumerate(phases):
        atoms = reference(phase, min_height=2 * soap.config.r_cut, symprec=symprec)
        base = (atoms.positions.copy(), np.asarray(atoms.cell[:]))
        if checks_orbits:
            true_orbits[code] = sites.orbits(ref.project(soap(*base))[0],
                                             np.full(len(atoms), code))
        for _ in range(ice_samples):
            sigma = rng.uniform(0, sigma_max) if ice_sigma is None else ice_sigma
            jobs.append(("ice", code, noisy_sample(rng, base, sigma, strain)[:2]))
        big = reference(phase, min_height=REPEAT_HEIGHT, symprec=symprec)
        for _ in range(repeat_samples if unknown else 0):  # own RNG: the other jobs unchanged
            sigma = (repeat_sigma if repeat_sigma is not None else
                     rng_repeat.uniform(0, sigma_max) if ice_sigma is None else ice_sigma)
            jobs.append(("repeat", code, noisy_sample(
                rng_repeat, (big.positions.copy(), np.asarray(big.cell[:])), sigma, strain)[:2]))
        number_density = len(atoms) / atoms.get_volume()
        for _ in range(disorder_samples):
            side = (disorder_atoms / number_density) ** (1 / 3)
            cell = np.eye(3) * side
            jobs.append(("disorder", code, (random_packing(rng, cell, disorder_atoms), cell)))
    scores: dict[str, list[np.ndarray]] = {"ice": [], "disorder": []}
    nearest: dict[str, list[np.ndarray]] = {"ice": [], "disorder": []}
    repeats: dict[str, list[np.ndarray]] = {"ice": [], "disorder": [], "repeat": []}
    orbit_samples: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    averaged_disorder: list[np.ndarray] = []
    ice_phase: list[np.ndarray] = []
    for kind, phase_code, (pos, cell) in tqdm(jobs, desc="calibrate", disable=not progress):
        den = denoiser(pos, cell)
        own = soap(den.positions, cell)
        feats = ref.averaged(own, den.positions, cell)
        if kind != "repeat":
            code, score = ref.nearest(feats)
            scores[kind].append(score)
            nearest[kind].append(code)
            if kind == "ice":
                ice_phase.append(np.full(len(code), phase_code))
            if kind == "ice" and checks_orbits:
                orbit_samples.append((phase_code, code, sites.orbits(ref.project(own)[0], code),
                                      true_orbits[phase_code]))
        if kind != "ice" and unknown:
            # every atom of a sample is a candidate, as every atom of an unknown crystal is
            d = repeat_distance(ref.coordinates(feats), repeat_k)
            repeats[kind].append(d)
            if kind == "disorder" and repeat_shell > 0:
                averaged_disorder.append(far_average(d, den.positions, cell, repeat_shell))
    ice, dis = np.concatenate(scores["ice"]), np.concatenate(scores["disorder"])
    phase_scale = None
    if rule == "ice_quantile":
        threshold = float(np.quantile(ice, ice_quantile))
    elif rule == "valley":
        threshold = valley_threshold(ice, dis)
    elif rule == "phase_quantile":
        codes = np.concatenate(nearest["ice"])
        phase_scale = phase_quantiles(ice, codes, len(phases), ice_quantile)
        ice = ice / phase_scale[codes]
        dis = dis / phase_scale[np.concatenate(nearest["disorder"])]
        threshold = 1.0
    else:
        raise ConfigError(f"unknown threshold rule {rule!r} (ice_quantile, phase_quantile "
                          f"or valley)")
    cal = Calibration(threshold, ice, dis, rule, phase_scale=phase_scale)
    cal.family, cal.phase_confusion = families(np.concatenate(ice_phase),
                                               np.concatenate(nearest["ice"]), len(phases))
    if unknown:
        ice_rep, dis_rep = np.concatenate(repeats["repeat"]), np.concatenate(repeats["disorder"])
        cal.repeat_threshold = repeat_threshold(ice_rep, ice_quantile)
        cal.ice_repeats, cal.disorder_repeats = ice_rep, dis_rep
        if averaged_disorder:
            cal.disorder_repeats_averaged = np.concatenate(averaged_disorder)
    if checks_orbits:
        # orbits that synthetic ice mixes are one orbit; the samples are renumbered alike
        group = merged_orbits(sites, orbit_samples)
        sites.merge(group)
        orbit_samples = [(c, near, group[o], group[t]) for c, near, o, t in orbit_samples]
        cal.orbit_ratio_min, cal.orbit_floor = orbit_floors(sites, orbit_samples,
                                                            orbit_margin)
    if not cal.separated:
        warnings.warn(f"poor calibration: the liquid threshold {threshold:.3f} is above the "
                      f"median score of synthetic disorder ({np.median(dis):.3f}); this "
                      f"denoiser does not separate ice from disorder (train longer or larger)",
                      stacklevel=2)
    return cal
