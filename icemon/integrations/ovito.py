"""icemon inside OVITO: a pipeline modifier that labels each water oxygen with its phase.

>>> from ovito.io import import_file
>>> from icemon.integrations.ovito import IcePhasesModifier
>>> pipeline = import_file("md.lammpstrj")
>>> pipeline.modifiers.append(IcePhasesModifier(oxygens="O"))   # type name, or type id
>>> data = pipeline.compute()
>>> data.attributes["icemon.fraction.Ih"]

The modifier classifies the selected oxygens of each frame with one icemon
:class:`~icemon.execution.pipeline.Pipeline` and writes, like OVITO's own structure
identification:

- ``Structure Type`` (int): one named, coloured type per phase of the model's vocabulary,
  whose id is the phase code (shipped model: 0 ``Ih`` … 9 ``V``, 10 ``liquid``, 11
  ``unknown``); every particle that is not a selected oxygen (hydrogens, ions, ...) gets
  the type ``Other``, whose id follows the phases (12 for the shipped model). OVITO's own
  modifiers number "Other" 0, but here 0
  is Ih, so that the ids equal the codes of icemon's logs and extxyz ``phase`` column.
- ``Color`` (when ``color_by_type``): each particle's type colour
  (:data:`icemon.phases.PHASE_COLORS`; Other in OVITO's near-white).
- ``icemon Score`` (float): distance to the nearest reference environment (NaN for
  particles not classified).
- ``icemon Cluster`` (int): the ice cluster of each oxygen on the denoised positions (0 =
  the largest, -1 = none), the same ids as a log's and ``icemon export``'s.
- attributes ``icemon.fraction.<phase>``, ``icemon.count.<phase>`` (over the oxygens),
  ``icemon.largest_cluster``, ``icemon.n_clusters``, ``icemon.model``,
  ``icemon.threshold`` and ``icemon.denoise_steps`` (updates made).

With ``denoised=True`` the oxygens are moved to their denoised positions (each by its
minimum-image displacement, so unwrapped trajectories stay unwrapped).

Importing this module loads OVITO but not torch: the network's stack is imported on the
first frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ovito.data import DataCollection, ParticleType
from ovito.pipeline import ModifierInterface
from traits.api import Bool, Int, Str, Union

from icemon.errors import ConfigError, IcemonError
from icemon.execution.threads import torch_threads
from icemon.geometry.frame import Frame, is_hydrogen_name, minimum_image, water_subset
from icemon.phases import phase_color

if TYPE_CHECKING:
    from icemon.execution.pipeline import Pipeline

STRUCTURE_TYPE = "Structure Type"
SCORE = "icemon Score"

OTHER_NAME = "Other"
"""``Structure Type`` of the particles that are not classified (not selected oxygens); its
id is the number of phases of the model."""
OTHER_COLOR = (0.95, 0.95, 0.95)
"""OVITO's colour of its "Other" structure type."""


CLUSTER = "icemon Cluster"
"""Per-particle ice cluster (0 = the largest, -1 = none: not ice, or not a classified
oxygen), by :class:`~icemon.geometry.clusters.ClusterRule`'s default rule."""


class OvitoInputError(IcemonError, ValueError):
    """A pipeline frame icemon cannot classify: no matching oxygens, no periodic cell."""


class IcePhasesModifier(ModifierInterface):
    """Classify the oxygens of each frame into ice Ih, Ic, II, III, VI, VII, sI or liquid.

    Parameters (traits, settable as keyword arguments or attributes):
        oxygens: the oxygens' particle type, by name (default ``"O"``, e.g. ``"OW"``) or
            by integer type id.
        model: icemon model file; ``""`` = the shipped model.
        threads: torch threads and processes sharing a frame while it is classified (0 = as
            they are); restored afterwards, so OVITO's own threads are not changed.
        device: torch device of the network (``"cpu"``, ``"cuda"``).
        denoise_steps: maximum denoising updates (None = the model's; 0 = classify the
            raw positions).
        denoised: replace the oxygen positions (Å) with the denoised ones.
        color_by_type: write a ``Color`` property from the types' colours.
        water_only: where particle types name hydrogens ("H", "HW", ...), classify only
            the selected oxygens with two of them within 1.25 Å (water); the others get
            the unclassified type, with a warning that counts them.

    The cell must be periodic in all three directions (icemon's SOAP and neighbour lists
    are periodic). The :class:`~icemon.execution.pipeline.Pipeline` is built on the first frame
    and kept for the next ones until ``model``, ``threads``, ``device`` or
    ``denoise_steps`` change.
    """

    oxygens = Union(Str(), Int(), default_value="O", label="Oxygen particle type (name or id)")
    model = Str("", label="icemon model file (empty: shipped model)")
    threads = Int(0, label="Threads (0: default)")
    device = Str("cpu", label="Torch device")
    denoise_steps = Union(None, Int(), default_value=None,
                          label="Denoising updates (empty: the model's)")
    denoised = Bool(False, label="Output denoised oxygen positions")
    color_by_type = Bool(True, label="Color particles by phase")
    water_only = Bool(True, label="Water oxygens only (two H within 1.25 Å)")

    def modify(self, data: DataCollection, *, frame: int, **kwargs: Any) -> None:
        """Classify the frame and write the properties and attributes (module docstring)."""
        select = self.oxygen_indices(data)
        positions, cell, origin = frame_geometry(data)
        if self.water_only:
            select = self.water_indices(data, select, positions, cell)
        ids = (np.asarray(data.particles["Particle Identifier"])[select]
               if "Particle Identifier" in data.particles else select)
        step = int(data.attributes.get("Timestep", -1))
        pipe = self.pipeline()
        with torch_threads(self.threads):
            result = pipe.process(Frame(positions[select] - origin, cell, ids, step))

        n = data.particles.count
        names = result.phases  # the model's vocabulary; "Other" after it
        other = len(names)
        labels = np.full(n, other, dtype=np.int32)
        labels[select] = result.labels
        particles = data.particles_
        if STRUCTURE_TYPE in particles:
            del particles[STRUCTURE_TYPE]  # an upstream one's types would linger
        prop = particles.create_property(STRUCTURE_TYPE, data=labels)
        colors = [phase_color(name) for name in names] + [OTHER_COLOR]
        for code, name in enumerate((*names, OTHER_NAME)):
            prop.types.append(ParticleType(id=code, name=name, color=colors[code]))
        if self.color_by_type:
            particles.create_property("Color", data=np.asarray(colors)[labels])
        scores = np.full(n, np.nan)
        scores[select] = result.scores
        particles.create_property(SCORE, data=scores)
        if self.denoised:
            moved = positions.copy()
            moved[select] += minimum_image(result.denoised - result.frame.positions, cell)
            particles.create_property("Position", data=moved)

        clusters = result.clusters()  # the default rule, as the logs' cluster ids
        cluster = np.full(n, -1, dtype=np.int32)
        cluster[select] = clusters.ids
        particles.create_property(CLUSTER, data=cluster)
        data.attributes["icemon.largest_cluster"] = clusters.largest
        data.attributes["icemon.n_clusters"] = clusters.n_clusters

        counts = result.counts
        for code, name in enumerate(names):
            data.attributes[f"icemon.fraction.{name}"] = float(result.fractions[code])
            data.attributes[f"icemon.count.{name}"] = int(counts[code])
        data.attributes["icemon.model"] = pipe.model.name
        data.attributes["icemon.threshold"] = float(pipe.threshold)
        data.attributes["icemon.denoise_steps"] = int(result.n_denoise_steps)

    def oxygen_indices(self, data: DataCollection) -> np.ndarray:
        """Indices of the particles of type ``oxygens`` (name or id) in ``data``."""
        particles = data.particles
        if particles is None or particles.count == 0:
            raise OvitoInputError("icemon: the pipeline frame holds no particles")
        if "Particle Type" not in particles:
            raise OvitoInputError("icemon: the particles have no 'Particle Type' property to "
                                  f"select the oxygens (type {self.oxygens!r}) by")
        ptypes = particles["Particle Type"]
        known = ", ".join(f"{t.id} {t.name!r}" if t.name else str(t.id) for t in ptypes.types)
        if isinstance(self.oxygens, str):
            match = [t.id for t in ptypes.types if t.name == self.oxygens]
            if not match:
                raise OvitoInputError(f"icemon: no particle type named {self.oxygens!r} (types: "
                                      f"{known or 'none named'}); set oxygens= to the oxygens' "
                                      "type name or integer id")
            type_id = match[0]
        else:
            type_id = int(self.oxygens)
        select = np.flatnonzero(np.asarray(ptypes) == type_id)
        if len(select) == 0:
            raise OvitoInputError(f"icemon: no particle has the oxygen type {self.oxygens!r} "
                                  f"(id {type_id}; types: {known or 'none'})")
        return select

    def water_indices(self, data: DataCollection, select: np.ndarray, positions: np.ndarray,
                      cell: np.ndarray) -> np.ndarray:
        """The oxygens of ``select`` with two hydrogens (particles of a type named "H",
        "HW", "H1"...) within 1.25 Å; all of them when no type names a hydrogen."""
        ptypes = data.particles["Particle Type"]
        hydrogen_ids = [t.id for t in ptypes.types if is_hydrogen_name(t.name)]
        hydrogens = np.flatnonzero(np.isin(np.asarray(ptypes), hydrogen_ids))
        if not hydrogens.size:
            return select
        return water_subset(select, positions[select], positions[hydrogens], cell)

    def close(self) -> None:
        """Stop the cached pipeline's helper processes (the next frame restarts them)."""
        cached = getattr(self, "_icemon_pipeline", None)
        if cached is not None:
            cached[1].close()

    def pipeline(self) -> Pipeline:
        """The icemon pipeline of the current settings, built once and cached."""
        key = (self.model, self.threads, self.device, self.denoise_steps)
        cached = getattr(self, "_icemon_pipeline", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        if self.threads < 0:
            raise ConfigError(f"threads must be ≥ 0 (0 = default), got {self.threads}")
        from icemon.execution.pipeline import Pipeline

        if cached is not None:
            cached[1].close()
        pipe = Pipeline(self.model or None, denoise_steps=self.denoise_steps, device=self.device)
        self._icemon_pipeline = (key, pipe)  # a plain attribute: no trait, no re-evaluation
        return pipe


def frame_geometry(data: DataCollection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All particle positions (N, 3), the cell (3, 3; rows = lattice vectors) and the cell
    origin (3,), in Å, from an OVITO data collection; refuses a cell that is not periodic
    in x, y and z. (OVITO's cell matrix is 3x4: columns = the three vectors, then the
    origin.)"""
    if data.cell is None:
        raise OvitoInputError("icemon: the pipeline frame has no simulation cell; icemon "
                              "needs a cell periodic in x, y and z")
    pbc = tuple(bool(p) for p in data.cell.pbc)
    if not all(pbc):
        raise OvitoInputError(f"icemon: the simulation cell must be periodic in x, y and z, "
                              f"got pbc={pbc}; icemon classifies bulk (periodic) water only")
    matrix = np.asarray(data.cell[...], dtype=np.float64)
    positions = np.asarray(data.particles.positions, dtype=np.float64)
    return positions, matrix[:, :3].T.copy(), matrix[:, 3].copy()
