"""The MLLP listener: many laboratory connections, one message at a time on each, ACK when durable.

An asyncio server reads each connection through ``framing.FrameDecoder`` and hands every whole
message to the handler (``carnet.mllp.handling.handle`` bound to the platform) in a thread of a
bounded pool: the handler blocks on PostgreSQL, and the pool's size (the platform's database
pool size) is how many messages are stored at once, whatever the number of connections.

Ordering: a connection's messages are handled strictly one after the other, each answered before
the next is handed over, even when a sender writes several frames without waiting. HL7 v2's
original acknowledgement mode relies on it (a result and its correction must be stored in the
order sent); different connections run concurrently.

The ACK is written only after the handler returned, and the handler returns only after what the
message stored, and its audit events, are committed: an AA on the wire means durable. When the
handler fails (a bug, the database gone), the connection is closed without an answer, so the
sender sends again; the handler's idempotence makes that safe.

Refusals at this layer close the connection: a frame over ``max_message_bytes`` (refused before
the rest is read), a peer sending only noise, a connection silent for ``idle_seconds``, a TLS
handshake that fails (no certificate when one is required, an unknown authority). No exception
from a peer's bytes reaches the event loop: the next connection is served as the last.

Shutdown (SIGTERM, SIGINT, or the parent gone): stop accepting, close the connections waiting
for their next message, let those whose message is being stored finish and answer (up to
``grace`` seconds), then wait for the handler threads before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from carnet.mllp.framing import FrameDecoder, FramingError, frame
from carnet.mllp.handling import Peer

log = logging.getLogger(__name__)

# One HL7 v2 message (without framing) in, its ACK (without framing) out; blocking.
Handler = Callable[[bytes, Peer], bytes]

# What one read asks of the socket. Messages are mostly a few kilobytes; a larger one arrives in
# several reads, each counted against the limit as it comes.
READ_BYTES = 64 * 1024
# A TLS handshake that has not finished in this time is dropped: a connection opened and left
# silent must not hold a slot before the idle timeout even applies.
HANDSHAKE_SECONDS = 10.0


@dataclass(frozen=True)
class ListenerLimits:
    """What one connection may do before it is closed, and how many messages are stored at once."""

    max_message_bytes: int
    idle_seconds: float
    threads: int


def tls_context(
    certificate: Path, key: Path, client_authorities: Path | None = None
) -> ssl.SSLContext:
    """A server-side TLS context; with ``client_authorities``, every client must present a
    certificate they issued (mutual TLS). TLS 1.2 at least, the library's default ciphers.

    Raises ``OSError`` for a missing file and ``ssl.SSLError`` for a bad one.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    if client_authorities is not None:
        context.load_verify_locations(cafile=client_authorities)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _address(writer: asyncio.StreamWriter) -> str:
    address = writer.get_extra_info("peername")
    return str(address[0]) if isinstance(address, tuple) and address else str(address)


def peer_of(writer: asyncio.StreamWriter) -> Peer:
    """The connection's remote address and, over TLS, the SHA-256 of its client certificate."""
    host = _address(writer)
    fingerprint = None
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None:
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            fingerprint = hashlib.sha256(der).hexdigest()
    return Peer(address=host, certificate_sha256=fingerprint)


class Listener:
    """An MLLP server over one handler; ``start`` binds, ``close`` stops gracefully."""

    def __init__(
        self,
        handler: Handler,
        limits: ListenerLimits,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._handler = handler
        self._limits = limits
        self._ssl = ssl_context
        self._executor = ThreadPoolExecutor(max_workers=limits.threads, thread_name_prefix="mllp")
        self._server: asyncio.Server | None = None
        # Each connection's task, and whether a message of it is being handled right now.
        self._connections: dict[asyncio.Task[None], bool] = {}
        self._stopping = False
        self.handled = 0  # messages answered since start, for the log at shutdown

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the listener is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> None:
        """Bind ``host:port`` (shared with sibling processes with ``reuse_port``) and begin
        accepting connections."""
        # TLS is started by each connection (``_handshake``) rather than by the server, so a
        # failed handshake is the listener's to log with the peer's address: asyncio and uvloop
        # only log it in debug mode, and a laboratory's refused certificate must show.
        self._server = await asyncio.start_server(
            self._accept, host, port, backlog=256, limit=READ_BYTES, reuse_port=reuse_port or None
        )

    async def close(self, grace: float = 10.0) -> None:
        """Stop accepting; answer the messages being handled (up to ``grace`` s); close all."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        pending = set(self._connections)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        # A thread still storing a message finishes its transaction before the process ends:
        # the sender got no AA for it and will send it again, which the handler recognises.
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A new connection (called within the transport's ``connection_made``): serve it."""
        if self._stopping:  # accepted while the server was closing: not served
            writer.close()
            return
        if self._ssl is not None:
            # Called before the transport's first read (asyncio adds the reader after
            # ``connection_made``): the peer's ClientHello stays in the socket for the TLS layer
            # instead of landing in the plain stream's buffer, where the handshake would wait
            # for it forever.
            transport = writer.transport
            assert isinstance(transport, asyncio.ReadTransport)  # a socket's: reads and writes
            transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._serve_connection(reader, writer))
        self._connections[task] = False

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None  # created by ``_accept``, which registered it
        try:
            if self._ssl is not None and not await self._handshake(writer):
                return
            peer = peer_of(writer)
            log.debug("MLLP connection from %s", peer.address)
            await self._converse(reader, writer, peer, task)
        except (OSError, EOFError) as error:
            # A reset, a broken pipe, a TLS record error: the peer's side of the conversation.
            log.info("MLLP connection from %s ended: %r", _address(writer), error)
        except Exception:
            # A defect of the listener itself: this connection ends, the others go on.
            log.exception("MLLP connection from %s failed.", _address(writer))
        finally:
            del self._connections[task]
            writer.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), HANDSHAKE_SECONDS)

    async def _handshake(self, writer: asyncio.StreamWriter) -> bool:
        """Start TLS on the connection; False (logged) if the peer failed the handshake."""
        assert self._ssl is not None
        try:
            await asyncio.wait_for(writer.start_tls(self._ssl), HANDSHAKE_SECONDS)
        except (OSError, EOFError) as error:  # ssl.SSLError and TimeoutError are OSErrors
            reason = (
                getattr(error, "reason", None)
                or getattr(error, "strerror", None)
                or type(error).__name__
            )
            log.warning("MLLP TLS handshake with %s failed: %s.", _address(writer), reason)
            return False
        return True

    async def _converse(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
        task: asyncio.Task[None],
    ) -> None:
        decoder = FrameDecoder(self._limits.max_message_bytes)
        while not self._stopping:
            try:
                data = await asyncio.wait_for(reader.read(READ_BYTES), self._limits.idle_seconds)
            except TimeoutError:
                log.info("MLLP connection from %s closed after being idle.", peer.address)
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except FramingError as error:
                log.warning("MLLP connection from %s refused: %s.", peer.address, error)
                return
            for message in messages:
                if self._stopping:
                    return  # not answered: the sender sends it again to the next listener
                ack = await self._answer(message, peer, task)
                if ack is None:
                    return
                writer.write(frame(ack))
                await asyncio.wait_for(writer.drain(), self._limits.idle_seconds)
                self.handled += 1

    async def _answer(self, message: bytes, peer: Peer, task: asyncio.Task[None]) -> bytes | None:
        """The handler's ACK for ``message``, or None if it failed (the connection is closed)."""
        self._connections[task] = True
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._handler, message, peer)
        except Exception:
            # A bug or an unreachable database: no ACK, so the sender keeps the message and
            # sends it again; the trace is for the operator's log, never for the peer.
            log.exception("MLLP message from %s not handled; connection closed.", peer.address)
            return None
        finally:
            self._connections[task] = False


def run(
    handler: Handler,
    limits: ListenerLimits,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    parent_pid: int | None = None,
    grace: float = 10.0,
    reuse_port: bool = False,
) -> int:
    """Serve until SIGTERM or SIGINT (or until ``parent_pid`` is no longer the parent).

    Returns the number of messages answered. The event loop is asyncio's own, not uvloop as in
    the HTTP workers: uvloop starts reading a connection right after ``connection_made``
    whatever the protocol asked, so the ClientHello could land in the plain stream before
    ``_handshake`` starts TLS (a handshake that hung, one time in three in the tests). The loop
    is not where a message's time goes: the handler's database work is.
    """
    with asyncio.Runner() as runner:
        return runner.run(
            _serve(
                handler,
                limits,
                host=host,
                port=port,
                ssl_context=ssl_context,
                parent_pid=parent_pid,
                grace=grace,
                reuse_port=reuse_port,
            )
        )


async def _serve(
    handler: Handler,
    limits: ListenerLimits,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    parent_pid: int | None,
    grace: float,
    reuse_port: bool,
) -> int:
    listener = Listener(handler, limits, ssl_context=ssl_context)
    await listener.start(host, port, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stop.set)
    watch = asyncio.create_task(_watch_parent(parent_pid, stop)) if parent_pid else None
    tls = "off" if ssl_context is None else "on"
    if ssl_context is not None and ssl_context.verify_mode == ssl.CERT_REQUIRED:
        tls = "on, client certificates required"
    log.info("MLLP listener on %s:%d (TLS %s).", host, listener.port, tls)
    try:
        await stop.wait()
    finally:
        log.info("MLLP listener stopping.")
        if watch is not None:
            watch.cancel()
        await listener.close(grace)
        log.info("MLLP listener stopped after %d messages.", listener.handled)
    return listener.handled


async def _watch_parent(parent_pid: int, stop: asyncio.Event) -> None:
    # ``carnet serve`` starts the listener as its child: if the supervisor dies without stopping
    # it (kill -9), the listener must not live on as an orphan holding the port.
    while os.getppid() == parent_pid:
        await asyncio.sleep(1.0)
    log.warning("MLLP listener's parent %d is gone: stopping.", parent_pid)
    stop.set()
