"""``carnet mllp serve`` and the listener ``carnet serve`` starts when CARNET_MLLP_PORT is set."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from carnet.cli import app
from carnet.settings import Settings
from mllp.wire import exchange

runner = CliRunner()
CARNET = [sys.executable, "-m", "carnet"]
UNKNOWN_SENDER = (
    b"MSH|^~\\&|LIS|Nobody Lab|CARNET|CARNET|20260520110702||ORU^R01^ORU_R01|X-1|P|2.5.1\r"
    b"PID|1||123^^^CNS^NI\r"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of an embedded database, migrated."""
    env = {**os.environ, "CARNET_VAR_DIR": str(tmp_path_factory.mktemp("mllp") / "var")}
    subprocess.run([*CARNET, "db", "upgrade"], env=env, check=True, capture_output=True)
    return env


class TestConfiguration:
    def test_without_a_port_the_command_fails_in_one_line(self, migrated: dict[str, str]) -> None:
        # Empty is unset (an environment file's ``CARNET_MLLP_PORT=``).
        result = runner.invoke(app, ["mllp", "serve"], env={**migrated, "CARNET_MLLP_PORT": ""})
        assert result.exit_code == 1
        assert result.output.strip() == "error: No MLLP port: set CARNET_MLLP_PORT or pass --port."

    def test_unreadable_tls_files_fail_in_one_line(
        self, migrated: dict[str, str], tmp_path: Path
    ) -> None:
        (tmp_path / "bad.pem").write_text("not a certificate")
        env = {
            **migrated,
            "CARNET_MLLP_TLS_CERT": str(tmp_path / "bad.pem"),
            "CARNET_MLLP_TLS_KEY": str(tmp_path / "bad.pem"),
        }
        result = runner.invoke(app, ["mllp", "serve", "--port", str(_free_port())], env=env)
        assert result.exit_code == 1
        assert result.output.startswith("error: Cannot load the MLLP TLS files (CARNET_MLLP_TLS_*)")
        assert len(result.output.strip().splitlines()) == 1

    @pytest.mark.parametrize(
        "variables",
        [
            {"CARNET_MLLP_TLS_CERT": "/etc/carnet/mllp.crt"},
            {"CARNET_MLLP_TLS_KEY": "/etc/carnet/mllp.key"},
            {"CARNET_MLLP_TLS_CLIENT_CA": "/etc/carnet/labs.pem"},
        ],
    )
    def test_incomplete_tls_settings_are_refused_at_start(
        self, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
    ) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match="mllp_tls"):
            Settings()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()}")


def _refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def _listener_child(parent: int) -> int:
    """The pid of the ``carnet mllp serve`` process ``carnet serve`` started."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"mllp\0serve" in command:
            return int(entry.name)
    raise AssertionError("no MLLP listener among the children of carnet serve")


def test_carnet_serve_runs_one_mllp_listener_beside_http_restarts_and_stops_it(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    http_port, mllp_port = _free_port(), _free_port()
    env = {**migrated, "CARNET_MLLP_PORT": str(mllp_port)}
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*CARNET, "serve", "--port", str(http_port), "--workers", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(mllp_port, server, log)
        with socket.create_connection(("127.0.0.1", mllp_port), timeout=30) as laboratory:
            ack = exchange(laboratory, UNKNOWN_SENDER)
        assert ack is not None
        assert b"\rMSA|AR|X-1|" in ack or b"\rMSA|AE|X-1|" in ack, ack
        # A listener that dies is started again by carnet serve.
        os.kill(_listener_child(server.pid), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while "restarting in" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        _wait_for_port(mllp_port, server, log)
        with socket.create_connection(("127.0.0.1", mllp_port), timeout=30) as laboratory:
            assert exchange(laboratory, UNKNOWN_SENDER) is not None
        _wait_for_port(http_port, server, log)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=10) as health:
            assert json.load(health)["status"] == "ok"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(40)
    written = log.read_text()
    assert server.returncode == 0, written
    assert written.count("MLLP listener on 127.0.0.1:") == 2, written
    assert "MLLP listener stopped after 1 messages." in written, written
    assert "Traceback" not in written, written
    assert _refuses(mllp_port)


def test_the_listener_stops_when_its_parent_is_gone(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    # ``--parent`` names a process that is not this one's parent: as if ``carnet serve`` had
    # been killed and the listener adopted by init.
    port = _free_port()
    finished = subprocess.run(
        [*CARNET, "mllp", "serve", "--port", str(port), "--parent", str(os.getpid() + 10**6)],
        env=migrated,
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = finished.stdout.decode() + finished.stderr.decode()
    assert finished.returncode == 0, output
    assert "is gone: stopping" in output, output


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (from any of its threads)."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def test_several_listener_processes_share_the_port_and_stop_together(
    migrated: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    log = tmp_path / "mllp.log"
    with log.open("wb") as output:
        supervisor = subprocess.Popen(
            [*CARNET, "mllp", "serve", "--port", str(port), "--processes", "2"],
            env=migrated,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("MLLP listener on 127.0.0.1:") < 2:
            assert supervisor.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        listeners = _children(supervisor.pid)
        assert len(listeners) == 2
        # Connections land on either process; every one is answered.
        for number in range(8):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as laboratory:
                ack = exchange(laboratory, UNKNOWN_SENDER.replace(b"X-1", f"X-{number}".encode()))
            assert ack is not None
            assert f"\rMSA|AR|X-{number}|".encode() in ack or b"\rMSA|AE|" in ack, ack
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(40)
    written = log.read_text()
    assert supervisor.returncode == 0, written
    assert written.count("MLLP listener stopped after") == 2, written
    assert "Traceback" not in written, written
    assert all(not Path(f"/proc/{pid}").exists() for pid in listeners)
    assert _refuses(port)
