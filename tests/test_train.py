"""Algorithm 1 plumbing: config overrides, checkpoints, exact resume, model building."""

import json

import numpy as np
import pytest
import torch

from icemon import IcemonModel
from icemon.cli import main
from icemon.geometry.frame import minimum_image
from icemon.lattices.references import reference
from icemon.training.train import TrainConfig, Trainer, apply_override

TINY = {"steps": 8, "batch_size": 2, "checkpoint_every": 4, "min_height": 8.0,
        "model": {"hidden": "4x0e+2x1o", "n_layers": 1, "radial_hidden": 8}}


def test_apply_override():
    cfg = {"model": {"n_layers": 2}}
    apply_override(cfg, "model.n_layers=3")
    apply_override(cfg, "lr=0.5")
    apply_override(cfg, "model.hidden=8x0e+2x1o")
    assert cfg == {"model": {"n_layers": 3, "hidden": "8x0e+2x1o"}, "lr": 0.5}
    with pytest.raises(ValueError, match="key=value"):
        apply_override(cfg, "lr")
    with pytest.raises(ValueError, match="unknown training config keys"):
        TrainConfig.from_dict({"stepz": 3})


def _validation_mse(trainer: Trainer) -> float:
    """MSE of ε on fixed noised references (σ = 0.1 Å), independent of the training RNG."""
    from icemon.model.graph import build_graph
    from icemon.training.train import noisy_sample

    rng = np.random.default_rng(123)
    samples = [noisy_sample(rng, base, 0.1, 0.0) for base in trainer.bases]
    g = build_graph([(p, c) for p, c, _ in samples], trainer.config.model.cutoff)
    target = torch.as_tensor(np.concatenate([n for _, _, n in samples]), dtype=torch.float32)
    with torch.no_grad():
        return float(((trainer.model(g.pos, g.src, g.dst, g.shifts) - target) ** 2).mean())


def test_training_reduces_the_denoising_error(tmp_path):
    cfg = TrainConfig.from_dict({**TINY, "steps": 100, "batch_size": 4, "lr": 1e-2, "seed": 1,
                                 "model": {"hidden": "8x0e+4x1o", "n_layers": 2}})
    t = Trainer(cfg, tmp_path)
    before = _validation_mse(t)
    t.run(progress=False)
    after = _validation_mse(t)
    assert after < 0.8 * before, (before, after)


def test_resume_is_exact(tmp_path):
    straight = Trainer(TrainConfig.from_dict(TINY), tmp_path / "a")
    straight.run(progress=False)
    first = Trainer(TrainConfig.from_dict(TINY), tmp_path / "b")
    first.run(progress=False, stop_at=4)  # as if killed after the checkpoint at 4
    resumed = Trainer.resume(tmp_path / "b")
    assert resumed.step == 4
    resumed.run(progress=False)
    for (k, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert [s for s, _ in resumed.history] == list(range(1, 9))


def test_train_cli_writes_loadable_model(tmp_path, capsys):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "tiny.npz"
    with pytest.warns(UserWarning, match="does not separate ice from disorder"):
        rc = main(["train", "--config", str(cfg), "--set", "steps=6", "--workdir",
                   str(tmp_path / "w"), "-o", str(out), "--name", "tiny", "-q",
                   "--threads", str(torch.get_num_threads())])  # machine settings: not config
    assert rc == 0
    m = IcemonModel.load(out)
    assert m.name == "tiny" and m.meta["train"]["updates"] == 6
    assert m.meta["train"]["command"].startswith("icemon train")
    assert m.net.config.n_layers == 1
    assert m.meta["calibration"]["separated"] is False  # 6 updates of a tiny net
    # a second run into the same workdir must not silently restart it
    with pytest.raises(SystemExit, match="--resume"):
        main(["train", "--config", str(cfg), "--workdir", str(tmp_path / "w"), "-o", str(out)])
    # resuming with the same config file builds again; a changed one is refused, not ignored
    again = tmp_path / "again.npz"
    with pytest.warns(UserWarning, match="does not separate"):
        assert main(["train", "--config", str(cfg), "--set", "steps=6", "--workdir",
                     str(tmp_path / "w"), "--resume", "-o", str(again), "-q"]) == 0
    assert IcemonModel.load(again).meta["train"]["updates"] == 6
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps({**TINY, "soap": {**TINY.get("soap", {}), "sigma": 0.3}}))
    with pytest.raises(SystemExit, match=r"soap\.sigma: checkpoint 0\.5, .*changed\.json 0\.3"):
        main(["train", "--config", str(changed), "--set", "steps=6", "--workdir",
              str(tmp_path / "w"), "--resume", "-o", str(again), "-q"])


def test_fine_tuning_starts_from_the_model_files_weights(tmp_path, model):
    cfg = TrainConfig.from_dict({"steps": 0, "model": model.net.config.to_dict(),
                                 "init": str(model.path)})
    t = Trainer(cfg, tmp_path / "ft")
    for (k, a), b in zip(model.net.state_dict().items(), t.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)
    assert t.init_sha256 == model.sha256
    with pytest.raises(ValueError, match="network config differs"):
        Trainer(TrainConfig.from_dict({**TINY, "init": str(model.path)}), tmp_path / "x")


def test_phase_weights_choose_what_is_drawn(tmp_path):
    from icemon.phases import SEVEN_ICES

    only_si = [1.0 if p == "sI" else 0.0 for p in SEVEN_ICES]  # 46 sites: no other phase has as many
    t = Trainer(TrainConfig.from_dict({**TINY, "phase_weights": only_si}), tmp_path / "w")
    n_si = len(t.bases[SEVEN_ICES.index("sI")][0])
    for _ in range(3):
        g, _, _ = t.batch()
        assert g.pos.shape[0] == TINY["batch_size"] * n_si
    for bad in ([1.0, 2.0], [-1.0] + [1.0] * (len(SEVEN_ICES) - 1)):
        with pytest.raises(ValueError, match="phase_weights"):
            Trainer(TrainConfig.from_dict({**TINY, "phase_weights": bad}), tmp_path / "b")


def test_unrolled_loss_is_the_mean_distance_to_the_clean_lattice_after_each_pass(tmp_path):
    """K = 2: the skin neighbour list built once per batch gives the same loss as fresh
    lists per pass, and the loss is the mean over passes of |r_k − clean|² (weighted)."""
    from icemon.model.graph import build_graph

    t = Trainer(TrainConfig.from_dict({**TINY, "train_passes": 2, "seed": 4}), tmp_path)
    g, noise, weight = t.batch()
    loss = float(t.loss(g, noise, weight))
    clean = g.pos - noise
    pos, parts = g.pos, []
    for _ in range(2):
        fresh = build_graph([(pos[g.batch == k].detach().numpy().astype(float), cell)
                             for k, cell in enumerate(g.cells)], t.config.model.cutoff)
        eps = t.model(pos, fresh.src, fresh.dst, fresh.shifts)
        pos = pos - eps
        parts.append(float(torch.mean(weight[:, None] * (pos - clean) ** 2)))
    assert loss == pytest.approx(np.mean(parts), rel=1e-5)
    one = Trainer(TrainConfig.from_dict({**TINY, "seed": 4}), tmp_path / "k1")
    g1, n1, w1 = one.batch()
    pred = one.model(g1.pos, g1.src, g1.dst, g1.shifts)
    assert float(one.loss(g1, n1, w1)) == pytest.approx(float(torch.mean(w1[:, None] * (pred - n1) ** 2)))


def test_few_pass_training_lowers_the_error_after_k_passes(tmp_path):
    def after_two_passes(trainer):
        from icemon.model.denoise import Denoiser
        from icemon.training.train import noisy_sample

        rng = np.random.default_rng(5)
        d = Denoiser(trainer.model, 2, 0.0)
        err = []
        for base in trainer.bases:
            p, c, noise = noisy_sample(rng, base, 0.1, 0.0)
            out = d(p, c).positions - (p - noise)
            err.append((minimum_image(out, c) ** 2).sum(1).mean())
        trainer.model.train()
        return float(np.mean(err))

    cfg = TrainConfig.from_dict({**TINY, "steps": 100, "batch_size": 4, "lr": 1e-2, "seed": 1,
                                 "train_passes": 2,
                                 "model": {"hidden": "8x0e+4x1o", "n_layers": 2}})
    t = Trainer(cfg, tmp_path)
    before = after_two_passes(t)
    t.run(progress=False)
    assert after_two_passes(t) < 0.8 * before


@pytest.mark.parametrize("phase, n_unit, density", [("sII", 136, 0.81), ("sH", 68, 0.756),
                                                    ("V", 28, 1.24)])
def test_references_of_phases_beyond_the_seven(phase, n_unit, density):
    """sII, sH and ice V (and any GenIce2 lattice name) build as the seven do, with
    GenIce's own density; an unknown name is a PhaseError naming the choices."""
    from icemon.lattices.references import reference_density, unit_cell

    assert len(unit_cell(phase)) == n_unit
    assert reference_density(phase) == pytest.approx(density, abs=0.005)
    big = reference(phase, 15.0)
    cell = np.asarray(big.cell[:])
    heights = abs(np.linalg.det(cell)) / np.linalg.norm(
        [np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3]) for k in range(3)], axis=1)
    assert heights.min() >= 15.0 - 1e-9 and len(big) % n_unit == 0


def _first_shell_distances(atoms) -> int:
    """Number of distinct O–O distances (to 1 mÅ) below 3 Å: the site environments."""
    from ase.neighborlist import neighbor_list

    return len(np.unique(np.round(neighbor_list("d", atoms, 3.0), 3)))


@pytest.mark.parametrize("phase, group, shells, moved", [
    ("Ih", "P6_3/mmc", 2, True), ("III", "P4_12_12", 3, True), ("VI", "P4_2/nmc", 3, True),
    ("Ic", "Fd-3m", 1, False), ("II", "R-3", 4, False)])
def test_symmetrised_references_are_the_symmetric_lattices(phase, group, shells, moved):
    """GenIce2's Ih has 7 distinct first-shell O–O distances and III 19, where their
    space groups allow 2 and 3: the symmetrised unit cells have exactly those, sites move
    by less than the tolerance, and lattices GenIce already builds symmetric stay put."""
    from icemon.lattices.references import symmetrise, unit_cell

    raw = unit_cell(phase)
    sym = unit_cell(phase, symprec=0.2)
    record = symmetrise(raw.copy(), 0.2)
    assert record.space_group == group
    assert _first_shell_distances(sym) == shells
    assert (_first_shell_distances(raw) > shells) == moved
    assert record.max_shift < 0.2 and (record.max_shift > 1e-3) == moved
    assert len(sym) == len(raw)
    np.testing.assert_allclose(sym.cell[:], raw.cell[:], atol=0.01)
    assert len(reference(phase, 12.0, symprec=0.2)) == len(reference(phase, 12.0))


def test_unknown_phase_is_a_clear_error():
    from icemon.errors import PhaseError

    with pytest.raises(PhaseError, match="neither a named phase"):
        reference("ice-XLII")


def test_a_phase_can_be_given_its_density():
    """``NAME:DENSITY`` builds GenIce's lattice at that density (g/cm³: 18.015 g/mol per
    oxygen over the cell's volume); a lattice without a density of its own (the zeolite
    IWV) asks for one, and a malformed density is named, all before anything runs."""
    from icemon.errors import PhaseError
    from icemon.lattices.references import reference_density, unit_cell

    xii = unit_cell("12:1.29")
    grams = len(xii) * 18.015 / 6.02214076e23
    assert grams / (xii.get_volume() * 1e-24) == pytest.approx(1.29, rel=1e-3)
    assert reference_density("12:1.29") == 1.29 and reference_density("12") > 1.4
    assert len(unit_cell("IWV:1.0")) == 38
    with pytest.raises(PhaseError, match="no density of its own: give one as IWV:DENSITY"):
        unit_cell("IWV")
    for bad in ("12:", "12:heavy", "12:-1", ":1.2"):
        with pytest.raises(PhaseError, match="NAME:DENSITY"):
            unit_cell(bad)


def test_train_refuses_a_lattice_without_density_before_it_starts(tmp_path, capsys):
    from icemon.cli import main

    from .conftest import ROOT

    rc = main(["train", "--config", str(ROOT / "configs" / "default.json"), "--phases", "Ih,IWV",
               "--workdir", str(tmp_path / "w"), "-o", str(tmp_path / "m.npz")])
    assert rc != 0
    assert "IWV:DENSITY" in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "m.npz").exists()


@pytest.mark.slow
def test_train_phases_puts_the_vocabulary_in_the_model_file(tmp_path, capsys):
    """``icemon train --phases Ih,sII,V``: references, classifier codes and the model's
    names follow the list; liquid comes after them."""
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    out = tmp_path / "three.npz"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 updates of a tiny net separate nothing
        main(["train", "--config", str(cfg), "--set", "steps=2", "--phases", "Ih,sII,V",
              "--workdir", str(tmp_path / "w"), "-o", str(out), "-q"])
    m = IcemonModel.load(out)
    assert m.phases == ("Ih", "sII", "V", "liquid", "unknown")
    assert m.classifier.liquid == 3 and set(m.classifier.reference.ref_labels.tolist()) == {0, 1, 2}
    # the unknown label's repeat threshold is derived from synthetic ice, as the liquid one
    assert m.classifier.unknown == 4
    repeat = m.classifier.check("repeat")
    assert 0 < repeat.threshold == m.meta["calibration"]["repeat_threshold"] < np.inf
    without = tmp_path / "no-unknown.npz"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["train", "--config", str(cfg), "--set", "steps=2", "--set", "unknown_label=false",
              "--set", "reference_scales=[1.0]",
              "--phases", "Ih,sII", "--workdir", str(tmp_path / "w2"), "-o", str(without), "-q"])
    plain = IcemonModel.load(without)
    assert plain.phases == ("Ih", "sII", "liquid") and plain.classifier.unknown == -1
    assert plain.classifier.check("repeat") is None
    # the references' densities are a setting: one scale keeps a third of the three's rows
    assert plain.meta["train"]["config"]["reference_scales"] == [1.0]
    assert 3 * (plain.classifier.reference.ref_labels == 0).sum() == \
        (m.classifier.reference.ref_labels == 0).sum()
    assert m.meta["train"]["config"]["phases"] == ["Ih", "sII", "V"]
    rc = main(["train", "--config", str(cfg), "--phases", "Ih,notalattice",
               "--workdir", str(tmp_path / "x"), "-o", str(tmp_path / "x.npz"), "-q"])
    assert rc != 0 and "neither a named phase" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before any training


def test_phases_drops_the_configs_weights_and_metric_for_another_list(capsys):
    """``--phases`` on a config written for another phase list (``configs/v0.5.json``: seven
    weights) draws the new list uniformly and keeps only the metric phases still listed,
    saying so, instead of refusing the run (it used to stop: "phase_weights needs 3
    non-negative numbers")."""
    import argparse
    from pathlib import Path

    from icemon.cli import _train_config

    args = argparse.Namespace(config=str(Path(__file__).resolve().parents[1] / "configs" /
                                         "v0.5.json"), set=['metric_phases=["Ih","sI","V"]'],
                              steps=0, phases="Ih,Ic,XII")
    cfg = _train_config(args)
    assert cfg["phases"] == ["Ih", "Ic", "XII"] and cfg["phase_weights"] is None
    assert cfg["metric_phases"] == ["Ih"]
    assert "phase_weights (7 numbers) are for another phase list" in capsys.readouterr().err
