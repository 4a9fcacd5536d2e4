"""`carnet serve` as an operator runs it: a real process, answering, stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CARNET = [sys.executable, "-m", "carnet"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serves_health_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "CARNET_VAR_DIR": str(tmp_path / "var")}
    subprocess.run([*CARNET, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = _free_port()
    server = subprocess.Popen(
        [*CARNET, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        body = _wait_for_health(f"http://127.0.0.1:{port}/health", server)
        assert body["status"] == "ok"
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=20)
    assert server.returncode == 0, output.decode()
    assert b"Traceback" not in output
    assert b"Shutting down" in output or b"Finished server process" in output


def _wait_for_health(url: str, server: subprocess.Popen[bytes]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                result: dict[str, object] = json.load(response)
                return result
        except OSError:
            time.sleep(0.2)
    raise AssertionError("server did not answer /health within 30 s")


def test_workers_log_like_one_process_and_the_access_log_keeps_no_query(tmp_path: Path) -> None:
    """With ``--workers 2``, each worker logs Carnet's INFO lines with level and logger, and
    each request as method, path, status and time: no query value (identifiers, names)."""
    env = {**os.environ, "CARNET_VAR_DIR": str(tmp_path / "var")}
    subprocess.run([*CARNET, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*CARNET, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_health(f"http://127.0.0.1:{port}/health", server)
            search = urllib.request.Request(
                f"http://127.0.0.1:{port}/fhir/Patient"
                "?identifier=urn%3Aoid%3A1.2.250%7C1850375123456&family=Secretname&birthdate=1985-03-07",
                headers={"Authorization": "Bearer forged.not-a.token"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(search, timeout=5)
            assert refused.value.code == 401
            # The error holds the response's socket: closed here, not by the GC in a later test.
            refused.value.close()
            deadline = time.monotonic() + 10
            while b"carnet.web.access_log: GET /fhir/Patient" not in log.read_bytes():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=20)
    written = log.read_text()
    assert "INFO carnet.web.authentication: bearer token refused: " in written, written
    assert "INFO carnet.web.access_log: GET /fhir/Patient 401 " in written, written
    assert "INFO carnet.web.access_log: GET /health 200 " in written, written
    for value in ("1850375123456", "Secretname", "1985-03-07", "identifier"):
        assert value not in written, written
    assert "Traceback" not in written
