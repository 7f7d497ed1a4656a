"""Trajectory readers: MDAnalysis (xtc + tpr) and ASE (extxyz), and their errors."""

import numpy as np
import pytest
from ase import Atoms
from ase.io import write

from icemon import FrameError, TrajectoryError, read_frames


def test_gcicenet_xtc(gcicenet):
    frames = list(read_frames(gcicenet / "md_7_dev.xtc", gcicenet / "md_7.tpr", "name OW"))
    assert len(frames) == 6
    f = frames[1]
    assert f.n_atoms == 1024 and f.time == pytest.approx(100.0)
    assert np.allclose(f.cell, np.diag(np.diag(f.cell)))  # orthorhombic box, Å
    assert 20 < f.cell[0, 0] < 40
    # every 2nd frame from the 2nd on
    assert [fr.time for fr in read_frames(gcicenet / "md_7_dev.xtc", gcicenet / "md_7.tpr",
                                          start=1, every=2)] == pytest.approx([100, 300, 500])


def test_extxyz_oxygens_only(tmp_path):
    w = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])  # one water
    a = Atoms("OH2OH2", positions=np.vstack([w + 1.0, w + 5.0]), cell=[9, 9, 9], pbc=True)
    write(tmp_path / "w.extxyz", [a, a])
    frames = list(read_frames(tmp_path / "w.extxyz"))
    assert len(frames) == 2
    np.testing.assert_array_equal(frames[0].atom_ids, [0, 3])


def test_extxyz_without_cell_is_rejected(tmp_path):
    a = Atoms("O2", positions=[[0, 0, 0], [0, 0, 3]])
    write(tmp_path / "nocell.extxyz", a)
    with pytest.raises(FrameError, match="cell"):
        list(read_frames(tmp_path / "nocell.extxyz"))


def test_garbage_extxyz(tmp_path):
    p = tmp_path / "bad.extxyz"
    p.write_text("3\nnot a header\nO 1 2\n")
    with pytest.raises(TrajectoryError, match="cannot read"):
        list(read_frames(p))


def test_missing_file(tmp_path):
    with pytest.raises(TrajectoryError, match="does not exist"):
        list(read_frames(tmp_path / "none.xtc"))


DUMP = """ITEM: TIMESTEP
{step}
ITEM: NUMBER OF ATOMS
3
ITEM: BOX BOUNDS xy xz yz pp pp pp
0.0 10.0 1.0
0.0 10.0 0.0
0.0 10.0 0.0
ITEM: ATOMS id type x y z
7 1 1.0 1.0 1.0
2 2 2.0 1.0 1.0
3 1 5.0 5.0 5.0
"""


def test_lammps_dump_triclinic(tmp_path):
    p = tmp_path / "run.lammpstrj"
    p.write_text(DUMP.format(step=100) + DUMP.format(step=200))
    frames = list(read_frames(p, select="type 1"))
    assert [f.step for f in frames] == [100, 200]
    assert np.isnan(frames[0].time)
    assert sorted(frames[0].atom_ids) == [3, 7]
    # LAMMPS bounds: xhi_bound - xy = 9 Å for a, tilt xy = 1 Å for b
    np.testing.assert_allclose(frames[0].cell, [[9, 0, 0], [1, 10, 0], [0, 0, 10]], atol=1e-5)


def test_no_guessed_oxygens(tmp_path):
    """Without atoms named OW the reader refuses to guess (type 1 may be hydrogen)."""
    p = tmp_path / "run.lammpstrj"
    p.write_text(DUMP.format(step=100))
    with pytest.raises(TrajectoryError, match="no atoms named OW.*--select"):
        list(read_frames(p))


def test_an_atomic_lammps_data_file_is_a_topology(tmp_path):
    """A data file of ``atom_style atomic`` (mW, one site per water) as --top of a dump:
    MDAnalysis' default columns are ``full``'s, so the reader falls back to atomic's."""
    from icemon.demo import mw

    atoms = mw.ice("Ih", 12.0)
    data = mw.write_data(atoms, tmp_path / "ice.data")
    lines = [f"ITEM: TIMESTEP\n50\nITEM: NUMBER OF ATOMS\n{len(atoms)}\n",
             "ITEM: BOX BOUNDS pp pp pp\n",
             *(f"0.0 {x}\n" for x in atoms.cell.lengths()), "ITEM: ATOMS id type x y z\n",
             *(f"{k + 1} 1 {x} {y} {z}\n" for k, (x, y, z) in enumerate(atoms.positions))]
    dump = tmp_path / "run.lammpstrj"
    dump.write_text("".join(lines))
    (frame,) = read_frames(dump, top=data, select="type 1")
    assert frame.step == 50 and len(frame.positions) == len(atoms)
    np.testing.assert_allclose(frame.positions, atoms.positions, atol=1e-4)
