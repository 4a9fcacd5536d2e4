"""A closed-loop HTTP/1.1 load generator: C keep-alive connections, each sending its next request
as soon as the previous answer has been read, for D seconds.

Plain asyncio streams and a minimal HTTP/1.1 reader (Content-Length and chunked bodies): no
dependency, and about 30-60 µs of client CPU per request — what it costs is measured
(``client_cpu_percent``) and reported beside the server's, so a client-bound run shows.
Latency is from writing the request to reading the last byte of the answer. Only requests that
start after the warm-up and end before the deadline are counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """One request, ready to send: its head (request line and headers) and body."""

    kind: str
    head: bytes
    body: bytes = b""
    expect: int = 200


def make_request(
    kind: str,
    method: str,
    path: str,
    *,
    token: str,
    body: bytes = b"",
    content_type: str | None = None,
    accept: str | None = None,
) -> Request:
    """A request with its bearer token, keep-alive, and Content-Length when it has a body."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {token}"]
    if accept:
        lines.append(f"Accept: {accept}")
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Type: {content_type or 'application/octet-stream'}")
        lines.append(f"Content-Length: {len(body)}")
    return Request(kind=kind, head=("\r\n".join(lines) + "\r\n\r\n").encode(), body=body)


@dataclass
class Answer:
    """A response's status, headers and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: Request) -> Answer:
        """Send ``request`` and read its whole answer; reconnects when the server closed."""
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=2**22
            )
        self.writer.write(request.head + request.body)
        await self.writer.drain()
        answer = await _read_answer(self.reader)
        if answer.headers.get("connection", "").lower() == "close":
            await self.close()
        return answer

    async def close(self) -> None:
        """Close the connection (quietly if it is already gone)."""
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size + 2))
        body = b"".join(part[:-2] for part in parts)
    else:
        body = b""
    return Answer(status=status, headers=headers, body=body)


@dataclass
class Outcome:
    """What one workload measured."""

    duration: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    warmup_errors: Counter[str] = field(default_factory=Counter)
    client_cpu_seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Throughput, latency percentiles (ms) and errors, overall and per request kind."""
        every = sorted(value for values in self.latencies.values() for value in values)
        figures = _figures(every, self.duration)
        figures["errors"] = sum(self.errors.values())
        figures["error_kinds"] = dict(self.errors)
        figures["warmup_errors"] = sum(self.warmup_errors.values())
        figures["client_cpu_percent"] = round(100 * self.client_cpu_seconds / self.duration, 1)
        if len(self.latencies) > 1:
            figures["by_kind"] = {
                kind: _figures(sorted(values), self.duration)
                for kind, values in sorted(self.latencies.items())
            }
        return figures


def _figures(latencies: list[float], duration: float) -> dict[str, Any]:
    def quantile(q: float) -> float | None:
        if not latencies:
            return None
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / duration, 1),
        "p50_ms": quantile(0.50),
        "p95_ms": quantile(0.95),
        "p99_ms": quantile(0.99),
        "max_ms": round(1000 * latencies[-1], 2) if latencies else None,
        "mean_ms": round(1000 * sum(latencies) / len(latencies), 2) if latencies else None,
    }


async def closed_loop(
    port: int,
    next_request: Callable[[random.Random], Request],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    seed: int,
    on_begin: Callable[[], None] = lambda: None,
    on_end: Callable[[], None] = lambda: None,
) -> Outcome:
    """Run ``concurrency`` connections for ``warmup`` + ``duration`` seconds; the outcome."""
    outcome = Outcome(duration=duration)
    loop = asyncio.get_running_loop()
    begin = loop.time() + warmup
    end = begin + duration
    counting = {"cpu": 0.0}

    # Connections arrive one by one during the warm-up, as clients do, rather than in one burst
    # that a single worker's accept loop would take whole (they share one listening socket).
    stagger = min(0.1, warmup / 2 / max(1, concurrency))

    async def user(number: int) -> None:
        rng = random.Random(seed * 1000 + number)  # noqa: S311 — load, not secrets
        connection = Connection("127.0.0.1", port)
        await asyncio.sleep(number * stagger)
        try:
            while (now := loop.time()) < end:
                request = next_request(rng)
                sent = time.perf_counter()
                try:
                    answer = await asyncio.wait_for(connection.send(request), timeout=60)
                    failure = None if answer.status == request.expect else str(answer.status)
                except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                    failure = type(error).__name__
                    await connection.close()
                took = time.perf_counter() - sent
                counted = now >= begin and loop.time() <= end
                if failure is not None:
                    errors = outcome.errors if counted else outcome.warmup_errors
                    errors[f"{request.kind}:{failure}"] += 1
                elif counted:
                    outcome.latencies.setdefault(request.kind, []).append(took)
        finally:
            await connection.close()

    async def meter() -> None:
        await asyncio.sleep(max(0.0, begin - loop.time()))
        on_begin()
        counting["cpu"] = -_cpu()
        await asyncio.sleep(max(0.0, end - loop.time()))
        counting["cpu"] += _cpu()
        on_end()

    await asyncio.gather(meter(), *(user(number) for number in range(concurrency)))
    outcome.client_cpu_seconds = counting["cpu"]
    return outcome


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def each_once(port: int, requests: Sequence[Request], *, concurrency: int) -> int:
    """Send every request once over ``concurrency`` keep-alive connections; how many failed."""
    pending = iter(requests)
    failed = 0

    async def user() -> None:
        nonlocal failed
        connection = Connection("127.0.0.1", port)
        try:
            # One iterator shared by every connection: each takes the next request left.
            for request in pending:
                answer = await asyncio.wait_for(connection.send(request), timeout=60)
                failed += answer.status != request.expect
        finally:
            await connection.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    return failed


async def one(port: int, request: Request) -> Answer:
    """Send one request on a connection of its own (for the checks before a run)."""
    connection = Connection("127.0.0.1", port)
    try:
        return await connection.send(request)
    finally:
        await connection.close()
