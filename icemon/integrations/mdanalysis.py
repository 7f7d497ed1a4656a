"""Ice phase of every oxygen of an MDAnalysis trajectory, as an MDAnalysis analysis.

>>> import MDAnalysis as mda
>>> from icemon.integrations.mdanalysis import IcePhases
>>> u = mda.Universe("md.tpr", "md.xtc")
>>> ice = IcePhases(u.select_atoms("name OW")).run(step=10)
>>> ice.results.labels, ice.results.fractions      # (n_frames, N) codes, (n_frames, 8)

:class:`IcePhases` follows MDAnalysis's :class:`~MDAnalysis.analysis.base.AnalysisBase`
conventions (``run(start, stop, step, frames, verbose)``, ``results``), so trajectory
slicing and the progress bar are MDAnalysis's own. ``icemon classify`` runs it for every
input MDAnalysis reads, which makes the two give the same labels.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from MDAnalysis.analysis.base import AnalysisBase

from icemon.errors import ConfigError
from icemon.geometry.frame import FrameError
from icemon.io.readers import (
    mda_atom_ids,
    mda_check_oxygens,
    mda_frame,
    mda_has_times,
    mda_water_oxygens,
)

if TYPE_CHECKING:
    from icemon.execution.pipeline import Result
    from icemon.model.modelfile import IcemonModel
    from icemon.recording import Recorder

__all__ = ["IcePhases"]


class IcePhases(AnalysisBase):
    """Phase label (Ih, Ic, II, III, VI, VII, sI, liquid) of each atom of ``atomgroup``
    in every analysed frame: denoise the positions, SOAP, nearest reference.

    Args:
        atomgroup: the water oxygens (e.g. ``u.select_atoms("name OW")``), a fixed set
            of atoms; positions in Å and a periodic box in every frame. A Universe
            stands for all its atoms.
        model: a model file path, a loaded :class:`~icemon.model.modelfile.IcemonModel`,
            or None for the shipped model.
        threads: torch threads (also the number of processes sharing a frame) while
            :meth:`run` runs; the previous count is restored afterwards. None: unchanged.
        device: torch device of the network ("cpu" or "cuda").
        denoise_steps: override the model's number of denoising updates (0 = none).
        compile: run the network through ``torch.compile`` (default None: yes unless
            ``$ICEMON_COMPILE=0``; faster per frame after a one-time compilation, ~40 s
            cold, ~4 s cached; falls back to eager with a warning).
        log: also append each frame to this ``icemon/1`` HDF5 log while running (an
            existing log is appended to if model, settings and atoms match), so a long
            run leaves every finished frame on disk.
        positions: store the given and denoised positions in that log.
        source: what the log records as its producer (default: the trajectory file).
        on_frame: called with each frame's :class:`~icemon.execution.pipeline.Result` once it
            is in the results (and the log), e.g. to write extxyz.
        keep_denoised: also keep the denoised positions in ``results.denoised``
            (n_frames × N × 3 floats, off by default to save memory).
        verbose: MDAnalysis's default for ``run(verbose=...)``.
        comm: an mpi4py communicator whose ranks all run the same analysis: they share
            each frame's atoms (:mod:`icemon.execution.mpi`), rank 0 writes the log and
            calls ``on_frame``; every rank gets the same results.
        water_only: where the universe holds hydrogens (by element, else by name: "H",
            "HW1", ...), keep only the atoms of ``atomgroup`` with two of them within
            1.25 Å in the current frame (water oxygens); the others (a substrate's or a
            guest's oxygens, hydroxide) are left out with a warning that counts them.
        cluster_ids: also log each atom's ice cluster id per frame in ``log``.

    After :meth:`run`, ``results`` holds

    - ``labels``: (n_frames, N) int8 phase codes, index into ``phases``;
    - ``scores``: (n_frames, N) float32 distance to the nearest reference environment
      (the liquid threshold, :attr:`threshold`, applies to it);
    - ``fractions``: (n_frames, n_phases) float32 fraction of each phase;
    - ``frames``: (n_frames,) trajectory frame indices; ``times``: (n_frames,) ps (NaN
      for files that record no time: LAMMPS dumps, PDB, GRO); ``steps``: (n_frames,) MD
      steps (-1 where the trajectory records none: a frame index is no MD step);
    - ``largest_cluster``: (n_frames,) molecules in the largest ice cluster;
      ``cluster_ids``: (n_frames, N) int32 cluster of each atom (0 = the largest, -1 =
      none; :mod:`icemon.geometry.clusters`, default rule);
    - ``phases``: the phase names (the model's vocabulary), ``atom_ids``: (N,) ids;
    - ``denoised``: (n_frames, N, 3) float32 Å, only with ``keep_denoised``.

    The pipeline's helper processes and the log are closed when :meth:`run` ends,
    also when it fails; frames logged until then stay in the log.
    """

    def __init__(self, atomgroup, model: str | Path | IcemonModel | None = None, *,
                 threads: int | None = None, device: str = "cpu",
                 denoise_steps: int | None = None, log: str | Path | None = None,
                 positions: bool = True, source: str | None = None,
                 on_frame: Callable[[Result], None] | None = None,
                 keep_denoised: bool = False, verbose: bool = False,
                 comm: Any | None = None, compile: bool | None = None,
                 water_only: bool = True, cluster_ids: bool = False) -> None:
        from MDAnalysis.core.groups import UpdatingAtomGroup

        if isinstance(atomgroup, UpdatingAtomGroup):  # (its .atoms would freeze it silently)
            raise ConfigError("IcePhases needs a fixed set of atoms, not an updating "
                              "selection: each column of results.labels is one atom")
        atomgroup = getattr(atomgroup, "atoms", atomgroup)  # a Universe: all its atoms
        if len(atomgroup) == 0:
            raise FrameError("the atom group is empty: select the water oxygens, e.g. "
                             "u.select_atoms(\"name OW\")")
        trajectory = atomgroup.universe.trajectory
        mda_check_oxygens(atomgroup)
        if water_only:
            atomgroup = mda_water_oxygens(atomgroup)
        ids = mda_atom_ids(atomgroup)
        has_time = mda_has_times(trajectory)
        filename = getattr(trajectory, "filename", None)
        try:  # the current frame, checked before any work: box, NaN, length units
            mda_frame(atomgroup, trajectory.ts, ids, has_time)
        except FrameError as exc:
            where = f" of {str(filename)!r}" if filename else ""
            raise FrameError(f"cannot classify frame {trajectory.ts.frame}{where}: {exc}") from exc
        if threads is not None and int(threads) < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}")
        super().__init__(trajectory, verbose=verbose)
        # loads torch, e3nn and dscribe: only once an analysis is made
        from icemon.recording import Options

        self._ag = atomgroup
        self._ids = ids
        self._has_time = has_time
        self.pipeline = Options(model, denoise_steps, device, compile).pipeline(comm)
        self._root = comm is None or comm.rank == 0  # writes the log, calls on_frame
        self._threads = threads
        self._log = None if log is None else Path(log)
        self._positions = positions
        self._source = source or f"icemon.integrations.mdanalysis.IcePhases {filename or ''}".rstrip()
        self._on_frame = on_frame
        self._keep_denoised = keep_denoised
        self._log_cluster_ids = cluster_ids
        self._recorder: Recorder | None = None
        self.n_logged = 0
        """Frames the last :meth:`run` appended to ``log``."""

    @property
    def threshold(self) -> float:
        """The model's liquid threshold on ``results.scores``."""
        return self.pipeline.threshold

    def run(self, *args, **kwargs) -> IcePhases:
        """MDAnalysis's ``run(start, stop, step, frames, verbose, ...)``; closes the log
        and the SOAP helpers at the end, also when a frame fails."""
        with ExitStack() as cleanup:  # undone in reverse order, each even if one fails
            from icemon.execution.threads import torch_threads

            cleanup.enter_context(torch_threads(self._threads))
            cleanup.callback(self.pipeline.close)
            cleanup.callback(self._close_log)
            return super().run(*args, **kwargs)

    def _close_log(self) -> None:
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            recorder.close()

    def _prepare(self) -> None:
        n, m = self.n_frames, len(self._ag)
        r = self.results
        r.phases = self.pipeline.model.phases
        r.atom_ids = self._ids.copy()
        r.labels = np.full((n, m), -1, dtype=np.int8)
        r.scores = np.full((n, m), np.nan, dtype=np.float32)
        r.fractions = np.full((n, len(r.phases)), np.nan, dtype=np.float32)
        r.steps = np.full(n, -1, dtype=np.int64)
        r.largest_cluster = np.full(n, -1, dtype=np.int64)
        r.cluster_ids = np.full((n, m), -1, dtype=np.int32)
        if self._keep_denoised:
            r.denoised = np.full((n, m, 3), np.nan, dtype=np.float32)
        elif "denoised" in r:
            del r["denoised"]  # left from an earlier run with other settings
        self.n_logged = 0
        if self._log is not None and n > 0 and self._root:  # no frames: no (empty) log file either
            from icemon.recording import Recorder

            # opened before the first frame: a log of another model, settings or atoms
            # is refused before any work
            self._recorder = Recorder(self.pipeline, self._log, atom_ids=self._ids,
                                      source=self._source, positions=self._positions,
                                      cluster_ids=self._log_cluster_ids)

    def _single_frame(self) -> None:
        k = self._frame_index
        frame = mda_frame(self._ag, self._ts, self._ids, self._has_time)
        res = (self.pipeline.process(frame) if self._recorder is None
               else self._recorder.record(frame))
        r = self.results
        r.labels[k] = res.labels
        r.scores[k] = res.scores
        r.fractions[k] = res.fractions
        r.steps[k] = frame.step
        clusters = res.clusters()  # the default rule, as the log's
        r.largest_cluster[k] = clusters.largest
        r.cluster_ids[k] = clusters.ids
        if self._keep_denoised:
            r.denoised[k] = res.denoised
        self.times[k] = frame.time  # NaN where the trajectory has no times
        if self._recorder is not None:
            self.n_logged += 1
        if self._on_frame is not None and self._root:
            self._on_frame(res)

    def _conclude(self) -> None:
        self.results.frames = np.asarray(self.frames, dtype=np.int64).copy()
        self.results.times = np.asarray(self.times, dtype=np.float64).copy()
