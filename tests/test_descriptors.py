"""SOAP: the compiled kernels give dscribe's descriptors; dscribe split over helper
processes gives the single-process descriptors, and survives a helper that dies."""

from __future__ import annotations

import numpy as np
import pytest

from icemon.descriptors.soap import PARALLEL_MIN_ATOMS, Soap
from icemon.lattices.references import reference


@pytest.fixture(scope="module")
def structure():
    atoms = reference("VI", min_height=16.0)
    rng = np.random.default_rng(3)
    pos = atoms.positions + rng.normal(scale=0.1, size=atoms.positions.shape)
    assert len(pos) >= PARALLEL_MIN_ATOMS
    return pos, np.asarray(atoms.cell[:])


def test_helper_processes_give_the_serial_descriptors(model, structure):
    serial = Soap(model.soap, backend="dscribe", processes=1)(*structure)
    soap = Soap(model.soap, backend="dscribe", processes=2)
    try:
        parallel = soap(*structure)
        assert len(soap._helpers) == 1 and soap._helpers[0].proc.poll() is None
        np.testing.assert_allclose(parallel, serial, rtol=0, atol=1e-8 * np.abs(serial).max())
        again = soap(*structure)  # the helper is reused
        np.testing.assert_array_equal(again, parallel)
    finally:
        soap.close()
    assert not soap._helpers


def test_small_frames_stay_in_one_process(model):
    atoms = reference("Ih", min_height=5.0)
    assert len(atoms) < PARALLEL_MIN_ATOMS
    soap = Soap(model.soap, backend="dscribe", processes=2)
    soap(atoms.positions, np.asarray(atoms.cell[:]))
    assert not soap._helpers


def test_a_dead_helper_is_replaced_by_serial_work(model, structure):
    serial = Soap(model.soap, backend="dscribe", processes=1)(*structure)
    soap = Soap(model.soap, backend="dscribe", processes=2)
    soap(*structure)
    proc = soap._helpers[0].proc
    proc.kill()
    proc.wait()
    with pytest.warns(RuntimeWarning, match="SOAP helper process stopped"):
        out = soap(*structure)
    np.testing.assert_allclose(out, serial, rtol=0, atol=1e-8 * np.abs(serial).max())
    assert soap.processes == 1 and not soap._helpers


def test_helpers_stop_when_the_soap_object_is_collected(model, structure):
    import gc

    soap = Soap(model.soap, backend="dscribe", processes=2)
    soap(*structure)
    proc = soap._helpers[0].proc
    del soap
    gc.collect()
    assert proc.wait(timeout=10) == 0


def test_helpers_that_cannot_start_leave_serial_work(model, structure, monkeypatch):
    import sys

    serial = Soap(model.soap, backend="dscribe", processes=1)(*structure)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    soap = Soap(model.soap, backend="dscribe", processes=2)
    with pytest.warns(RuntimeWarning, match="cannot start a SOAP helper"):
        out = soap(*structure)
    np.testing.assert_array_equal(out, serial)
    assert soap.processes == 1


def test_an_error_leaves_the_helpers_in_step(model, structure):
    """A frame dscribe rejects raises, and the next frame still gets its own descriptors."""
    pos, cell = structure
    soap = Soap(model.soap, backend="dscribe", processes=2)
    try:
        with pytest.raises(ValueError, match="zero-volume cell"):
            soap(pos, np.zeros((3, 3)))  # no cell: dscribe cannot describe a periodic system
        np.testing.assert_allclose(soap(pos, cell), Soap(model.soap, backend="dscribe", processes=1)(pos, cell),
                                   rtol=0, atol=1e-6)
        assert soap.processes == 2
    finally:
        soap.close()


def test_shares_are_passed_as_centre_positions(model, monkeypatch):
    """Helpers share a frame through centres given by position (dscribe's index centres
    copy every position per centre: centres × atoms in time and memory), and the shared
    result equals one plain call to the bit."""
    from dscribe.descriptors import SOAP

    atoms = reference("VI", min_height=16.0)
    pos, cell = atoms.positions, np.asarray(atoms.cell[:])
    seen = []
    create = SOAP.create

    def spy(self, system, centers=None, **kw):
        seen.append(None if centers is None else np.asarray(centers))
        return create(self, system, centers=centers, **kw)

    monkeypatch.setattr(SOAP, "create", spy)
    soap = Soap(model.soap, backend="dscribe", processes=2)
    try:
        shared = soap(pos, cell)
    finally:
        soap.close()
    assert len(seen) == 1 and seen[0] is not None  # this process's share
    assert seen[0].dtype == np.float64 and seen[0].shape == (len(pos) - len(pos) // 2, 3)
    np.testing.assert_array_equal(shared, Soap(model.soap, backend="dscribe", processes=1)(pos, cell))


def test_centre_positions_skip_dscribes_per_centre_python_loop(model, monkeypatch):
    """An (M, 3) float array of centres goes to dscribe's C++ without the Python check of
    each centre (6 µs a centre, ~12 % of the cost), with the very same descriptors as
    dscribe's own path; lists and indices still get dscribe's checks."""
    from ase import Atoms
    from dscribe.descriptors import SOAP

    atoms = reference("Ih", min_height=12.0)
    pos, cell = atoms.positions, np.asarray(atoms.cell[:])
    centres = pos + 0.05  # one per atom (128 or more)
    c = model.soap
    plain = SOAP(species=["O"], r_cut=c.r_cut, n_max=c.n_max, l_max=c.l_max, sigma=c.sigma,
                 periodic=True, sparse=False, dtype="float64")
    expected = plain.create(atoms, centers=centres)
    checks = []
    issubdtype = np.issubdtype
    monkeypatch.setattr(np, "issubdtype", lambda *a: checks.append(a) or issubdtype(*a))
    soap = Soap(c, backend="dscribe", processes=1)._soap
    system = Atoms(numbers=[8] * len(pos), positions=pos, cell=cell, pbc=True)
    got = soap.create(system, centers=centres)
    assert len(centres) >= 128 and len(checks) < 20  # no Python check per centre
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(soap.create(system, centers=[0, 5]),
                                  plain.create(system, centers=[0, 5]))
    with pytest.raises(ValueError, match="non-empty"):
        soap.create(system, centers=np.zeros((0, 3)))


def test_a_share_described_within_the_reach_has_the_whole_frames_descriptors(model,
                                                                             gcicenet):
    """An MPI rank (or a team helper) describes its own atoms from its share plus a halo.
    dscribe counts neighbours up to r_cut plus its Gaussians' padding (1.86 Å for
    σ = 0.5 Å), so the halo must be :attr:`SoapConfig.reach` wide: then the share's rows
    are the whole frame's; a halo of r_cut alone moves atoms near the share's edge by
    2-3 % of a feature's spread over the frame (GCIceNet liquid), what the
    classifier's standardised distances see."""
    from icemon.execution.mpi import MARGIN, Decomposition

    from .conftest import gcicenet_frame

    frame = gcicenet_frame(gcicenet, "w")
    pos, cell = np.asarray(frame.positions), np.asarray(frame.cell)
    soap = Soap(model.soap, processes=1)
    assert soap.config.reach == pytest.approx(soap.config.r_cut + 1.858, abs=1e-3)
    whole = soap.plain(pos, cell)
    dec = Decomposition.build(pos, cell, 2, soap.config.reach)
    for rank in range(2):
        own = dec.own(rank)

        def share(width):
            sub = dec.halo(rank, pos, cell, width + MARGIN)
            return soap.plain(pos[sub], cell, rows=np.searchsorted(sub, own))

        spread = whole.std(axis=0)
        assert (np.abs(share(soap.config.reach) - whole[own]) / spread).max() < 1e-9
        assert (np.abs(share(soap.config.r_cut) - whole[own]) / spread).max() > 0.01


def test_compiled_kernels_give_dscribes_descriptors(model, gcicenet):
    """The compiled backend equals dscribe's on real frames (GCIceNet ice Ih, VII, liquid),
    for a subset of rows, for larger l_max and n_max, and in small, triclinic and
    left-handed cells; unlike dscribe it also takes positions a cell or more outside the
    box (dscribe's periodic padding assumes wrapped ones)."""
    from icemon.descriptors.soap import SoapConfig

    from .conftest import gcicenet_frame

    def close(got, want, spread):
        assert got.shape == want.shape
        assert (np.abs(got - want) / spread).max() < 1e-7

    compiled = Soap(model.soap, backend="compiled")
    dscribe = Soap(model.soap, backend="dscribe", processes=1)
    assert compiled.backend == "compiled" and dscribe.backend == "dscribe"
    for tag in ("1h", "7", "w"):
        frame = gcicenet_frame(gcicenet, tag)
        pos, cell = np.asarray(frame.positions), np.asarray(frame.cell)
        want = dscribe.plain(pos, cell)
        spread = want.std(axis=0)
        close(compiled(pos, cell), want, spread)
        rows = np.array([7, 3, len(pos) - 1])
        close(compiled.plain(pos, cell, rows=rows), want[rows], spread)
    wide = SoapConfig(r_cut=5.0, n_max=6, l_max=8, sigma=0.4)
    want = Soap(wide, backend="dscribe")(pos, cell)
    close(Soap(wide, backend="compiled")(pos, cell), want, want.std(axis=0))
    rng = np.random.default_rng(5)
    for cell in (np.eye(3) * 6.0, [[14.0, 0, 0], [3.0, 13.0, 0], [1.0, 2.0, 12.0]],
                 [[0, 15.0, 0], [15.0, 0, 0], [0, 0, 15.0]]):
        cell = np.asarray(cell)
        pos = rng.random((40, 3)) @ cell
        want = dscribe.plain(pos, cell)
        close(compiled.plain(pos, cell), want, np.abs(want).max())
        far = pos + rng.integers(-3, 4, (40, 3)) @ cell
        close(compiled.plain(far, cell), want, np.abs(want).max())


def test_the_generated_harmonics_are_current():
    """icemon/descriptors/harmonics.py ends with what its generator writes."""
    from pathlib import Path

    from icemon.descriptors import harmonics

    text = Path(harmonics.__file__).read_text()
    assert harmonics._split(text)[1] == harmonics.source()


def test_a_backend_that_cannot_compile_falls_back_to_dscribe_once(model, monkeypatch):
    """numba failing on this machine costs one warning; the numbers are dscribe's."""
    import numba

    from icemon.descriptors import compiled

    atoms = reference("Ih", min_height=10.0)
    pos, cell = atoms.positions, np.asarray(atoms.cell[:])
    soap = Soap(model.soap)
    assert soap.backend == "compiled"

    def broken(*args):
        raise numba.core.errors.TypingError("no LLVM here")

    monkeypatch.setattr(compiled, "_kernels", broken)
    with pytest.warns(RuntimeWarning, match="compiled SOAP unavailable.*TypingError"):
        out = soap(pos, cell)
    assert soap.backend == "dscribe"
    np.testing.assert_array_equal(out, Soap(model.soap, backend="dscribe")(pos, cell))


def test_backend_names_are_checked(model, monkeypatch):
    with pytest.raises(ValueError, match="backend must be auto, compiled or dscribe, not 'c'"):
        Soap(model.soap, backend="c")
    monkeypatch.setenv("ICEMON_SOAP", "fast")
    with pytest.raises(ValueError, match=r"\$ICEMON_SOAP must be .* not 'fast'"):
        Soap(model.soap)
    monkeypatch.setenv("ICEMON_SOAP", "dscribe")
    assert Soap(model.soap).backend == "dscribe"
    with pytest.raises(ValueError, match="zero-volume"):
        Soap(model.soap, backend="compiled")(np.zeros((4, 3)), np.zeros((3, 3)))


def test_kernels_are_written_where_the_cache_folder_says(model, tmp_path, monkeypatch):
    """$ICEMON_CACHE_DIR holds the per-size kernel modules (and numba's cache of them); a
    folder that cannot be written gives way to one in the temporary directory."""
    import os
    import tempfile
    from pathlib import Path

    from icemon.descriptors import compiled

    monkeypatch.setenv("ICEMON_CACHE_DIR", str(tmp_path / "cache"))
    assert compiled.kernel_dir() == tmp_path / "cache" / "kernels"
    compiled._kernels.cache_clear()
    try:
        atoms = reference("Ih", min_height=10.0)
        Soap(model.soap, backend="compiled")(atoms.positions, np.asarray(atoms.cell[:]))
        assert len(list((tmp_path / "cache" / "kernels").glob("icemon_soap_n4_l4_*.py"))) == 1
    finally:
        compiled._kernels.cache_clear()
    blocked = tmp_path / "a-file"  # not a folder: nothing can be made under it
    blocked.write_text("")
    monkeypatch.setenv("ICEMON_CACHE_DIR", str(blocked))
    assert compiled.kernel_dir() == Path(tempfile.gettempdir()) / f"icemon-{os.getuid()}" / "kernels"
