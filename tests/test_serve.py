"""`carnet serve` as an operator runs it: a real process, answering, stopped by Ctrl-C."""

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
