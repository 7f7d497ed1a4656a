"""The growth check: ice labelled to its last ordered layer at an interface, and never
grown into liquid that touches no ice."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))


def _without_growth(model):
    from icemon import IcemonModel
    from icemon.classification.classifier import PhaseClassifier

    arrays = {k: v for k, v in model.classifier.to_arrays().items()
              if not k.startswith("growth")}
    return IcemonModel(model.net, PhaseClassifier.from_arrays(arrays), model.soap,
                       model.denoise_steps, model.denoise_tol, model.meta)


@pytest.fixture(scope="module")
def plain_pipeline(model):
    from icemon import Pipeline

    return Pipeline(_without_growth(model))


@pytest.fixture(scope="module")
def slab_frame(gcicenet):
    from golden_frames import slab

    return slab(gcicenet)


def test_the_shipped_model_grows_ice(model):
    check = model.classifier.check("growth")
    assert check is not None and check.contact == 3.5 and check.rounds >= 4
    assert check.core == 2
    assert [c.name for c in model.classifier.checks][-1] == "growth"  # after the others
    assert _without_growth(model).classifier.check("growth") is None


def test_ice_reaches_the_interface_of_a_real_slab(pipeline, plain_pipeline, slab_frame):
    """Real TIP4P/Ice Ih below real liquid: the ice 2–4 Å below the interface planes is
    labelled ice (0.05 without growth, 0.88 with), the liquid half gains no ice."""
    frac = (slab_frame.positions @ np.linalg.inv(slab_frame.cell))[:, 2] % 1.0
    height = np.linalg.norm(slab_frame.cell[2])
    depth = np.minimum(frac, np.minimum(np.abs(frac - 0.5), 1.0 - frac)) * height
    in_ice = frac < 0.5
    layer = in_ice & (depth >= 2.0) & (depth < 4.0)
    before = plain_pipeline.process(slab_frame)
    after = pipeline.process(slab_frame)
    assert before.ice[layer].mean() < 0.2
    assert after.ice[layer].mean() > 0.8
    assert after.ice[~in_ice].sum() == 0
    # growth only adds ice, named as the ice it touches, with a score below the threshold
    assert (after.ice >= before.ice).all()
    grown = after.ice & ~before.ice
    assert set(np.unique(after.labels[grown])) == {after.phases.index("Ih")}
    assert (after.scores[after.ice] <= pipeline.threshold).all()
    assert (after.nearest[grown] == after.labels[grown]).all()


def test_liquid_without_ice_is_left_alone(pipeline, plain_pipeline, gcicenet):
    from .conftest import gcicenet_frame

    frame = gcicenet_frame(gcicenet, "w")
    a, b = pipeline.process(frame), plain_pipeline.process(frame)
    assert (a.labels == b.labels).all() and a.ice.sum() == 0


def test_own_weight_sets_how_far_ice_grows(model, plain_pipeline, slab_frame, tmp_path):
    """The own weight is the check's one trade-off: 1 re-scores a candidate on its own
    environment (the least growth), smaller weights lean on the ice it touches (more); a
    model file keeps it, and files without it read the former fixed half-half."""
    from icemon import IcemonModel, Pipeline
    from icemon.classification.checks import GrowthCheck
    from icemon.errors import ConfigError

    assert model.classifier.check("growth").own_weight == 0.5
    grown = []
    for w in (1.0, 0.5, 0.2):
        m = IcemonModel.load()
        m.classifier.add(GrowthCheck(3.5, 8, w))
        path = tmp_path / f"w{w}.npz"
        m.save(path)
        back = IcemonModel.load(path)
        assert back.classifier.check("growth").own_weight == w
        grown.append(int(Pipeline(back).process(slab_frame).ice.sum()))
    base = int(plain_pipeline.process(slab_frame).ice.sum())
    assert base < grown[0] < grown[1] < grown[2]
    for bad in (-0.1, 1.5):
        with pytest.raises(ConfigError, match="own weight"):
            GrowthCheck(3.5, 8, bad)



def test_ordered_cores_find_a_nucleus_the_shell_average_misses(model, tmp_path):
    """A small mW nucleus (``tests/data/mw-nucleus.npz``, float32 Å: LAMMPS with
    :mod:`icemon.demo.mw`, ``mw.ice("Ic", 50.0)``, the 71 molecules within 8 Å of the box
    centre held while the rest melts (``seed_commands``, velocity seed 777, 20 ps at 600 K,
    15 ps at 230 K), then everything free at 230 K for 3.5 ps (NVT, velocity seed 1); CHILL+
    calls 24 of the seed's molecules hexagonal or cubic): every shell average reaches the
    liquid, so no atom is ice and growth alone has nothing to grow from. The ordered cores
    find it, as one cluster in the seed, and nothing in the ~4,000 liquid molecules around;
    a model file keeps ``core``, files without it have none."""
    from golden_frames import nucleus

    from icemon import IcemonModel, Pipeline
    from icemon.classification.checks import GrowthCheck
    from icemon.errors import ConfigError

    frame, seed = nucleus()
    found = []
    for core in (0, 2):
        m = IcemonModel.load()
        m.classifier.add(GrowthCheck(3.5, 8, 0.5, core))
        path = tmp_path / f"core{core}.npz"
        m.save(path)
        back = IcemonModel.load(path)
        assert back.classifier.check("growth").core == core
        found.append(Pipeline(back).process(frame))
    assert found[0].ice.sum() == 0
    res = found[1]
    assert res.ice[seed].sum() >= 10 and res.ice[~seed].sum() == 0
    assert res.clusters().largest == res.ice.sum()
    assert (res.scores[res.ice] <= model.threshold).all()
    with pytest.raises(ConfigError, match="core"):
        GrowthCheck(3.5, 8, 0.5, -1)
