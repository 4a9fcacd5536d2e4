"""The access log: one line per request, with no query string (a pure ASGI middleware).

uvicorn's own access log writes the request target whole, and Carnet's query strings carry
personal data: PDQm and portal searches name national identifiers, names and birth dates, and
``/portal/callback`` carries a one-time authorization code. This line keeps what an operator
needs to follow traffic — the method, the path, the status and the time taken — and nothing a
client put after the ``?``. Paths still hold resource ids (internal, random, no names).

``carnet serve`` turns uvicorn's access log off and wraps the application in this one
(``carnet.web.serving.served_app``). A pure ASGI middleware, not ``@app.middleware("http")``:
it adds a closure and one log call to a request, not a task and memory streams.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


class AccessLog:
    """Logs ``METHOD /path STATUS N.N ms`` at INFO once each HTTP request is answered."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request, noting its status; log it once answered (or failed)."""
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # uvicorn answers 500 for an application that fails or never starts its response.
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                _path(scope),
                status,
                (time.perf_counter() - started) * 1000,
            )


def _path(scope: Scope) -> str:
    # The path as sent, still percent-encoded (servers give it without the query string): a
    # %0A stays three characters and cannot start a forged log line.
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"]).encode("unicode_escape").decode("ascii")
    return raw.decode("ascii", "backslashreplace")
