"""The MLLP listener over real sockets: answers, ordering, concurrency, limits, faults, shutdown.

The handler here is a stand-in (the laboratory intake has its own tests and the crash test
drives both): what is checked is the transport's promise around it.
"""

from __future__ import annotations

import random
import socket
import threading
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carnet.mllp.framing import frame
from carnet.mllp.handling import Peer
from carnet.mllp.listener import ListenerLimits
from mllp.wire import RunningListener, closed_by_peer, connect, exchange, read_frame


class TestAnswers:
    def test_each_message_is_answered_with_the_handlers_ack_framed(self) -> None:
        with RunningListener() as running, connect(running.port) as laboratory:
            assert exchange(laboratory, b"MSH|one") == b"MSA|AA|MSH|one"
            assert exchange(laboratory, b"MSH|two") == b"MSA|AA|MSH|two"

    def test_the_handler_is_told_the_peers_address_and_no_certificate_without_tls(
        self,
    ) -> None:
        peers: list[Peer] = []

        def handler(raw: bytes, peer: Peer) -> bytes:
            peers.append(peer)
            return b"MSA|AA"

        with RunningListener(handler) as running, connect(running.port) as laboratory:
            exchange(laboratory, b"MSH|x")
        assert peers == [Peer(address="127.0.0.1", certificate_sha256=None)]

    def test_frames_sent_without_waiting_are_handled_and_answered_in_order(self) -> None:
        seen: list[bytes] = []

        def slow_at_random(raw: bytes, peer: Peer) -> bytes:
            time.sleep(random.uniform(0, 0.01))
            seen.append(raw)
            return b"ACK " + raw

        sent = [f"MSH|{number}".encode() for number in range(30)]
        with RunningListener(slow_at_random) as running, connect(running.port) as laboratory:
            laboratory.sendall(b"".join(frame(message) for message in sent))
            answers = [read_frame(laboratory) for _ in sent]
        assert seen == sent
        assert answers == [b"ACK " + message for message in sent]

    def test_connections_are_served_concurrently(self) -> None:
        # Four senders each hold a handler thread until all four are inside: one connection at
        # a time would never get past the barrier.
        barrier = threading.Barrier(4, timeout=5)

        def waits_for_the_others(raw: bytes, peer: Peer) -> bytes:
            barrier.wait()
            return b"MSA|AA"

        with RunningListener(waits_for_the_others) as running:
            connections = [connect(running.port) for _ in range(4)]
            for connection in connections:
                connection.sendall(frame(b"MSH|x"))
            answers = [read_frame(connection) for connection in connections]
            for connection in connections:
                connection.close()
        assert answers == [b"MSA|AA"] * 4


class TestRefusals:
    def test_an_oversized_frame_closes_the_connection_and_the_next_is_served(self) -> None:
        limits = ListenerLimits(max_message_bytes=1024, idle_seconds=5, threads=2)
        handled: list[bytes] = []

        def handler(raw: bytes, peer: Peer) -> bytes:
            handled.append(raw)
            return b"MSA|AA"

        with RunningListener(handler, limits) as running:
            with connect(running.port) as laboratory:
                laboratory.sendall(b"\x0b" + b"x" * 2048)
                assert closed_by_peer(laboratory)
            with connect(running.port) as laboratory:
                assert exchange(laboratory, b"MSH|fits") == b"MSA|AA"
        assert handled == [b"MSH|fits"]

    def test_a_silent_connection_is_closed_after_the_idle_time(self) -> None:
        limits = ListenerLimits(max_message_bytes=1024, idle_seconds=0.3, threads=2)
        with RunningListener(limits=limits) as running, connect(running.port) as laboratory:
            started = time.monotonic()
            assert closed_by_peer(laboratory)
            assert time.monotonic() - started < 3

    def test_a_failing_handler_gets_no_ack_and_the_listener_goes_on(self) -> None:
        def fails_once(raw: bytes, peer: Peer) -> bytes:
            if raw == b"MSH|boom":
                raise RuntimeError("the database went away")
            return b"MSA|AA"

        with RunningListener(fails_once) as running:
            with connect(running.port) as laboratory:
                assert exchange(laboratory, b"MSH|boom") is None
            with connect(running.port) as laboratory:
                assert exchange(laboratory, b"MSH|fine") == b"MSA|AA"


class TestShutdown:
    def test_a_message_being_stored_is_answered_and_idle_connections_are_closed(self) -> None:
        inside = threading.Event()

        def slow(raw: bytes, peer: Peer) -> bytes:
            inside.set()
            time.sleep(0.5)
            return b"MSA|AA|" + raw

        with RunningListener(slow) as running:
            idle = connect(running.port)
            busy = connect(running.port)
            busy.sendall(frame(b"MSH|late"))
            assert inside.wait(5)
            running.close(grace=5)
            assert read_frame(busy) == b"MSA|AA|MSH|late"
            assert closed_by_peer(busy)
            assert closed_by_peer(idle)
            idle.close()
            busy.close()
            try:
                connect(running.port, timeout=1).close()
                refused = False
            except OSError:
                refused = True
            assert refused, "the listener still accepts connections after close"


# --- Fuzzing a live listener: whatever a peer sends, the listener keeps serving the next one.

_listener: RunningListener | None = None


def _live() -> RunningListener:
    global _listener  # noqa: PLW0603 — one listener for every example (a port per example is slow)
    if _listener is None:
        limits = ListenerLimits(max_message_bytes=512, idle_seconds=2, threads=4)
        _listener = RunningListener(limits=limits).__enter__()
    return _listener


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(chunks=st.lists(st.binary(min_size=1, max_size=700), min_size=1, max_size=6))
def test_fuzz_a_live_listener_fed_random_bytes_keeps_serving(chunks: list[bytes]) -> None:
    running = _live()
    with connect(running.port, timeout=5) as hostile:
        try:
            for chunk in chunks:
                hostile.sendall(chunk)
            hostile.shutdown(socket.SHUT_WR)
            # Whatever came back is framed answers or nothing; the listener then closes.
            hostile.settimeout(5)
            while hostile.recv(65536):
                pass
        except OSError:
            pass  # closed on us mid-send: a refusal, which is allowed
    with connect(running.port, timeout=5) as laboratory:
        assert exchange(laboratory, b"MSH|still-here") == b"MSA|AA|MSH|still-here"


def teardown_module() -> None:
    if _listener is not None:
        _listener.__exit__(None, None, None)
