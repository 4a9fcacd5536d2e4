"""`carnet serve --workers 4` is back within 10 s of a (re)start on a saturated machine (issue 15).

uvicorn's supervisor kills a worker that does not answer its health check in time; on a busy
2-core machine workers still importing Carnet were killed and replaced in a loop, and a restart
took 21 s to 5 minutes. Here every core is kept busy by a CPU burner while Carnet starts, twice
(start, then restart after SIGTERM), and each time all four workers must be serving within 10 s,
none killed or replaced.

The 10 s is the acceptance and is asserted as such. A machine already busy with other work
(a parallel test run) can still slow one start past it, so each start may be tried once more when
its only fault is the time; a killed or replaced worker fails at once, as does a second miss.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

WORKERS = 4
DEADLINE_SECONDS = 10.0
# How long a start is watched at most: a slow start is then reported with its log.
WATCH_SECONDS = 30.0
STARTED = "Application startup complete"
# What uvicorn's supervisor logs when it kills, replaces or gives up on a worker.
REPLACED = ("died", "Terminated child process", "was not ready in time", "failed to start")


def _carnet() -> list[str]:
    """The console script operators run (its workers are spawned from it), else the module."""
    script = Path(sys.executable).with_name("carnet")
    return [str(script)] if script.exists() else [sys.executable, "-m", "carnet"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class _Start:
    """One run of the server: its log lines, timed from the start of the command."""

    process: subprocess.Popen[str]
    began: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    all_started: threading.Event = field(default_factory=threading.Event)
    reader: threading.Thread | None = None

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((time.monotonic() - self.began, line.rstrip()))
            if sum(STARTED in text for _, text in self.lines) >= WORKERS:
                self.all_started.set()

    def started_after(self) -> float | None:
        """Seconds until the last worker finished starting, None if not all did."""
        times = [at for at, text in self.lines if STARTED in text]
        return times[WORKERS - 1] if len(times) >= WORKERS else None

    def replaced(self) -> list[str]:
        return [text for _, text in self.lines if any(word in text for word in REPLACED)]

    def log(self) -> str:
        return "\n".join(f"{at:6.2f} {text}" for at, text in self.lines)


@pytest.fixture
def saturated() -> Iterator[None]:
    """Every core kept busy by a Python busy loop while the test runs."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(max(2, os.cpu_count() or 2))
    ]
    time.sleep(0.5)  # under way before Carnet starts
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def _serve(env: dict[str, str], port: int) -> _Start:
    process = subprocess.Popen(
        [*_carnet(), "serve", "--port", str(port), "--workers", str(WORKERS)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    start = _Start(process, time.monotonic())
    start.reader = threading.Thread(target=start.read, daemon=True)
    start.reader.start()
    start.all_started.wait(WATCH_SECONDS)
    return start


def _health(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        status: int = response.status
        return status


def _stop(start: _Start) -> None:
    if start.process.poll() is None:
        start.process.send_signal(signal.SIGTERM)
    start.process.wait(timeout=30)
    assert start.reader is not None
    start.reader.join(timeout=10)
    assert start.process.stdout is not None
    start.process.stdout.close()


def _start_within_deadline(env: dict[str, str], port: int, what: str) -> None:
    """Start the server; all workers serving within the deadline, none replaced; then stop."""
    for attempt in (1, 2):
        start = _serve(env, port)
        try:
            elapsed = start.started_after()
            replaced = start.replaced()
            assert not replaced, f"{what}: workers replaced {replaced}\n{start.log()}"
            assert elapsed is not None, f"{what}: not all workers started\n{start.log()}"
            assert _health(port) == 200
            # Watch a little longer: a worker replaced just after starting is a failure too.
            time.sleep(1.0)
            assert not start.replaced(), f"{what}: a worker was replaced\n{start.log()}"
        finally:
            _stop(start)
        print(f"{what}, attempt {attempt}: {WORKERS} workers serving after {elapsed:.1f} s")
        if elapsed <= DEADLINE_SECONDS:
            return
        if attempt == 2:
            pytest.fail(f"{what}: workers serving after {elapsed:.1f} s\n{start.log()}")


def test_four_workers_serve_within_10_s_of_a_start_and_a_restart_on_a_busy_machine(
    tmp_path: Path, saturated: None
) -> None:
    env = {
        **os.environ,
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_JOBS_INTERVAL_SECONDS": "0",
    }
    subprocess.run([*_carnet(), "db", "upgrade"], env=env, check=True, capture_output=True)
    port = _free_port()
    _start_within_deadline(env, port, "start")
    _start_within_deadline(env, port, "restart")
