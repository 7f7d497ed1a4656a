"""Algorithm 1 of Sun et al.: denoising score matching on the ideal references only.

Each update draws a batch of reference supercells, applies a small random strain (so
the denoiser does not care about the exact density a force field or pressure gives),
adds isotropic Gaussian noise of a random scale σ ~ U(0, σ_max) (Å, per Cartesian
component) and trains ε_θ to return that noise (mean-squared error). No MD data and no
labels enter.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from icemon.descriptors.soap import SoapConfig
from icemon.errors import ConfigError
from icemon.lattices.references import reference
from icemon.model.graph import build_graph, edges_within
from icemon.model.network import ScoreNet, ScoreNetConfig
from icemon.phases import SEVEN_ICES


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved beside the weights)."""

    model: ScoreNetConfig = field(default_factory=ScoreNetConfig)
    soap: SoapConfig = field(default_factory=SoapConfig)
    denoise_steps: int = 8
    """Largest number of r ← r − ε(r) updates at inference."""
    train_passes: int = 1
    """K: passes the network is trained to land in. With K > 1 each update applies the
    network K times to the noised reference (r_k = r_{k-1} − ε(r_{k-1}), gradients through
    every pass) and penalises the distance of every r_k to the clean lattice; K = 1 is
    plain denoising score matching (Algorithm 1)."""
    skin: float = 1.0
    """Å added to the cutoff of the neighbour list built once per batch for the K passes."""
    denoise_tol: float = 0.01
    """Stop denoising once the largest update is below this (Å)."""
    n_components: int = 30
    """PCA components of the standardised reference SOAP vectors."""
    threshold_rule: str = "ice_quantile"
    """How the liquid threshold is derived from synthetic data (see icemon.training.calibrate):
    "ice_quantile" (one pooled quantile), "phase_quantile" (each phase its own), "valley"."""
    ice_quantile: float = 0.999
    """Quantile of synthetic-ice scores used as threshold by the "ice_quantile" rule."""
    calibration_sigma: float | None = None
    """σ (Å per component) of the synthetic ice the threshold is derived from; None:
    σ ~ U(0, sigma_max) as in training (see icemon.training.calibrate)."""
    calibration_samples: int = 6
    """Noised supercells per reference phase in the calibration."""
    shell: float = 0.0
    """Radius (Å) over which SOAP descriptors are averaged with the neighbours' before
    the nearest-reference search (0 = none); recorded in the classifier."""
    unknown_label: bool = True
    """Label ordered environments that match no reference ``unknown`` instead of liquid
    (:func:`icemon.classification.checks.repeat.repeat_distance`; its threshold is calibrated on the same
    synthetic ice as the liquid threshold)."""
    orbit_margin: float = 0.5
    """Orbit check of the ``unknown`` label (:mod:`icemon.classification.classifier`): a frame's
    atoms of an ice become ``unknown`` when one of its orbits holds less than this
    fraction of the smallest population / share seen in synthetic ice (0 = no check)."""
    repeat_sigma: float | str | None = "sigma_max"
    """σ (Å) of the synthetic ice the repeat threshold of ``unknown`` is derived from:
    "sigma_max" (the largest noise of training: lattices the network never saw come out
    less ordered than the ones it did), a number, or None (``calibration_sigma``, an
    earlier rule)."""
    family_radius: float = 7.0
    """Å, radius of the family vote among ices that synthetic ice confuses (the
    clathrates; :class:`~icemon.classification.checks.family.FamilyVote`); 0 = no vote.
    7 Å: the shell radius at which averaging alone separated thermal sI from sII
    (99.9 %)."""
    repeat_k: int = 4
    """Other atoms whose environment must lie within the repeat threshold for a far atom's
    environment to count as repeated (:func:`icemon.classification.checks.repeat.repeat_distance`)."""
    topology_depth: int = 6
    """Bonds of the coordination sequences that check a family member's framework
    (:mod:`icemon.classification.topology`; 0 = no check, and none without families)."""
    growth_contact: float = 0.0
    """Å: grow labelled ice into the liquid-labelled atoms within this distance of it, each
    re-scored with its shell average taken over itself and its ice neighbours only
    (:class:`~icemon.classification.checks.growth.GrowthCheck`; 3.5 = the first O–O shell;
    0 = no growth, the labels of models before v0.9)."""
    growth_rounds: int = 8
    """Growth steps at most (layers examined)."""
    growth_own_weight: float = 0.5
    """Share of a growth candidate's own descriptor in its re-scored one, the rest being the
    mean of its ice neighbours' (1 would re-score it on its own environment alone)."""
    growth_core: int = 0
    """Ordered cores: an atom whose own descriptor is within the threshold and that
    touches at least this many such atoms of its phase is a core atom; core atoms in
    contact with another become ice, and growth continues from them (a nucleus too small
    for the shell average; 0 = none, the labels of models before v0.10)."""
    repeat_average: bool = True
    """Average each far atom's repeat distance over the far atoms within ``shell`` before
    the unknown-vs-liquid decision (:attr:`~icemon.classification.checks.repeat.RepeatCheck.shell`)."""
    steps: int = 6000
    batch_size: int = 8
    lr: float = 3e-3
    lr_final: float = 1e-5
    weight_decay: float = 1e-4
    grad_clip: float = 0.0
    """Largest gradient norm of an update (0 = no clipping). A rare sample that the first
    pass throws far (a dense phase at large σ) can otherwise give one update that undoes
    hundreds (seen as a jump of the running loss from 0.03 to 0.14 Å)."""
    sigma_max: float = 0.2
    """Largest noise scale σ (Å, per component); σ ~ U(0, sigma_max) per structure."""
    sigma_min: float = 0.0
    """Smallest σ (Å); only used by ``sigma_sampling = "loguniform"``."""
    sigma_sampling: str = "uniform"
    """"uniform": σ ~ U(0, sigma_max) (Algorithm 1); "loguniform": log σ uniform in
    [log sigma_min, log sigma_max], which puts more updates on nearly ideal structures."""
    noise_weighting: bool = False
    """Weight each structure's squared error by 1 / (σ² + sigma_floor²), so that small-noise
    accuracy (the fixed point the iteration converges to) is not drowned by large σ."""
    sigma_floor: float = 0.05
    strain: float = 0.04
    """Random isotropic scaling in [1 - strain, 1 + strain] plus shear of strain / 4."""
    min_height: float = 10.0
    """Smallest perpendicular height (Å) of the training supercells."""
    reference_scales: list[float] | None = None
    """Isotropic scalings of every reference whose environments the classifier keeps
    (the same ice over a range of densities); None = ``REFERENCE_SCALES`` (0.97, 1,
    1.03) of :mod:`icemon.training.calibrate`."""
    reference_symprec: float = 0.0
    """Largest tolerance (Å) at which the GenIce unit cells are symmetrised before they
    are used for training, the classifier and calibration (0 = GenIce's sites as they
    are; see :func:`icemon.lattices.references.symmetrise`)."""
    phases: list[str] | None = None
    """Reference phases, any GenIce2 lattice (names as in
    :data:`~icemon.lattices.references.GENICE_LATTICES`, or GenIce's own); their order
    gives the codes, ``liquid`` comes after them. None = the seven ices (``SEVEN_ICES``)."""
    metric_phases: list[str] | None = None
    """Phases whose reference environments alone set the classifier's standardisation and
    PCA (None: all of ``phases``). Adding references changes the metric otherwise: with
    sII, sH and V in it, thermal Ih moved from 0.62 to 0.79 of its unit (GCIceNet) and
    interface Ih of mW fell past it."""
    phase_weights: list[float] | None = None
    """Relative probability of drawing each reference phase (order of ``phases``); None =
    uniform. Lets training spend more updates on the phases the iteration converges
    slowest on (ices II and III, whose cells hold 12 distinct sites)."""
    init: str = ""
    """Model file whose network weights start the training (fine-tuning); "" = random."""
    seed: int = 0
    checkpoint_every: int = 500
    device: str = "cpu"
    threads: int = 0
    """torch intra-op threads (0 = torch's default)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reference_phases(self) -> tuple[str, ...]:
        """The phases of the references, in code order."""
        return tuple(self.phases) if self.phases else SEVEN_ICES

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        d = dict(d)
        model = ScoreNetConfig.from_dict(d.pop("model", {}))
        soap = SoapConfig(**d.pop("soap", {}))
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown training config keys: {sorted(unknown)}")
        return cls(model=model, soap=soap, **d)


def apply_override(cfg: dict[str, Any], assignment: str) -> None:
    """Apply ``key.sub=value`` (value parsed as JSON when possible) to a nested dict."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not of the form key=value")
    key, raw = assignment.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    node = cfg
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value


def random_strain(rng: np.random.Generator, strain: float) -> np.ndarray:
    """A 3x3 deformation: isotropic scale in [1-strain, 1+strain] plus a small shear."""
    shear = rng.normal(scale=strain / 4, size=(3, 3))
    return rng.uniform(1 - strain, 1 + strain) * (np.eye(3) + (shear + shear.T) / 2)


def noisy_sample(
    rng: np.random.Generator, base: tuple[np.ndarray, np.ndarray], sigma: float, strain: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(noisy positions, cell, noise) of one strained, noised reference (Å)."""
    pos, cell = base
    f = random_strain(rng, strain)
    pos, cell = pos @ f, cell @ f
    noise = rng.normal(scale=sigma, size=pos.shape)
    noise -= noise.mean(axis=0)  # a rigid shift is not noise: nothing can predict it
    return pos + noise, cell, noise


class Trainer:
    """Runs Algorithm 1 with checkpoints every ``checkpoint_every`` updates."""

    def __init__(self, config: TrainConfig, workdir: str | Path) -> None:
        self.config = config
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.device = torch.device(config.device)
        self.model = ScoreNet(config.model).to(self.device)
        self.init_sha256: str | None = None
        """sha256 of the model file the weights started from (``config.init``)."""
        if config.init:
            from icemon.model.modelfile import IcemonModel

            start = IcemonModel.load(config.init)
            if start.net.config != config.model:
                raise ConfigError(f"{config.init}: its network config differs from this "
                                 "run's 'model' section; fine-tuning keeps the network")
            self.model.load_state_dict(start.net.state_dict())
            self.init_sha256 = start.sha256
        if config.phase_weights is not None:
            w = np.asarray(config.phase_weights, dtype=float)
            names = config.reference_phases
            if w.shape != (len(names),) or (w < 0).any() or w.sum() <= 0:
                raise ConfigError(f"phase_weights needs {len(names)} non-negative "
                                 f"numbers ({', '.join(names)})")
            self.phase_p = w / w.sum()
        else:
            self.phase_p = None
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        self.step = 0
        self.history: list[tuple[int, float]] = []
        self.commands: list[str] = []
        """Command lines that ran this training (first run, then each resume)."""
        self.seconds = 0.0
        """Wall time spent in updates over all sessions (s)."""
        self.bases = [
            (a.positions.copy(), np.asarray(a.cell[:]))
            for a in (reference(p, config.min_height, config.reference_symprec)
                      for p in config.reference_phases)
        ]

    def lr_at(self, step: int) -> float:
        """Cosine decay from ``lr`` to ``lr_final`` over ``steps`` (after 100 warm-up)."""
        c = self.config
        warm = min(1.0, (step + 1) / 100)
        t = min(1.0, step / max(1, c.steps))
        return warm * (c.lr_final + 0.5 * (c.lr - c.lr_final) * (1 + math.cos(math.pi * t)))

    def sample_sigma(self) -> float:
        c = self.config
        if c.sigma_sampling == "uniform":
            return float(self.rng.uniform(0, c.sigma_max))
        if c.sigma_sampling == "loguniform":
            return float(np.exp(self.rng.uniform(np.log(c.sigma_min), np.log(c.sigma_max))))
        raise ConfigError(f"unknown sigma_sampling {c.sigma_sampling!r}")

    def batch(self):
        c = self.config
        structures, targets, weights = [], [], []
        for _ in range(c.batch_size):
            k = (self.rng.integers(len(self.bases)) if self.phase_p is None
                 else self.rng.choice(len(self.bases), p=self.phase_p))
            base = self.bases[k]
            sigma = self.sample_sigma()
            pos, cell, noise = noisy_sample(self.rng, base, sigma, c.strain)
            structures.append((pos, cell))
            targets.append(noise)
            w = 1.0 / (sigma**2 + c.sigma_floor**2) if c.noise_weighting else 1.0
            weights.append(np.full(len(pos), w))
        skin = c.skin if c.train_passes > 1 else 0.0
        g = build_graph(structures, c.model.cutoff + skin, device=self.device)
        target = torch.as_tensor(np.concatenate(targets), dtype=torch.float32,
                                 device=self.device)
        weight = torch.as_tensor(np.concatenate(weights), dtype=torch.float32,
                                 device=self.device)
        return g, target, weight / weight.mean()

    def loss(self, g, noise: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Mean weighted squared distance to the clean lattice after each of K passes."""
        k_passes = self.config.train_passes
        pos, left = g.pos, noise  # left = r_k − clean, the noise still to remove
        total = torch.zeros((), device=pos.device)
        for _ in range(k_passes):
            src, dst, shifts = edges_within(pos, g.src, g.dst, g.shifts, self.config.model.cutoff)
            eps = self.model(pos, src, dst, shifts)
            # |r_k − clean|² = |ε_k − (r_{k−1} − clean)|²; K = 1: plain score matching
            total = total + torch.mean(weight[:, None] * (eps - left) ** 2)
            pos, left = pos - eps, left - eps
        return total / k_passes

    def train_step(self) -> float:
        g, target, weight = self.batch()
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(self.step)
        loss = self.loss(g, target, weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def run(self, progress: bool = True, stop_at: int | None = None) -> None:
        """Train up to ``config.steps`` updates (or only up to ``stop_at``), checkpointing."""
        c = self.config
        end = c.steps if stop_at is None else min(stop_at, c.steps)
        bar = tqdm(total=c.steps, initial=self.step, desc="train", disable=not progress,
                   unit="upd")
        ema = None
        while self.step < end:
            t_step = time.perf_counter()
            loss = self.train_step()
            self.seconds += time.perf_counter() - t_step
            ema = loss if ema is None else 0.98 * ema + 0.02 * loss
            self.history.append((self.step, loss))
            bar.update(1)
            bar.set_postfix(loss=f"{ema:.2e}", rmse=f"{math.sqrt(ema):.3f}Å")
            if self.step % c.checkpoint_every == 0 or self.step == end:
                self.save_checkpoint()
        bar.close()

    @property
    def checkpoint_path(self) -> Path:
        return self.workdir / "checkpoint.pt"

    def save_checkpoint(self) -> None:
        """Weights, optimiser state, RNG state and config (tensors + plain data only)."""
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save({
            "config": json.dumps(self.config.to_dict()),
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "rng": json.dumps(self.rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "history": torch.tensor(self.history, dtype=torch.float64),
            "commands": json.dumps(self.commands),
            "seconds": self.seconds,
        }, tmp)
        tmp.replace(self.checkpoint_path)

    @classmethod
    def resume(cls, path: str | Path, steps: int | None = None,
               overrides: list[str] | None = None) -> Trainer:
        """Continue a run from its checkpoint (optionally to a new total ``steps``).

        ``overrides`` (``key=value``) may change anything but the network itself, e.g. the
        SOAP or denoising settings of the model file built at the end."""
        path = Path(path)
        if path.is_dir():
            path = path / "checkpoint.pt"
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = json.loads(state["config"])
        cfg = json.loads(state["config"])
        for assignment in overrides or []:
            apply_override(cfg, assignment)
        if cfg["model"] != saved["model"]:
            raise ConfigError("the network config of a checkpoint cannot be changed on resume")
        config = TrainConfig.from_dict(cfg)
        if steps is not None:
            config.steps = steps
        trainer = cls(config, path.parent)
        trainer.model.load_state_dict(state["model"])
        trainer.opt.load_state_dict(state["optimizer"])
        trainer.step = int(state["step"])
        trainer.rng.bit_generator.state = json.loads(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        trainer.history = [(int(s), float(v)) for s, v in state["history"].tolist()]
        trainer.commands = json.loads(state.get("commands", "[]"))
        trainer.seconds = float(state.get("seconds", 0.0))
        return trainer
