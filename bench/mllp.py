"""MLLP messages per second with durable ACK: laboratories sending ORU^R01 to ``carnet mllp serve``.

A throwaway PostgreSQL database (``CARNET_TEST_POSTGRES_URL``'s server), migrated; patients
created through ``patients.service`` and one laboratory registered through ``feeds.service``;
then the real ``carnet mllp serve`` in its own process and ``--senders`` connections in this
one, each sending its share of the messages one at a time and waiting for each ACK (the
original acknowledgement mode laboratories use: a closed loop). Every message is a distinct
ORU^R01 (one report, two results) for one of the patients, so each ACK is one committed
document, its results, its audit event and the remembered control id.

Reported: messages/s over the measured messages (after ``--warmup`` ones), ACK latency
percentiles, the listener's CPU and PostgreSQL's (every PostgreSQL process on the machine), and
a check that every message was stored once. No timing is asserted anywhere.

    .venv/bin/python -m bench.mllp                      # 4 senders, 2,000 messages
    .venv/bin/python -m bench.mllp --senders 16 --messages 4000 --threads 16
    .venv/bin/python -m bench.mllp --profile            # the handler in-process under cProfile
    .venv/bin/python -m bench.mllp --transport-only     # the listener with a canned ACK, no storage

Writes ``bench/results/mllp-<date>[-<tag>].json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import io
import json
import os
import platform as host
import pstats
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.databases import RESULTS, throwaway_postgres
from bench.national.server import cpu_seconds, memory_mib, postgresql_cpu_seconds
from carnet import schema
from carnet.clock import SystemClock
from carnet.db import make_engine, unit_of_work
from carnet.directory import service as directory
from carnet.directory.models import OrganisationKind
from carnet.feeds import service as feeds
from carnet.feeds.models import FeedMessage
from carnet.mllp import handling
from carnet.mllp.framing import END_BLOCK, frame
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.models import Sex
from carnet.platform import Platform, build_platform
from carnet.settings import Settings

FACILITY = "Bench Lab"
REPORT = (
    "MSH|^~\\&|LIS|{facility}|CARNET|CARNET|20260520110702+0200||ORU^R01^ORU_R01|{control}|P|2.5.1\r"
    "PID|1||{matricule}^^^CNS^NI||Weber^Lea||19800517|F\r"
    "ORC|RE||ORD-{control}\r"
    "OBR|1|PLC-{control}|ORD-{control}|10368-9^Lead BldC-mCnc^LN|||20260515103000+0200|||||||||||"
    "||||20260516180000+0200|||F\r"
    "OBX|1|NM|10368-9^Lead BldC-mCnc^LN||{value}|ug/dL^microgram per deciliter^UCUM|<9|H|||F|||"
    "20260515103000+0200\r"
    "OBX|2|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||F|||20260515103000+0200\r"
)


def main() -> None:
    """Parse the options, run the benchmark, print and save the result."""
    parser = argparse.ArgumentParser(prog="python -m bench.mllp", description=__doc__)
    parser.add_argument("--senders", type=int, default=4, help="concurrent connections")
    parser.add_argument("--messages", type=int, default=2000, help="messages measured")
    parser.add_argument("--warmup", type=int, default=100, help="messages sent before timing")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument(
        "--threads", type=int, default=8, help="handler threads (CARNET_DATABASE_POOL_SIZE)"
    )
    parser.add_argument(
        "--processes", type=int, default=1, help="listener processes (CARNET_MLLP_PROCESSES)"
    )
    parser.add_argument("--tag", default="")
    parser.add_argument(
        "--profile", action="store_true", help="profile the handler in-process (no listener)"
    )
    parser.add_argument(
        "--transport-only",
        action="store_true",
        help="a listener answering a canned AA without storing: what framing, the event loop "
        "and the thread hand-off cost",
    )
    parser.add_argument("--serve-canned", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_canned:
        _serve_canned(options.serve_canned, options.threads)
        return
    if options.transport_only:
        _report(_measure_transport(options), options)
        return
    with (
        tempfile.TemporaryDirectory(prefix="carnet-bench-mllp-") as folder,
        throwaway_postgres() as url,
    ):
        work = Path(folder)
        platform, matricules = _populated(url, work, options.patients)
        try:
            if options.profile:
                _profile(platform, matricules, options.messages)
                return
            result = _measure(platform, matricules, options)
        finally:
            platform.close()
    _report(result, options)


def _report(result: dict[str, Any], options: argparse.Namespace) -> None:
    result["options"] = vars(options)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    name = f"mllp-{today}{'-' + options.tag if options.tag else ''}.json"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(_markdown(result))
    if result["not_accepted"]:
        sys.exit(1)


def _populated(url: str, work: Path, count: int) -> tuple[Platform, list[str]]:
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    platform = build_platform(Settings(var_dir=work / "var", database_url=url), clock=SystemClock())
    with unit_of_work(platform.sessions) as session:
        clock = platform.clock
        laboratory = directory.register_organisation(
            session,
            identifier_system=directory.LU_ORGANISATION,
            identifier_value="ORG-BENCH-LAB",
            name="Laboratoire de mesure",
            kind=OrganisationKind.LABORATORY,
            clock=clock,
        )
        feeds.register(
            session,
            organisation_id=laboratory.id,
            sending_facility=FACILITY,
            clock=clock,
            authorities={"CNS": "lu-matricule"},
        )
        matricules = []
        for number in range(count):
            birth = dt.date(1950, 1, 1) + dt.timedelta(days=97 * number)
            matricule = identifiers.lu_matricule(birth, number % 1000)
            patients.create_dossier(
                session,
                identifiers_=[(identifiers.LU_MATRICULE, matricule)],
                demographics=patients.Demographics(
                    family="Weber", given="Lea", birth_date=birth, sex=Sex.FEMALE
                ),
                clock=clock,
            )
            matricules.append(matricule)
    return platform, matricules


def _messages(matricules: list[str], start: int, count: int) -> list[tuple[str, bytes]]:
    return [
        (
            f"BENCH-{number}",
            REPORT.format(
                facility=FACILITY,
                control=f"BENCH-{number}",
                matricule=matricules[number % len(matricules)],
                value=str(10 + number % 90),
            ).encode(),
        )
        for number in range(start, start + count)
    ]


def _measure(
    platform: Platform, matricules: list[str], options: argparse.Namespace
) -> dict[str, Any]:
    port = _free_port()
    log = Path(platform.settings.var_dir) / "listener.log"
    server = _listener(platform, port, options.threads, log, options.processes)
    try:
        warmup = _messages(matricules, 0, options.warmup)
        _drive(port, warmup, options.senders)
        measured = _messages(matricules, options.warmup, options.messages)
        listeners = _process_tree(server.pid)
        cpu_before = sum(map(cpu_seconds, listeners)), postgresql_cpu_seconds()
        started = time.perf_counter()
        answers = _drive(port, measured, options.senders)
        elapsed = time.perf_counter() - started
        cpu_after = sum(map(cpu_seconds, listeners)), postgresql_cpu_seconds()
        memory = max((memory_mib(pid) for pid in listeners), key=lambda m: m["peak"])
    finally:
        server.terminate()
        server.wait(30)
    with unit_of_work(platform.sessions) as session:
        remembered = session.scalar(select(func.count()).select_from(FeedMessage)) or 0
    latencies = sorted(latency for _code, latency in answers.values())
    codes = [code for code, _latency in answers.values()]
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cpus": os.cpu_count(), "python": host.python_version()},
        "messages": len(measured),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(measured) / elapsed, 1),
        "latency_ms": _percentiles(latencies),
        "not_accepted": len(measured) - codes.count("AA"),
        "remembered_after": remembered,
        "listener_cpu_percent": round((cpu_after[0] - cpu_before[0]) / elapsed * 100, 1),
        "postgresql_cpu_percent": round((cpu_after[1] - cpu_before[1]) / elapsed * 100, 1),
        "listener_peak_mib": memory["peak"],
        "load_average_before": os.getloadavg()[0],
    }


def _measure_transport(options: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="carnet-bench-mllp-") as folder:
        log = Path(folder) / "listener.log"
        command = [sys.executable, "-m", "bench.mllp", "--serve-canned", str(port)]
        server = _started(
            [*command, "--threads", str(options.threads)], dict(os.environ), log, port
        )
        try:
            matricules = ["0"] * 10
            _drive(port, _messages(matricules, 0, options.warmup), options.senders)
            measured = _messages(matricules, options.warmup, options.messages)
            cpu_before = cpu_seconds(server.pid)
            started = time.perf_counter()
            answers = _drive(port, measured, options.senders)
            elapsed = time.perf_counter() - started
            cpu_after = cpu_seconds(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    latencies = sorted(latency for _code, latency in answers.values())
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "mode": "transport only (canned AA, nothing stored)",
        "messages": len(measured),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(measured) / elapsed, 1),
        "latency_ms": _percentiles(latencies),
        "not_accepted": sum(code != "AA" for code, _latency in answers.values()),
        "listener_cpu_percent": round((cpu_after - cpu_before) / elapsed * 100, 1),
        "postgresql_cpu_percent": 0.0,
        "load_average_before": os.getloadavg()[0],
    }


def _serve_canned(port: int, threads: int) -> None:
    """``carnet mllp serve``'s listener, answering every message AA without storing anything."""
    from carnet.mllp.listener import ListenerLimits, run  # noqa: PLC0415

    def canned(raw: bytes, peer: handling.Peer) -> bytes:
        control = raw.split(b"\r", 1)[0].split(b"|")[9]
        return b"MSH|^~\\&|CARNET|CARNET|||||ACK|1|P|2.5.1\rMSA|AA|" + control + b"\r"

    limits = ListenerLimits(max_message_bytes=4 * 1024 * 1024, idle_seconds=60, threads=threads)
    run(canned, limits, host="127.0.0.1", port=port)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    return {
        name: round(latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000, 1)
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))
    }


def _process_tree(pid: int) -> list[int]:
    """The process and its descendants (the listener processes of ``--processes``)."""
    found = [pid]
    # Each thread lists the children it started (the supervisor starts them from threads).
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += _process_tree(int(child))
    return found


def _listener(
    platform: Platform, port: int, threads: int, log: Path, processes: int = 1
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CARNET_VAR_DIR": str(platform.settings.var_dir),
        "CARNET_DATABASE_URL": platform.settings.effective_database_url,
        "CARNET_DATABASE_POOL_SIZE": str(threads),
    }
    command = [sys.executable, "-m", "carnet", "mllp", "serve", "--port", str(port)]
    command += ["--processes", str(processes)]
    return _started(command, env, log, port)


def _started(
    command: list[str], env: dict[str, str], log: Path, port: int
) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        server = subprocess.Popen(  # noqa: S603 — this interpreter, our own command
            command, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the listener exited: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("the listener did not start within 60 s")


def _drive(
    port: int, messages: list[tuple[str, bytes]], senders: int
) -> dict[str, tuple[str, float]]:
    """Send ``messages`` over ``senders`` connections, each waiting for every ACK."""
    answers: dict[str, tuple[str, float]] = {}
    threads = [
        threading.Thread(target=_send, args=(port, messages[index::senders], answers))
        for index in range(senders)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _send(
    port: int, messages: list[tuple[str, bytes]], answers: dict[str, tuple[str, float]]
) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for control_id, message in messages:
            started = time.perf_counter()
            connection.sendall(frame(message))
            received = b""
            while not received.endswith(END_BLOCK):
                chunk = connection.recv(65536)
                if not chunk:
                    raise SystemExit(f"the listener closed the connection at {control_id}")
                received += chunk
            msa = next(s for s in received[1:-2].decode().split("\r") if s.startswith("MSA|"))
            answers[control_id] = (msa.split("|")[1], time.perf_counter() - started)


def _profile(platform: Platform, matricules: list[str], count: int) -> None:
    """The handler alone, in this process, one message after another, under cProfile."""
    handle = functools.partial(handling.handle, platform)
    peer = handling.Peer(address="127.0.0.1")
    messages = _messages(matricules, 0, count)
    for _control, message in messages[:50]:
        handle(message, peer)
    # CPU time, not wall time: what the listener's process spends per message, whatever the
    # machine's load and PostgreSQL's answers (waiting for them is not counted).
    profiler = cProfile.Profile(time.process_time)
    cpu_started = time.process_time()
    started = time.perf_counter()
    profiler.enable()
    for _control, message in messages[50:]:
        handle(message, peer)
    profiler.disable()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(
        f"{count - 50} messages in {elapsed:.2f} s ({(count - 50) / elapsed:.1f}/s in one "
        f"thread), {cpu / (count - 50) * 1000:.1f} ms of CPU each (profiler included)"
    )
    stats = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    by_place: dict[str, float] = {}
    for (filename, _line, _name), entry in stats.stats.items():  # type: ignore[attr-defined]
        by_place[_place(filename)] = by_place.get(_place(filename), 0.0) + entry[2]
    print("Own CPU time by package (tottime), % of the profiled CPU time:")
    for place, seconds in sorted(by_place.items(), key=lambda item: -item[1])[:20]:
        print(f"  {place:<40} {seconds / total * 100:5.1f} %")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(45)
    print(text.getvalue())


def _place(filename: str) -> str:
    """``carnet.<package>``, a third-party distribution's name, or the standard library."""
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    if "/carnet/" in filename:
        parts = filename.split("/carnet/", 1)[1].split("/")
        return "carnet." + (parts[0] if len(parts) > 1 else parts[0].removesuffix(".py"))
    return "(standard library, C code)"


def _markdown(result: dict[str, Any]) -> str:
    options = result["options"]
    latency = result["latency_ms"]
    return "\n".join(
        [
            "| senders | processes | threads | messages | messages/s | p50 ms | p95 ms | p99 ms "
            "| not AA | listener CPU % | PostgreSQL CPU % |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| {options['senders']} | {options.get('processes', 1)} | {options['threads']} "
            f"| {result['messages']} "
            f"| {result['messages_per_second']} | {latency['p50']} | {latency['p95']} "
            f"| {latency['p99']} | {result['not_accepted']} | {result['listener_cpu_percent']} "
            f"| {result['postgresql_cpu_percent']} |",
        ]
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 — the developer's git
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
