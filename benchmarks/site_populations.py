"""Do the Wyckoff-site populations of the matched references tell an impostor lattice from
the phase it is read as? A measurement toward issue 14's `unknown` (not a product rule yet).

Each reference atom of a model's phases gets a site: its distinct (per-atom, not
shell-averaged) environment in the ideal lattice, i.e. its Wyckoff orbit as SOAP sees it;
a phase's site fractions are the orbits' multiplicities over Z. A frame is classified by
the model; every atom labelled with an ice is then matched, by its own (not averaged)
descriptor, to the nearest reference atom *of that ice*, and the frame's site histogram
per ice is compared with the ice's fractions (total-variation distance, TV, 0…1). A real
crystal of the phase fills its orbits in proportion; a lattice the model does not know
but reads as some ice (XII as V, the clathrates TS1/HS1 as sI/sII) need not.

    python benchmarks/site_populations.py MODEL LATTICE [LATTICE ...]

LATTICE: a phase or GenIce2 lattice name, noised with σ = 0.12 Å (seed 7), or
``gci:TAG`` for the first two frames of a GCIceNet trajectory (evaluation only).
"""

from __future__ import annotations

import argparse

import numpy as np

from icemon import Frame, Pipeline
from icemon.training.references import reference

GCICENET = "../shared/data/gcicenet"


def site_references(pipe: Pipeline) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(PCA coordinates, phase code, site of every reference atom at scales 1, 0.97,
    1.03; each phase's site fractions)."""
    clf = pipe.classifier
    phases = [p for p in pipe.model.phases if p not in ("liquid", "unknown")]
    r_cut = pipe.model.soap.r_cut
    symprec = pipe.model.meta.get("train", {}).get("config", {}).get("reference_symprec", 0.0)
    ys, codes, sites, fractions = [], [], [], {}
    for code, phase in enumerate(phases):
        atoms = reference(phase, min_height=2 * r_cut, symprec=symprec)
        site = None
        for scale in (1.0, 0.97, 1.03):
            pos, cell = atoms.positions * scale, np.asarray(atoms.cell[:]) * scale
            y, _ = clf.project(pipe.soap(pos, cell))
            if site is None:  # the distinct environments of the ideal lattice
                _, site = np.unique(np.round(y, 4), axis=0, return_inverse=True)
                site = site.ravel()
                fractions[phase] = np.bincount(site) / len(site)
            ys.append(y)
            codes.append(np.full(len(y), code))
            sites.append(site)
    return np.concatenate(ys), np.concatenate(codes), np.concatenate(sites), fractions


def populations(pipe: Pipeline, refs, frame: Frame) -> list[tuple[str, float, float, np.ndarray]]:
    """(ice, fraction of the frame labelled with it, TV, observed site fractions) for each
    ice holding ≥ 5 % of the frame."""
    ref_y, ref_code, ref_site, fractions = refs
    res = pipe.process(frame)
    y, _ = pipe.classifier.project(pipe.soap(res.denoised, frame.cell))
    d2 = (y * y).sum(1)[:, None] - 2 * y @ ref_y.T + (ref_y ** 2).sum(1)[None]
    d2[ref_code[None, :] != res.labels[:, None]] = np.inf  # the labelled ice's sites only
    site = ref_site[d2.argmin(1)]
    out = []
    for code, phase in enumerate(fractions):
        mine = res.labels == code
        if mine.mean() < 0.05:
            continue
        observed = np.bincount(site[mine], minlength=len(fractions[phase])) / mine.sum()
        out.append((phase, float(mine.mean()), 0.5 * float(np.abs(observed - fractions[phase]).sum()),
                    observed))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("lattices", nargs="+")
    a = p.parse_args()
    pipe = Pipeline(a.model)
    refs = site_references(pipe)
    print("sites (orbits) per phase: " + ", ".join(f"{k} {len(v)}" for k, v in refs[3].items()))
    rng = np.random.default_rng(7)
    frames: list[tuple[str, Frame]] = []
    for lat in a.lattices:
        if lat.startswith("gci:"):
            from icemon.io.readers import read_frames

            tag = lat[4:]
            frames += [(f"{lat}#{k}", f) for k, f in enumerate(read_frames(
                f"{GCICENET}/md_{tag}_dev.xtc", f"{GCICENET}/md_{tag}.tpr", stop=2))]
        else:
            atoms = reference(lat, 18.0)
            x = atoms.positions + rng.normal(0, 0.12, atoms.positions.shape)
            frames.append((lat, Frame(x, atoms.cell[:])))
    for name, frame in frames:
        parts = populations(pipe, refs, frame)
        text = " | ".join(f"{ph} {100 * f:.1f} % TV {tv:.3f} (sites {np.round(obs, 3)}, "
                          f"ideal {np.round(refs[3][ph], 3)})" for ph, f, tv, obs in parts)
        print(f"{name:10s} {frame.n_atoms:5d} O: {text or 'no ice ≥ 5 %'}")


if __name__ == "__main__":
    main()
