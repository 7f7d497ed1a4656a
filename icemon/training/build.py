"""Turn a trained denoiser into a complete model file (classifier + threshold + provenance)."""

from __future__ import annotations

import platform
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np
import torch

from icemon.classification.checks import FamilyVote, GrowthCheck, RepeatCheck, TopologyCheck
from icemon.classification.topology import bond_gap
from icemon.descriptors.soap import Soap
from icemon.errors import ConfigError
from icemon.lattices.references import genice_version, reference_symmetry, unit_cell
from icemon.model.denoise import Denoiser
from icemon.model.modelfile import IcemonModel
from icemon.model.network import ScoreNet
from icemon.phases import LIQUID_NAME, UNKNOWN_NAME
from icemon.training.calibrate import REFERENCE_SCALES, calibrate, fit_classifier
from icemon.training.train import TrainConfig


def versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("icemon", "torch", "e3nn", "dscribe", "scikit-learn", "numpy", "genice2", "spglib",
                "vesin"):
        try:
            out[pkg] = version(pkg)
        except Exception:
            out[pkg] = "unknown"
    return out


def build_model(net: ScoreNet, config: TrainConfig, *, name: str, train_info: dict[str, Any],
                progress: bool = True) -> IcemonModel:
    """Fit the classifier on the references, calibrate the liquid threshold on synthetic
    data, and bundle everything with the training record."""
    net = net.cpu().eval()
    # dscribe, not the compiled kernels: a model file's arrays stay reproducible to the
    # bit (the two agree within ~1e-8 of a feature's spread, not in every last digit)
    soap = Soap(config.soap, backend="dscribe")
    phases = config.reference_phases
    scales = tuple(config.reference_scales or REFERENCE_SCALES)
    stray = [p for p in config.metric_phases or [] if p not in phases]
    if stray:
        raise ConfigError(f"metric_phases {stray} are not among the reference phases "
                          f"{list(phases)}")
    classifier = fit_classifier(soap, config.n_components, scales, shell=config.shell,
                                phases=phases, symprec=config.reference_symprec,
                                metric_phases=tuple(config.metric_phases)
                                if config.metric_phases else None)
    denoiser = Denoiser(net, config.denoise_steps, config.denoise_tol)
    repeat_shell = config.shell if config.repeat_average and config.unknown_label else 0.0
    cal = calibrate(denoiser, soap, classifier, sigma_max=config.sigma_max,
                    strain=config.strain, seed=config.seed, rule=config.threshold_rule,
                    ice_quantile=config.ice_quantile, ice_sigma=config.calibration_sigma,
                    ice_samples=config.calibration_samples,
                    progress=progress, phases=phases, unknown=config.unknown_label,
                    symprec=config.reference_symprec, orbit_margin=config.orbit_margin,
                    repeat_shell=repeat_shell,
                    repeat_sigma=config.sigma_max if config.repeat_sigma == "sigma_max"
                    else config.repeat_sigma, repeat_k=config.repeat_k)
    ref = classifier.reference
    ref.threshold = cal.threshold
    ref.phase_scale = cal.phase_scale
    sites = classifier.check("orbits")
    if config.unknown_label:
        ref.unknown = ref.liquid + 1  # the code after liquid
        classifier.add(RepeatCheck(cal.repeat_threshold, config.repeat_k, repeat_shell))
        if sites is not None:
            sites.floor = cal.orbit_floor
    if config.family_radius > 0 and cal.family is not None and (cal.family >= 0).any():
        classifier.add(FamilyVote(cal.family, config.family_radius))
        if config.topology_depth > 0:
            lattices = {}
            for code in np.flatnonzero(cal.family >= 0):
                atoms = unit_cell(phases[code], config.reference_symprec)
                lattice = (atoms.positions, np.asarray(atoms.cell[:]))
                longest, shortest = bond_gap(*lattice)
                if longest < shortest:  # a four-coordinated network (not ice VII)
                    lattices[int(code)] = lattice
            try:
                if lattices:
                    classifier.add(TopologyCheck.fit(lattices, ref, cal.family,
                                                     config.topology_depth))
            except ValueError as err:  # the members' bonds and non-bonds overlap
                warnings.warn(f"no topology check: {err}", stacklevel=2)
    if config.growth_contact > 0 and ref.shell > 0:
        classifier.add(GrowthCheck(config.growth_contact, config.growth_rounds,
                                   config.growth_own_weight, config.growth_core))
    topology = classifier.check("topology")
    assert topology is None or isinstance(topology, TopologyCheck)
    meta = {
        "name": name,
        "train": {"config": config.to_dict(), **train_info},
        "calibration": cal.summary(),
        **({} if topology is None else {"topology": {
            "depth": int(topology.sequences.shape[1]),
            "cutoff": topology.cutoff,
            "sequences": {phases[c]: topology.sequences[topology.phase == c].tolist()
                          for c in np.unique(topology.phase)}}}),
        "genice2": genice_version(),
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "references": {p: asdict(reference_symmetry(p, config.reference_symprec))
                       for p in phases} if config.reference_symprec > 0 else {},
        "phases": [*phases, LIQUID_NAME, *([UNKNOWN_NAME] if config.unknown_label else [])],
    }
    return IcemonModel(net, classifier, config.soap, config.denoise_steps, config.denoise_tol,
                       meta)
