"""Classified frames as extended XYZ, readable by ASE and OVITO with the phase names.

Per-atom columns, one oxygen a row (element O, positions in Å):

- ``phase``           int, the phase code (index into the model's ``phases``, also in the
                      comment line);
- ``structure_type``  str, the phase name (``Ih``, ``Ic``, …, ``liquid``);
- ``score``           float, distance to the nearest reference environment;
- ``atom_id``         int, the atom's id in the simulation (e.g. LAMMPS tag);
- ``color``           3 floats, the phase's RGB colour (:data:`icemon.phases.PHASE_COLORS`).

Why these names (checked with OVITO 3.17): OVITO's extxyz reader maps a column called
``structure_type`` (case and ``_`` vs space do not matter) to its standard ``Structure
Type`` property, and a *string* column becomes a typed property with one named type per
distinct string, so the phases arrive by name, as after OVITO's own structure
identification. OVITO numbers those types in order of first appearance, not by phase code
(the integer ``phase`` column keeps the codes), and cannot read type colours from the
file: hence the per-atom ``color`` column, which OVITO maps to its ``Color`` property so
the file renders in the icemon palette as it opens. The comment line holds ``step``,
``time`` (ps), ``phases`` (the names in code order) and the caller's ``info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

import numpy as np

from icemon.phases import phase_color

if TYPE_CHECKING:
    from icemon.execution.pipeline import Result

NAME_COLUMN = "structure_type"
"""The string column of phase names that OVITO reads as its ``Structure Type``."""

UNKNOWN_NAME = "Other"
"""Name written for a label that is no phase code (e.g. a log's −1 fill of an unwritten
row); OVITO also calls its unassigned structure type "Other"."""

UNKNOWN_COLOR = (0.95, 0.95, 0.95)
"""OVITO's colour of its "Other" structure type."""


def phase_names(labels: np.ndarray, phases: Sequence[str]) -> np.ndarray:
    """(N,) phase names of integer codes in the vocabulary ``phases``;
    :data:`UNKNOWN_NAME` for a code out of range."""
    codes = np.asarray(labels).astype(np.int64)
    names = np.array((*phases, UNKNOWN_NAME))
    return names[np.where((codes >= 0) & (codes < len(phases)), codes, len(phases))]


def phase_colors(labels: np.ndarray, phases: Sequence[str]) -> np.ndarray:
    """(N, 3) RGB (0-1) colours of integer phase codes (:func:`icemon.phases.phase_color`)."""
    codes = np.asarray(labels).astype(np.int64)
    table = np.array([phase_color(p) for p in phases] + [UNKNOWN_COLOR])
    return table[np.where((codes >= 0) & (codes < len(phases)), codes, len(phases))]


def write_frame(fh: TextIO, positions: np.ndarray, cell: np.ndarray, labels: np.ndarray,
                scores: np.ndarray, atom_ids: np.ndarray, step: int, time: float,
                info: dict[str, str] | None = None, *, phases: Sequence[str],
                cluster_ids: np.ndarray | None = None) -> None:
    """Append one frame to an open text file.

    Args:
        fh: file open for writing text.
        positions: (N, 3) oxygen positions in Å.
        cell: (3, 3) cell in Å, one lattice vector per row (periodic in all directions).
        labels: (N,) phase codes; scores: (N,) scores; atom_ids: (N,) atom ids.
        step: MD step; time: simulation time in ps (NaN if unknown).
        info: extra ``key=value`` pairs for the comment line.
        phases: the vocabulary of the labels (the model's; a log's ``phases``).
        cluster_ids: (N,) ice cluster of each molecule (0 = the largest, -1 = none),
            written as the ``cluster`` column (OVITO: colour or select by it).
    """
    from ase import Atoms
    from ase.io import write

    atoms = Atoms(numbers=np.full(len(positions), 8), positions=positions, cell=cell, pbc=True)
    atoms.new_array("phase", np.asarray(labels).astype(np.int32))
    atoms.new_array(NAME_COLUMN, phase_names(labels, phases))
    atoms.new_array("score", np.asarray(scores).astype(np.float64))
    atoms.new_array("atom_id", np.asarray(atom_ids).astype(np.int64))
    atoms.new_array("color", phase_colors(labels, phases))
    if cluster_ids is not None:
        atoms.new_array("cluster", np.asarray(cluster_ids).astype(np.int32))
    atoms.info.update(step=int(step), time=float(time), phases=" ".join(phases), **(info or {}))
    write(fh, atoms, format="extxyz")


def write_result(fh: TextIO, result: Result, info: dict[str, str] | None = None) -> None:
    """Append one classified frame (:class:`~icemon.execution.pipeline.Result`) with the
    positions as simulated, not denoised, and its ice clusters under the default rule
    (see :func:`write_frame`)."""
    f = result.frame
    write_frame(fh, f.positions, f.cell, result.labels, result.scores, f.atom_ids, f.step,
                f.time, info, phases=result.phases, cluster_ids=result.clusters().ids)
