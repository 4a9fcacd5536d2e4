"""What the MLLP tests share: a listener running in a thread, and a laboratory's plain client."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from types import TracebackType

from carnet.mllp.framing import END_BLOCK, frame
from carnet.mllp.listener import Handler, Listener, ListenerLimits

LIMITS = ListenerLimits(max_message_bytes=64 * 1024, idle_seconds=5.0, threads=8)


def ack_of(raw: bytes, peer: object) -> bytes:
    """A handler that answers AA with the message's own bytes after MSA|AA| (for checking)."""
    del peer
    return b"MSA|AA|" + raw


class RunningListener:
    """A ``Listener`` on 127.0.0.1 (a free port), asyncio's loop in a thread of the test."""

    def __init__(
        self,
        handler: Handler = ack_of,
        limits: ListenerLimits = LIMITS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.listener = Listener(handler, limits, ssl_context=ssl_context)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._closed = False

    def __enter__(self) -> RunningListener:
        self._thread.start()
        self._call(self.listener.start("127.0.0.1", 0))
        self.port = self.listener.port
        return self

    def close(self, grace: float = 5.0) -> None:
        """Stop it as SIGTERM would (``Listener.close``), waiting for its end."""
        if not self._closed:
            self._closed = True
            self._call(self.listener.close(grace), timeout=grace + 20)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def _call(self, coroutine: object, timeout: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)  # type: ignore[arg-type]


def connect(port: int, timeout: float = 10.0) -> socket.socket:
    """A TCP connection to the listener, as a laboratory's interface engine opens it."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_frame(connection: socket.socket) -> bytes | None:
    """The next framed answer, without its blocks; None if the listener closed the connection."""
    received = b""
    while not received.endswith(END_BLOCK):
        chunk = connection.recv(65536)
        if not chunk:
            return None
        received += chunk
    assert received.startswith(b"\x0b"), received
    return received[1 : -len(END_BLOCK)]


def exchange(connection: socket.socket, message: bytes) -> bytes | None:
    """Send one framed message and read its framed answer."""
    connection.sendall(frame(message))
    return read_frame(connection)


def closed_by_peer(connection: socket.socket) -> bool:
    """Whether the listener has closed (or reset) the connection."""
    try:
        return connection.recv(65536) == b""
    except ConnectionResetError:
        return True
