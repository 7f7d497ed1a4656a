"""How far each model's denoiser brings a noised reference back onto its lattice.

For every reference phase of each model: the model's own ideal lattice (GenIce2's, or
symmetrised where the model was trained on symmetrised ones), heights ≥ 12 Å, noised with
σ (Å per Cartesian component, default 0.1, two seeds), then denoised pass by pass; the
RMSD (Å, mean translation removed) to the ideal sites after each pass. The last column is
the fixed point: the unnoised lattice after ``--fixed`` passes. The test suite's
criterion (``test_noised_references_denoise_back``) is < 0.05 Å after the model's own
pass count (marked *).

    python benchmarks/denoise_back.py --model icemon/data/ice-denoiser.npz --model other.npz
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from icemon.geometry.frame import minimum_image
from icemon.lattices.references import reference
from icemon.model.denoise import Denoiser
from icemon.model.modelfile import IcemonModel


def rmsd(x: np.ndarray, x0: np.ndarray, cell: np.ndarray) -> float:
    """RMSD (Å) of ``x`` from ``x0`` under periodic images, mean translation removed."""
    d = minimum_image(x - x0, cell)
    d -= d.mean(axis=0)
    return float(np.sqrt((d**2).sum(1).mean()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=None)
    ap.add_argument("--sigma", type=float, default=0.1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    ap.add_argument("--passes", type=int, default=4)
    ap.add_argument("--fixed", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for path in args.model or [None]:
        model = IcemonModel.load(path)
        den = Denoiser(model.net, args.passes, tol=0.0)
        own = model.denoise_steps
        print(f"\n{model.name} ({path or 'shipped'}): trained for {own} passes, references "
              f"symmetrised at {model.reference_symprec} Å; σ = {args.sigma} Å, "
              f"seeds {args.seeds}")
        head = " ".join(f"{k}{'*' if k == own else ' '}".rjust(15) for k in range(1, args.passes + 1))
        print(f"{'phase':>6} {head} {'fixed point':>12}")
        worst = 0.0
        for phase in model.phases:
            if phase in ("liquid", "unknown"):
                continue
            a = reference(phase, 12.0, model.reference_symprec)
            x0, cell = a.positions, np.asarray(a.cell[:])
            per_pass = np.zeros((len(args.seeds), args.passes))
            for i, seed in enumerate(args.seeds):
                x = x0 + np.random.default_rng(seed).normal(scale=args.sigma, size=x0.shape)
                for k in range(args.passes):
                    x = den(x, cell, max_steps=1).positions
                    per_pass[i, k] = rmsd(x, x0, cell)
            fixed = rmsd(den(x0, cell, max_steps=args.fixed).positions, x0, cell)
            cols = " ".join(f"{per_pass[:, k].mean():.4f}/{per_pass[:, k].max():.4f}".rjust(15)
                            for k in range(args.passes))
            print(f"{phase:>6} {cols} {fixed:12.4f}")
            worst = max(worst, per_pass[:, own - 1].max()) if own <= args.passes else worst
        print(f"(mean/max over seeds) worst phase after {own} passes: {worst:.4f} Å "
              f"({'meets' if worst < 0.05 else 'misses'} < 0.05 Å)")


if __name__ == "__main__":
    main()
