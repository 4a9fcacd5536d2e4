"""How ``carnet serve`` speaks HTTP: uvicorn's httptools protocol, with Nagle's algorithm off.

httptools (llhttp, Node.js's parser, in C) parses a request in a fraction of what the pure-Python
h11 costs: on a 2-core machine that is worker time given back to the requests themselves.

With several workers, uvicorn binds the listening socket itself (protocol number 0), and asyncio
only disables Nagle's algorithm (``TCP_NODELAY``) on sockets whose protocol is ``IPPROTO_TCP``:
each response then waits for the client's delayed ACK, about 40 ms on Linux. One worker, whose
socket asyncio creates, never had the delay. Setting the option on every accepted connection
makes both modes answer alike.

httptools sets no limit on a request's head: a 100 MB header was buffered whole (the worker grew
by as much) before any Carnet code could see it. ``GuardedHttpToolsProtocol`` counts the head as
it arrives; the exact limits, answered in each way in's words, are ``carnet.web.limits``'s.

Workers also start fast and are given time (``CARNET_WORKER_HEALTHCHECK_SECONDS``): see
``fork_workers_from_a_preloaded_server``.

Logging is configured the same in every process, one worker or many (``LOG_CONFIG``, which
uvicorn applies in each worker it starts): without it, workers had no handler, so Carnet's INFO
lines were dropped and its warnings written bare. Each request is logged by ``AccessLog``, not
by uvicorn's access log, which writes query strings (``carnet.web.access_log``).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import logging
import multiprocessing
import multiprocessing.forkserver
import socket
import sys
from typing import Any, Final

import uvicorn._subprocess
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from carnet.settings import Settings

log = logging.getLogger(__name__)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, sending small responses at once (``TCP_NODELAY``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle's algorithm off on a TCP connection, then serve it as uvicorn would."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as error:  # a connection already reset: nothing to speed up
                log.debug("TCP_NODELAY not set: %s", error)
        super().connection_made(transport)


# What the event loop may hand over in one read (uvloop and asyncio read up to 256 KiB): a read
# that ends one request's body and begins the next head is counted whole, so the guard allows it.
READ_SLACK_BYTES = 256 * 1024


@functools.cache
def _head_limit() -> int:
    """``CARNET_MAX_HEADER_BYTES`` of this worker, read at its first connection."""
    return Settings().max_header_bytes + READ_SLACK_BYTES


class GuardedHttpToolsProtocol(NoDelayHttpToolsProtocol):
    """Closes a connection whose request head grows past the limit, before it is buffered whole.

    A read is counted when it leaves a head unfinished and finished none; past
    ``CARNET_MAX_HEADER_BYTES`` plus one read, the client gets a 431 and the connection closes.
    A head within that is parsed, and ``carnet.web.limits`` applies the exact limit.
    """

    head_limit: int | None = None  # bytes; None: from the settings (tests set their own)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Serve as uvicorn would, waiting for a first head."""
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._heads_done = 0
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        """Parse ``data``; refuse the request if its unfinished head has grown too large."""
        heads_done = self._heads_done
        super().data_received(data)
        if not self._in_head or self._heads_done != heads_done or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        limit = self.head_limit if self.head_limit is not None else _head_limit()
        if self._head_bytes > limit:
            log.warning("Request head over %d bytes refused.", limit)
            message = b"The request line and headers are too large."
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: text/plain; charset=utf-8\r\n"
                b"content-length: " + str(len(message)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + message
            )
            self.transport.close()

    def on_headers_complete(self) -> None:
        """The head is whole: count the next one afresh."""
        self._in_head = False
        self._heads_done += 1
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """A request is whole: what follows is the next request's head."""
        self._in_head = True
        super().on_message_complete()


# The import string uvicorn resolves in each worker process.
HTTP_PROTOCOL = f"{__name__}:{GuardedHttpToolsProtocol.__name__}"
# uvloop runs the event loop in C (libuv): accepting, reading and writing cost less per request.
EVENT_LOOP = "uvloop"


def fork_workers_from_a_preloaded_server(application: str) -> None:
    """Start each worker as a fork of a process that has already imported ``application``.

    uvicorn starts workers with multiprocessing's *spawn*: every worker is a new interpreter
    importing FastAPI, SQLAlchemy, Pydantic and Carnet, about 0.9 s of CPU each. Four of them on
    a saturated 2-core machine took 10 to 20 s to answer, and uvicorn kills a worker that has
    not answered its health check in time, whose replacement adds to the load. With
    *forkserver* and ``application`` preloaded, the imports happen once, in the fork server
    (a single-threaded process that only imported modules: no engine, no loop, no thread, as
    Carnet builds nothing at import time); workers are forks of it and only build the app.

    uvicorn has no option for it: its module attribute ``spawn`` (the multiprocessing context
    it starts workers with) is replaced. ``tests/test_serve_restart.py`` fails if that stops
    working.

    Also spared: uvicorn re-runs the parent's main module in the fork server unless it is a
    package's ``__main__``; started by the ``carnet`` console script, that would import
    ``carnet.cli`` (Typer, Rich, every command's services) as well. Naming ``carnet.__main__``
    as the main module makes it start as under ``python -m carnet``.
    """
    main = sys.modules["__main__"]
    if getattr(main, "__spec__", None) is None:
        main.__spec__ = importlib.util.find_spec("carnet.__main__")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([application.partition(":")[0], __name__])
    uvicorn._subprocess.spawn = context  # type: ignore[assignment]
    # Started now, the fork server imports Carnet while this process checks the schema: on two
    # cores the two overlap, and the workers are forked as soon as uvicorn asks.
    multiprocessing.forkserver.ensure_running()


# The CLI's format (``carnet.cli``): level, logger, message. Carnet's loggers at INFO (refusals,
# job summaries, the access log), everything else at WARNING, uvicorn's own narration at INFO;
# all of it on standard error. uvicorn applies it in the server process and in each worker
# (``uvicorn.config.Config.configure_logging``), so one worker or many log alike.
LOG_CONFIG: Final[dict[str, Any]] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"carnet": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "carnet",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},
    "loggers": {
        "carnet": {"level": "INFO"},
        "uvicorn": {"level": "INFO"},
        "alembic": {"level": "WARNING"},
    },
}
