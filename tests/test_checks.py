"""A regional check is one class and a registration: a toy check added that way runs in
the one labelling path, is stored in the model file by name and loads back; the shipped
checks load by name, never by position."""

from dataclasses import dataclass

import numpy as np
import pytest

from icemon.classification.checks import (
    FrameLabels,
    RegionalCheck,
    register,
    registered,
    unregister,
)


@dataclass
class LonelyIce(RegionalCheck):
    """Toy check: an atom labelled ice with fewer than ``least`` ice atoms within
    ``radius`` Å becomes liquid."""

    radius: float = 3.5
    least: int = 1

    name = "lonely"
    order = 60  # after the shipped checks
    arrays = ("lonely_radius", "lonely_least")

    def apply(self, frame: FrameLabels) -> None:
        if frame.positions is None:
            return
        ice = frame.labels < frame.reference.liquid
        i, j, _ = frame.neighbours.pairs(self.radius)
        count = np.bincount(i[ice[j]], minlength=len(ice))
        frame.labels[ice & (count < self.least)] = frame.reference.liquid

    def to_arrays(self):
        return {"lonely_radius": np.array(self.radius), "lonely_least": np.array(self.least)}

    @classmethod
    def from_arrays(cls, arrays, reference):
        if "lonely_radius" not in arrays:
            return None
        return cls(float(arrays["lonely_radius"]), int(arrays["lonely_least"])).bind(reference)


@pytest.fixture
def toy():
    register(LonelyIce)
    yield LonelyIce
    unregister("lonely")


def test_a_registered_toy_check_runs_is_saved_and_loads_back(toy, tmp_path, pipeline):
    from icemon import Frame, IcemonModel, Pipeline
    from icemon.lattices.references import reference

    assert [c.name for c in registered()][-1] == "lonely"
    model = IcemonModel.load()
    a = reference("Ih", 16.0)
    rng = np.random.default_rng(3)
    pos = a.positions + rng.normal(0, 0.1, a.positions.shape)
    cell = np.asarray(a.cell[:])
    before = pipeline.process(Frame(pos, cell)).labels
    assert (before == model.phases.index("Ih")).all()

    model.classifier.add(LonelyIce(radius=3.0, least=1))
    path = model.save(tmp_path / "toy.npz")
    loaded = IcemonModel.load(path)
    assert [c.name for c in loaded.classifier.checks] == ["repeat", "family", "topology",
                                                           "orbits", "growth", "lonely"]
    assert loaded.classifier.check("lonely") == LonelyIce(3.0, 1)
    res = Pipeline(loaded).process(Frame(pos, cell))
    np.testing.assert_array_equal(res.labels, before)  # ice with ice around stays ice
    # the toy check sees what any check sees: a lone atom with no ice within 3 Å is liquid
    frame = FrameLabels(np.array([0, 0, 0], np.int8), np.zeros(3, np.int64), np.zeros(3),
                        loaded.classifier.reference, None,  # type: ignore[arg-type]
                        positions=np.array([[0, 0, 0], [2.8, 0, 0], [9, 9, 9]], float),
                        cell=np.eye(3) * 20.0)
    from icemon.geometry.neighbors import Neighbours

    frame.neighbours = Neighbours(frame.positions, frame.cell)
    loaded.classifier.check("lonely").apply(frame)
    assert frame.labels.tolist() == [0, 0, loaded.classifier.liquid]


def test_a_model_file_with_arrays_of_an_unregistered_check_is_refused(tmp_path):
    from icemon import IcemonModel
    from icemon.errors import ModelFileError

    register(LonelyIce)
    try:
        model = IcemonModel.load()
        model.classifier.add(LonelyIce())
        path = model.save(tmp_path / "toy.npz")
    finally:
        unregister("lonely")
    with pytest.raises(ModelFileError, match="lonely_least.*no registered check"):
        IcemonModel.load(path)


def test_checks_load_by_name_whatever_the_order_of_the_arrays():
    """Model-file arrays are read by name: shuffling them changes nothing."""
    from icemon import IcemonModel
    from icemon.classification.classifier import PhaseClassifier

    arrays = IcemonModel.load().classifier.to_arrays()
    keys = list(arrays)
    rng = np.random.default_rng(0)
    shuffled = {k: arrays[k] for k in rng.permutation(keys)}
    a, b = PhaseClassifier.from_arrays(arrays), PhaseClassifier.from_arrays(shuffled)
    for name in ("repeat", "family", "topology", "orbits"):
        for key, value in a.check(name).to_arrays().items():
            np.testing.assert_array_equal(value, b.check(name).to_arrays()[key])


def test_a_check_cannot_claim_another_checks_arrays():
    @dataclass
    class Thief(LonelyIce):
        name = "thief"
        arrays = ("repeat_threshold",)

    with pytest.raises(ValueError, match="belong to another check"):
        register(Thief)
