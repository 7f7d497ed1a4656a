"""icemon in the real OVITO (PyPI ``ovito``, headless): the IcePhasesModifier on an ice Ih
frame, its errors, and icemon's extxyz files opening in OVITO with the phase names."""

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("ovito")

from ovito.data import DataCollection, ParticleType
from ovito.io import import_file
from ovito.pipeline import Pipeline, StaticSource

from icemon.cli import main
from icemon.integrations.ovito import IcePhasesModifier, OvitoInputError
from icemon.io.extxyz import write_frame
from icemon.lattices.references import reference
from icemon.model.modelfile import IcemonModel
from icemon.phases import PHASE_COLORS

from .conftest import shipped_phases
from .test_analysis import synthetic_log

PHASES = shipped_phases()  # the shipped model's vocabulary (twelve names)

SHIPPED = IcemonModel.load(None).phases  # the shipped model's vocabulary (with unknown)

ORIGIN = np.array([-3.0, 1.5, 2.0])  # Å: OVITO cells need not start at 0
N_H = 2 * 288  # two hydrogens per oxygen of _noisy_ih


def _noisy_ih(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 288-oxygen ice Ih supercell (Å) with σ = 0.1 Å Gaussian noise per component."""
    a = reference("Ih", 18.0)
    rng = np.random.default_rng(seed)
    return a.positions + rng.normal(scale=0.1, size=a.positions.shape), np.asarray(a.cell[:])


def _collection(pbc=(True, True, True)) -> DataCollection:
    """Noisy ice Ih water: oxygens (type 1 "OW") followed by their hydrogens (type 2 "HW",
    two per oxygen at 0.96 Å)."""
    ox, cell = _noisy_ih()
    assert 2 * len(ox) == N_H
    pos = np.vstack([ox, ox + [0.9572, 0.0, 0.0], ox + [-0.24, 0.927, 0.0]]) + ORIGIN
    data = DataCollection()
    data.create_cell(cell.T, pbc=pbc)  # OVITO: columns = cell vectors
    data.cell_[:, 3] = ORIGIN
    particles = data.create_particles(count=len(pos))
    particles.create_property("Position", data=pos)
    types = particles.create_property("Particle Type",
                                      data=np.r_[np.ones(len(ox)), np.full(N_H, 2)].astype(int))
    types.types.append(ParticleType(id=1, name="OW"))
    types.types.append(ParticleType(id=2, name="HW"))
    return data


def _compute(modifier: IcePhasesModifier, data: DataCollection, close: bool = False):
    """The modifier's output on ``data``; ``close``: stop its SOAP helpers afterwards."""
    pipeline = Pipeline(source=StaticSource(data=data))
    pipeline.modifiers.append(modifier)
    try:
        return pipeline.compute()
    finally:
        if close:
            modifier.close()


def _names(data) -> np.ndarray:
    prop = data.particles["Structure Type"]
    by_id = {t.id: t.name for t in prop.types}
    return np.array([by_id[i] for i in np.asarray(prop)])


@pytest.fixture(scope="module")
def modifier():
    m = IcePhasesModifier(oxygens="OW")
    yield m
    m.close()


@pytest.fixture(scope="module")
def ice(modifier):
    return _compute(modifier, _collection())


def test_ice_ih_frame_comes_out_ih_by_name(ice):
    names = _names(ice)
    oxygens, others = names[:-N_H], names[-N_H:]
    assert np.mean(oxygens == "Ih") >= 0.995, np.unique(oxygens, return_counts=True)
    assert set(others) == {"Other"}
    assert ice.attributes["icemon.fraction.Ih"] >= 0.995
    assert sum(ice.attributes[f"icemon.fraction.{p}"] for p in SHIPPED) == pytest.approx(1.0)
    assert ice.attributes["icemon.count.Ih"] == np.sum(oxygens == "Ih")
    assert ice.attributes["icemon.model"] == "ice-denoiser"


def test_types_are_named_and_coloured_for_every_phase(ice):
    types = {t.id: t for t in ice.particles["Structure Type"].types}
    assert [types[code].name for code in range(len(SHIPPED))] == list(SHIPPED)
    for code, phase in enumerate(SHIPPED):
        np.testing.assert_allclose(types[code].color, PHASE_COLORS[phase], atol=1e-6)
    assert types[len(SHIPPED)].name == "Other"
    colors = np.asarray(ice.particles["Color"])
    np.testing.assert_allclose(colors[0], PHASE_COLORS["Ih"], atol=1e-6)


def test_scores_finite_for_oxygens_nan_elsewhere(ice):
    scores = np.asarray(ice.particles["icemon Score"])
    assert np.isfinite(scores[:-N_H]).all() and (scores[:-N_H] >= 0).all()
    assert np.isnan(scores[-N_H:]).all()
    assert np.median(scores[:-N_H]) < ice.attributes["icemon.threshold"]


def test_denoised_positions_by_type_id():
    data = _collection()
    before = np.array(data.particles.positions)
    out = _compute(IcePhasesModifier(oxygens=1, denoised=True), data, close=True)
    moved = np.linalg.norm(np.asarray(out.particles.positions) - before, axis=1)
    assert moved[:-N_H].max() < 0.5
    assert moved[:-N_H].mean() > 0.05  # they did move: the noise was removed
    assert (moved[-N_H:] == 0).all()
    assert np.mean(_names(out)[:-N_H] == "Ih") >= 0.995


def test_non_periodic_cell_is_refused(modifier):
    with pytest.raises(OvitoInputError, match=r"periodic in x, y and z.*pbc=\(True, True, False\)"):
        _compute(modifier, _collection(pbc=(True, True, False)))


def test_unknown_oxygen_type_is_refused():
    with pytest.raises(OvitoInputError, match=r"no particle type named 'O'.*'OW'.*'HW'"):
        _compute(IcePhasesModifier(), _collection())
    with pytest.raises(OvitoInputError, match=r"no particle has the oxygen type 7"):
        _compute(IcePhasesModifier(oxygens=7), _collection())


def test_import_loads_no_torch():
    code = ("import sys, icemon.integrations.ovito; "
            "print([m for m in ('torch', 'e3nn', 'dscribe', 'sklearn') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_exported_extxyz_opens_in_ovito_with_phase_names(tmp_path):
    log = synthetic_log(tmp_path / "s.h5", np.c_[[20.0, 25.0], [60.0, 55.0]], [0.0, 1.0])
    out = tmp_path / "s.extxyz"
    assert main(["export", str(log), "--extxyz", str(out)]) == 0
    pipeline = import_file(str(out))
    assert pipeline.num_frames == 2
    for k in range(2):
        data = pipeline.compute(k)
        codes = np.asarray(data.particles["phase"])
        assert set(codes) == {PHASES.index("Ih"), PHASES.index("liquid")}
        np.testing.assert_array_equal(_names(data), np.array(PHASES)[codes])
        colors = np.array([PHASE_COLORS[p] for p in PHASES])[codes]
        np.testing.assert_allclose(np.asarray(data.particles["Color"]), colors, atol=1e-6)


def test_modifier_on_an_imported_extxyz_replaces_its_types(tmp_path):
    """An icemon extxyz (here all labelled liquid) re-classified in OVITO: the file's own
    'Structure Type' (ids by first appearance) gives way to the modifier's."""
    ox, cell = _noisy_ih(seed=1)
    path = tmp_path / "ih.extxyz"
    with open(path, "w") as fh:
        write_frame(fh, ox, cell, np.full(len(ox), PHASES.index("liquid")),
                    np.zeros(len(ox)), np.arange(len(ox)), 0, 0.0, phases=PHASES)
    pipeline = import_file(str(path))
    assert set(_names(pipeline.compute())) == {"liquid"}
    pipeline.modifiers.append(m := IcePhasesModifier(oxygens="O"))
    data = pipeline.compute()
    m.close()
    assert np.mean(_names(data) == "Ih") >= 0.995
    assert [t.name for t in data.particles["Structure Type"].types] == [*SHIPPED, "Other"]


def test_threads_are_set_for_the_frame_only():
    """``threads`` changed torch's thread count for the whole OVITO process."""
    import torch

    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    out = _compute(IcePhasesModifier(oxygens=1, threads=wanted), _collection(), close=True)
    assert "icemon.threshold" in out.attributes
    assert torch.get_num_threads() == before


def test_oxygens_that_are_not_water_are_not_classified():
    """Oxygens without two hydrogens (a substrate's, hydroxide) were classified with the
    water and averaged into its shells; now they get the unclassified type, counted in a
    warning, unless water_only is off."""
    from icemon.geometry.frame import NotWaterWarning

    data = _collection()
    types = np.asarray(data.particles["Particle Type"]).copy()
    types[288 + np.arange(3)] = 3  # the first three waters lose a hydrogen: hydroxide
    data.particles_["Particle Type"][:] = types
    data.particles_["Particle Type"].types.append(ParticleType(id=3, name="X"))
    with pytest.warns(NotWaterWarning, match="3 of 288 selected oxygens"):
        names = _names(_compute(IcePhasesModifier(oxygens="OW"), data))
    assert (names[:3] == "Other").all()
    assert np.mean(names[3:288] == "Ih") >= 0.97  # (three vacancies: their neighbours)
    everything = _names(_compute(IcePhasesModifier(oxygens="OW", water_only=False), data,
                                 close=True))
    assert np.mean(everything[:288] == "Ih") >= 0.995
