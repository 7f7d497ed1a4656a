"""The phase vocabulary belongs to the model file: a model that knows sII, sH and ice V
(the shipped network with its classifier refitted on ten references) labels with its own
names everywhere — results, log, report, export, plots."""

import io

import numpy as np
import pytest

from icemon import Frame, IcemonModel, Pipeline
from icemon.analysis import Log
from icemon.analysis.plots import plot_fractions
from icemon.analysis.report import export, report
from icemon.io.log import LogError, LogWriter
from icemon.lattices.references import reference
from icemon.phases import LEGACY_PHASES, SEVEN_ICES
from icemon.training.calibrate import fit_classifier

TEN = (*SEVEN_ICES, "sII", "sH", "V")


@pytest.fixture(scope="module")
def ten_phase_model(tmp_path_factory):
    model = IcemonModel.load(None)
    pipe = Pipeline(model)
    clf = fit_classifier(pipe.soap, model.classifier.reference.components.shape[0],
                         shell=model.classifier.shell, phases=TEN)
    clf.reference.threshold = 3.375  # benchmarks/new_phases.py: the shipped rule on ten references
    ten = IcemonModel(model.net, clf, model.soap, model.denoise_steps, model.denoise_tol,
                      {**model.meta, "name": "ten-phases", "phases": [*TEN, "liquid"]})
    return IcemonModel.load(ten.save(tmp_path_factory.mktemp("m") / "ten.npz"))


def _noisy(phase, seed=0):
    atoms = reference(phase, 15.0)
    pos = atoms.positions + np.random.default_rng(seed).normal(0, 0.1, atoms.positions.shape)
    return Frame(pos, np.asarray(atoms.cell[:]), step=seed)


def test_shipped_model_names_ten_ices_then_liquid_and_unknown():
    """The seven ices keep codes 0-6 of every earlier log; sII, sH and V follow, then
    ``liquid`` and ``unknown`` (logs record the names, so older logs read as they were)."""
    assert IcemonModel.load(None).phases == (*SEVEN_ICES, "sII", "sH", "V", "liquid",
                                             "unknown")


def test_a_model_file_brings_its_own_names(ten_phase_model, tmp_path):
    assert ten_phase_model.phases == (*TEN, "liquid")
    pipe = Pipeline(ten_phase_model)
    res = pipe.process(_noisy("sII"))
    assert res.phases == ten_phase_model.phases and len(res.fractions) == 11
    assert res.fractions[TEN.index("sII")] >= 0.99
    assert "sII" in res.table()

    log = tmp_path / "ten.h5"
    with LogWriter(log, res.frame.atom_ids, **pipe.log_settings()) as w:
        w.append(res)
        w.append(pipe.process(Frame(res.frame.positions, res.frame.cell, step=1)))
    with Log(log) as lg:
        assert lg.phases == ten_phase_model.phases and lg.fractions.shape == (2, 11)
        assert lg.liquid == 10
        labels = [line.get_label() for line in plot_fractions(lg).axes[0].lines]
        assert labels == ["sII"]
    out = io.StringIO()
    report(log, None, out=out)
    assert "sII" in out.getvalue()
    export(log, tmp_path / "ten.extxyz")
    head = (tmp_path / "ten.extxyz").read_text().splitlines()[1]
    assert "sII sH V liquid" in head
    # a log of eight phases cannot be continued by the ten-phase model, nor the reverse
    shipped = Pipeline()
    with pytest.raises(LogError, match="phases"):
        LogWriter(log, res.frame.atom_ids, **{**shipped.log_settings(),
                                              "model_sha256": ten_phase_model.sha256,
                                              "threshold": ten_phase_model.threshold})


def test_a_vocabulary_that_does_not_match_the_classifier_is_refused(ten_phase_model, tmp_path):
    from icemon.errors import ModelFileError

    bad = IcemonModel(ten_phase_model.net, ten_phase_model.classifier, ten_phase_model.soap,
                      2, 0.0, {**ten_phase_model.meta, "phases": list(LEGACY_PHASES)})
    path = tmp_path / "bad.npz"
    np_path = bad.save(path)
    with pytest.raises(ModelFileError, match="vocabulary"):
        IcemonModel.load(np_path)
