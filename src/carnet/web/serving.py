"""How ``carnet serve`` speaks HTTP: uvicorn's httptools protocol, with Nagle's algorithm off.

httptools (llhttp, Node.js's parser, in C) parses a request in a fraction of what the pure-Python
h11 costs: on a 2-core machine that is worker time given back to the requests themselves.

With several workers, uvicorn binds the listening socket itself (protocol number 0), and asyncio
only disables Nagle's algorithm (``TCP_NODELAY``) on sockets whose protocol is ``IPPROTO_TCP``:
each response then waits for the client's delayed ACK, about 40 ms on Linux. One worker, whose
socket asyncio creates, never had the delay. Setting the option on every accepted connection
makes both modes answer alike.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

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


# The import string uvicorn resolves in each worker process.
HTTP_PROTOCOL = f"{__name__}:{NoDelayHttpToolsProtocol.__name__}"
# uvloop runs the event loop in C (libuv): accepting, reading and writing cost less per request.
EVENT_LOOP = "uvloop"
