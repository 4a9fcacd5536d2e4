"""Carnet served as in production, and what the machine says about it.

``carnet serve --workers N`` in a process of its own (PostgreSQL, the filesystem store, every
request authenticated, authorised and audited), its workers found in ``/proc``; their CPU time
from ``/proc/<pid>/stat``, their peak resident memory from ``VmHWM`` in ``/proc/<pid>/status``;
the PostgreSQL backends serving the benchmark's database likewise; the disk's fdatasync rate
from ``pg_test_fsync``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

_TICKS = os.sysconf("SC_CLK_TCK")
PG_TEST_FSYNC = Path("/usr/lib/postgresql/15/bin/pg_test_fsync")
_READY = "Application startup complete."


@dataclass
class Server:
    """A running ``carnet serve``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    workers: list[int] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> int:
        """Ctrl-C, as an operator would; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start(
    env: dict[str, str], *, workers: int, port: int, log: Path, without: Sequence[str] = ()
) -> Server:
    """Start ``carnet serve`` and wait for every worker; time to /health and to each worker.

    ``without`` names parts switched off for a comparison (``bench.national.unguarded``).
    """
    serve = ["bench.national.unguarded", "--without", ",".join(without)] if without else []
    command = [
        sys.executable,
        "-m",
        *(serve or ["carnet", "serve"]),
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    output = log.open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 — our own command
        command, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    server = Server(process=process, port=port, log=log)
    health: float | None = None
    ready: list[float] = []
    deadline = started + 120
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"carnet serve exited with {process.returncode}: {_tail(log)}")
        if health is None and _healthy(port):
            health = time.perf_counter() - started
        seen = log.read_text(errors="replace").count(_READY)
        while len(ready) < seen:
            ready.append(time.perf_counter() - started)
        if health is not None and len(ready) >= workers:
            break
        time.sleep(0.05)
    else:
        server.stop()
        raise RuntimeError(f"carnet serve did not start within 120 s: {_tail(log)}")
    server.workers = worker_pids(process.pid)
    server.figures = {
        "to_health_seconds": round(health or 0.0, 2),
        "workers_ready_seconds": [round(value, 2) for value in ready],
        "worker_pids": server.workers,
    }
    return server


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            body = json.load(answer)
            return bool(answer.status == 200 and body.get("status") == "ok")
    except (OSError, ValueError):
        return False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def worker_pids(parent: int) -> list[int]:
    """The worker processes uvicorn started, not the resource tracker nor the fork server.

    ``carnet serve`` forks its workers from a preloaded fork server (``carnet.web.serving``):
    they are the fork server's children. Spawned workers (``spawn_main``) are the parent's own.
    """
    children = _children()
    found = [pid for pid, cmdline in children.get(parent, []) if b"spawn_main" in cmdline]
    for pid, cmdline in children.get(parent, []):
        if b"forkserver" in cmdline:
            found.extend(worker for worker, _ in children.get(pid, []))
    return sorted(found) or [parent]


def _children() -> dict[int, list[tuple[int, bytes]]]:
    """Every process's children with their command lines, read from ``/proc``."""
    children: dict[int, list[tuple[int, bytes]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append((int(entry.name), cmdline))
    return children


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3, utime field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / _TICKS


def postgresql_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on the machine, including those already gone.

    The live processes' own time, plus the time of the children the postmaster has reaped
    (``cutime``/``cstime``): a backend that connects and exits between two readings still
    counts. Every database on the machine is included, not only the benchmark's.
    """
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, rest = stat.split("(", 1)[1].rsplit(")", 1)
        if name != "postgres":
            continue
        fields = rest.split()
        total += (int(fields[11]) + int(fields[12])) / _TICKS
        if fields[1] == "1" or _command(int(fields[1])) != "postgres":  # the postmaster
            total += (int(fields[13]) + int(fields[14])) / _TICKS
    return total


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def memory_mib(pid: int) -> dict[str, float]:
    """Peak (VmHWM) and current (VmRSS) resident memory of a process, in MiB."""
    found: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                found[name] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return {"peak": found.get("VmHWM", 0.0), "current": found.get("VmRSS", 0.0)}


def backends(libpq_url: str, database: str) -> tuple[list[int], int]:
    """The PostgreSQL server processes connected to ``database`` now, and how many sessions it
    has had since its statistics began (``pg_stat_database.sessions``, this probe's included)."""
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
        found = connection.execute(
            "SELECT coalesce(sessions, 0) FROM pg_stat_database WHERE datname = %s", (database,)
        ).fetchone()
    return [row[0] for row in rows], int(found[0]) if found else 0


def sizes(libpq_url: str) -> dict[str, int]:
    """Bytes on disk (tables with their indexes and TOAST) of what the benchmark grows."""
    tables = (
        "documents",
        "submission_sets",
        "patients",
        "patient_identifiers",
        "dossiers",
        "audit_events",
        "audit_chain_heads",
        "grants",
        "notifications",
    )
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        found = {
            table: connection.execute(
                "SELECT coalesce(pg_total_relation_size(to_regclass(%s)), 0)", (table,)
            ).fetchone()[0]  # type: ignore[index]
            for table in tables
        }
        found["database"] = connection.execute(
            "SELECT pg_database_size(current_database())"
        ).fetchone()[0]  # type: ignore[index]
        found["documents_rows"] = connection.execute("SELECT count(*) FROM documents").fetchone()[0]  # type: ignore[index]
    return found


def directory_size(root: Path) -> tuple[int, int]:
    """Bytes and files under ``root``."""
    total = files = 0
    for path, _, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(path, name)).st_size
            except OSError:
                continue
            files += 1
    return total, files


def fdatasync_rate(seconds: int, work: Path) -> dict[str, Any] | None:
    """``pg_test_fsync``'s fdatasync figure (one 8 kB write), or None without the binary."""
    if seconds <= 0 or not PG_TEST_FSYNC.exists():
        return None
    done = subprocess.run(  # noqa: S603 — a fixed binary, arguments built here
        [str(PG_TEST_FSYNC), "-s", str(seconds), "-f", str(work / "pg_test_fsync.out")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60 * seconds + 60,
    )
    match = re.search(r"^\s*fdatasync\s+([\d.]+) ops/sec\s+(\d+) usecs/op", done.stdout, re.M)
    if match is None:
        return {"error": (done.stdout + done.stderr)[-500:]}
    return {
        "fdatasync_ops_per_second": round(float(match.group(1))),
        "usecs_per_op": int(match.group(2)),
        "seconds_per_test": seconds,
    }
