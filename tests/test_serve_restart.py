"""`carnet serve --workers 4` is back within 10 s of a (re)start on a saturated machine (issue 15).

uvicorn's supervisor kills a worker that does not answer its health check in time; on a busy
2-core machine workers still importing Carnet were killed and replaced in a loop, and a restart
took 21 s to 5 minutes. Here every core is kept busy by a CPU burner while Carnet starts, twice
(start, then restart after SIGTERM), and each time all four workers must be serving, none killed
or replaced, within the deadline.

The deadline is 10 s (issue 15's acceptance) on a machine as fast as the one it was set on, and
scales with a slower one: what a start costs is, on its critical path, ONE import of Carnet (the
fork server's; ``carnet.web.serving``), so the deadline is at least 1.5 times that import timed
here, under the same burners. A CI machine a third slower then has a deadline a third longer,
while the fault the test is for still fails it: four workers each importing Carnet (uvicorn's
own spawn) take about twice one import (11.7 to 13.0 s against 5.8 to 6.9 s on the 2-core
machine), and killed or replaced workers fail at once. ``bench/RESULTS.md`` gives the figures.
A machine already busy with other work can still slow one start past it, so each start may be
tried once more when its only fault is the time.
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
# The deadline is at least this many times one import of Carnet on the same busy machine.
IMPORTS_PER_START = 1.5
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


def _one_import_seconds(env: dict[str, str]) -> float:
    """How long importing the application takes here, now: the mean of two imports."""
    times = []
    for _ in range(2):
        began = time.monotonic()
        subprocess.run([sys.executable, "-c", "import carnet.app"], env=env, check=True)
        times.append(time.monotonic() - began)
    return sum(times) / len(times)


def _start_within_deadline(env: dict[str, str], port: int, what: str, deadline: float) -> None:
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
        if elapsed <= deadline:
            return
        if attempt == 2:
            pytest.fail(
                f"{what}: workers serving after {elapsed:.1f} s (deadline {deadline:.1f} s)"
                f"\n{start.log()}"
            )


def test_four_workers_serve_within_10_s_of_a_start_and_a_restart_on_a_busy_machine(
    tmp_path: Path, saturated: None
) -> None:
    env = {
        **os.environ,
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_JOBS_INTERVAL_SECONDS": "0",
    }
    subprocess.run([*_carnet(), "db", "upgrade"], env=env, check=True, capture_output=True)
    one_import = _one_import_seconds(env)
    deadline = max(DEADLINE_SECONDS, IMPORTS_PER_START * one_import)
    print(f"one import of Carnet: {one_import:.1f} s; deadline {deadline:.1f} s")
    port = _free_port()
    _start_within_deadline(env, port, "start", deadline)
    _start_within_deadline(env, port, "restart", deadline)
