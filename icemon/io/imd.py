"""Classifying a live IMDv3 stream (``icemon classify imd://HOST:PORT``).

IMDv3 (Interactive Molecular Dynamics, version 3) streams positions, box, step and time
out of a running engine to a client over TCP: LAMMPS ``fix imd ... version 3``, GROMACS
and NAMD builds with IMDv3. The monitor then runs in another process or on another node,
and the engine pays only for sending. The ``imdclient`` package reads the stream (it
buffers frames in a thread and pauses the engine when its buffer is full, so a slow
monitor slows the engine instead of losing frames).

The stream carries coordinates only, so the oxygens come from a topology (``top``: tpr,
LAMMPS data, psf, gro, pdb...) read by MDAnalysis with the same selection rules as a
trajectory file. Units: positions and box in Å (LAMMPS ``real``/``metal`` send Å; icemon's
unit check refuses nm or bohr); time in the engine's own unit, which the protocol does not
state: ``time_unit`` says it (LAMMPS ``units real``: fs; LAMMPS ``metal`` and GROMACS: ps),
and a time step outside 0.1–50 fs after conversion is refused as a wrong unit.

The stream ends when the engine closes it (the run finished, or the engine stopped);
everything received is logged. A stream that sends other data than the topology says (atom
count, no box, no time) is an error that names it.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from icemon.errors import ConfigError
from icemon.geometry.frame import Frame
from icemon.io.readers import (
    TrajectoryError,
    mda_atom_ids,
    mda_check_oxygens,
    mda_select,
    mda_universe,
    mda_water_oxygens,
)

SCHEME = "imd://"
TIME_UNITS = {"ps": 1.0, "fs": 1e-3}
"""Picoseconds per unit of the time an engine sends."""
DT_RANGE_PS = (1e-4, 0.05)
"""Plausible MD time steps (ps): 0.1 fs (ab initio, light atoms) to 50 fs (coarse
grained). A step outside is a time unit taken for the other."""


def is_imd(source: str | Path) -> bool:
    """Whether ``source`` names an IMD stream (``imd://HOST:PORT``)."""
    return str(source).startswith(SCHEME)


def parse_address(url: str) -> tuple[str, int]:
    """``imd://HOST:PORT`` → (host, port); a clear error for anything else."""
    if not is_imd(url):
        raise ConfigError(f"{url!r} is not an IMD address (imd://HOST:PORT)")
    rest = url[len(SCHEME):]
    host, sep, port = rest.rpartition(":")
    host = host.strip().strip("[]").strip()
    if not sep or not host or not port.isascii() or not port.isdigit() \
            or not 0 < int(port) < 65536:
        raise ConfigError(f"{url!r} is not an IMD address: write imd://HOST:PORT, e.g. "
                          "imd://localhost:8889")
    return host, int(port)


def _topology(top: str | Path | None, select: str | None, url: str):
    """The MDAnalysis Universe of ``top`` and the selected oxygens (checked)."""
    if top is None:
        raise ConfigError(f"{url}: an IMD stream carries coordinates only; give the topology "
                          "that lists its atoms in the engine's order (--top: tpr, LAMMPS "
                          "data, psf, gro, pdb) and the oxygens (--select)")
    if not Path(top).exists():
        raise TrajectoryError(f"topology {str(top)!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            u = mda_universe(top)
    except Exception as exc:
        raise TrajectoryError(f"cannot open the topology {str(top)!r}: {exc}") from exc
    oxygens = mda_select(u, select, top)
    mda_check_oxygens(oxygens)
    return u, oxygens


@contextmanager
def _signals_kept() -> Iterator[None]:
    """Restore SIGINT/SIGTERM handlers after ``imdclient`` replaced them (it installs its
    own to disconnect on Ctrl-C)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def _connect(host: str, port: int, n_atoms: int, wait: float, timeout: float):
    """An ``IMDClient`` connected to ``host:port``, trying again for up to ``wait`` s while
    nothing listens there yet (the engine may start after the monitor)."""
    try:
        from imdclient.IMDClient import IMDClient
    except ImportError as exc:
        raise ConfigError("reading IMD streams needs the imdclient package: pip install "
                          "imdclient (or icemon[imd])") from exc

    deadline = time.monotonic() + wait
    while True:
        try:
            return IMDClient(host, port, n_atoms, timeout=timeout)
        except (ConnectionRefusedError, ConnectionError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise TrajectoryError(
                    f"no IMD engine at {host}:{port} within {wait:g} s ({exc}): start the "
                    "engine with IMDv3 on that port (LAMMPS: fix ID all imd PORT version 3 "
                    "time on box on; GROMACS: mdrun -imdport PORT -imdwait)") from exc
            time.sleep(0.5)


def imd_frames(url: str, top: str | Path | None, select: str | None = None, every: int = 1,
               water_only: bool = True, time_unit: str = "ps", start: int = 0,
               stop: int | None = None, wait: float = 60.0, timeout: float = 600.0
               ) -> Iterator[Frame]:
    """Yield every ``every``-th frame (indices ``start`` to ``stop``, excluded) of the
    IMDv3 stream at ``url`` as the engine sends it; return when the engine closes it.

    ``top``/``select``/``water_only``: the topology, the oxygen selection and the two-
    hydrogen rule (module doc; which oxygens are water is decided on the first frame).
    ``time_unit``: "ps" or "fs", the unit of the engine's time. ``wait``: seconds to keep
    trying to connect; ``timeout``: seconds without a frame after which the engine is taken
    to have stopped."""
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"the IMD time unit must be one of {', '.join(TIME_UNITS)}, not "
                          f"{time_unit!r}")
    if every < 1 or start < 0:
        raise ConfigError(f"--every must be ≥ 1 and --start ≥ 0, not {every}, {start}")
    host, port = parse_address(url)
    universe, oxygens = _topology(top, select, url)
    n_atoms = len(universe.atoms)
    to_ps = TIME_UNITS[time_unit]
    with _signals_kept():
        client = _connect(host, port, n_atoms, wait, timeout)
        try:
            info = client.get_imdsessioninfo()
            if info.version != 3:
                raise TrajectoryError(f"{url} speaks IMD version {info.version}; icemon reads "
                                      "IMDv3 (LAMMPS: fix imd ... version 3)")
            missing = [what for what, on in (("positions", info.positions),
                                             ("box", info.box), ("time", info.time)) if not on]
            if missing:
                raise TrajectoryError(
                    f"{url} sends no {', '.join(missing)}: icemon needs positions, box and "
                    "time in every frame (LAMMPS: fix imd ... version 3 time on box on "
                    "coordinates on)")
            chosen, ids = None, None
            k = 0
            while stop is None or k < stop:
                try:
                    imdf = client.get_imdframe()
                except EOFError as exc:
                    cause = exc.__cause__
                    if isinstance(cause, RuntimeError):  # the stream broke the protocol
                        raise TrajectoryError(f"{url}: the IMD stream is not what the "
                                              f"topology {str(top)!r} describes: {cause}"
                                              ) from exc
                    return  # the engine closed the stream: the run ended
                if k >= start and (k - start) % every == 0:
                    cell = np.asarray(imdf.box, dtype=np.float64).reshape(3, 3)
                    if chosen is None:
                        chosen, ids = _water(universe, oxygens, imdf.positions, cell,
                                             water_only)
                        _check_timestep(float(imdf.dt) * to_ps, time_unit, url)
                    yield Frame(np.asarray(imdf.positions[chosen], dtype=np.float64), cell,
                                ids, step=int(imdf.step), time=float(imdf.time) * to_ps)
                k += 1
        finally:
            client.stop()


def _water(universe, oxygens, positions: np.ndarray, cell: np.ndarray, water_only: bool
           ) -> tuple[np.ndarray, np.ndarray]:
    """(indices into the stream, atom ids) of the monitored oxygens, decided on the first
    frame's positions (the two-hydrogen rule needs them)."""
    from ase.geometry import cell_to_cellpar

    if water_only:
        universe.atoms.positions = np.asarray(positions, dtype=np.float32)
        universe.dimensions = cell_to_cellpar(cell)
        oxygens = mda_water_oxygens(oxygens)
    return np.asarray(oxygens.indices, dtype=np.int64), mda_atom_ids(oxygens)


def _check_timestep(dt_ps: float, time_unit: str, url: str) -> None:
    """Refuse a time step that only a wrong ``time_unit`` explains."""
    lo, hi = DT_RANGE_PS
    if dt_ps > 0 and not lo <= dt_ps <= hi:
        other = "fs" if time_unit == "ps" else "ps"
        raise ConfigError(f"{url}: the engine's time step reads {dt_ps:g} ps with time unit "
                          f"{time_unit!r}, outside {lo * 1e3:g}–{hi * 1e3:g} fs: the engine "
                          f"sends {other} (--time-unit {other}; LAMMPS units real sends fs, "
                          "LAMMPS metal and GROMACS ps)")
