"""Limits checked before a request is read: body size by route, header size and count, and the
media type of FHIR and OAuth writes.

Request bodies used to be read whole before any size check: 600 MB sent to ``/oauth/token``
without a token pushed a worker to 1.35 GiB (issue 15). Here a body announced larger than its
route allows (``Content-Length``) is refused at once, before the application runs; a body sent
without a length (chunked) is counted as it arrives and refused as soon as it passes the limit,
without reading the rest: the refusal carries ``Connection: close``, so uvicorn stops reading
the connection instead of draining it.

Each way in answers in its own words: FHIR with an OperationOutcome (``too-costly``,
``not-supported``), OAuth with an RFC 6749 error, the portal with a short page.

A pure ASGI middleware, like ``carnet.app.SecurityHeaders``: Starlette's
``@app.middleware("http")`` costs a task and memory streams per request. Starlette's own
``RequestBodyLimitMiddleware`` counts only once the application reads, after authentication and
the database have already run, and answers in plain text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carnet.settings import Settings

# A publication's envelope around its base64 content: the DocumentReference, the List, the
# Bundle's own structure; a portal upload's other form fields and multipart boundaries.
ENVELOPE_BYTES = 1024 * 1024
# Multipart uploads from the portals: a document (the store's limit), or the agency's registry.
_UPLOADS = re.compile(
    r"^/portal/(patient/documents/new|professional/patients/[^/]+/upload|agency/enrolment)$"
)
_FORM = "application/x-www-form-urlencoded"
_FHIR_JSON = ("application/fhir+json", "application/json")
_JSON_PATCH = "application/json-patch+json"
_WRITES = frozenset({"POST", "PUT", "PATCH"})


class FhirRefusal(Protocol):
    """Renders a refusal on a FHIR route (``carnet.fhir.outcome``: this layer cannot import it)."""

    def __call__(self, status: int, message: str, *, code: str) -> Response: ...


@dataclass(frozen=True)
class RequestLimits:
    """The limits, in bytes and header fields, from the settings."""

    auth_body: int
    default_body: int
    publication_body: int
    upload_body: int
    header_bytes: int
    header_count: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        """Derive the publication and upload limits from ``CARNET_MAX_DOCUMENT_BYTES``.

        A publication (ITI-65) carries its document in base64 (4 bytes for every 3) inside a
        JSON Bundle; ITI-65 itself accepts bundles up to twice the document limit (several
        documents), so neither is refused here that it would accept.
        """
        document = settings.max_document_bytes
        return cls(
            auth_body=settings.max_auth_body_bytes,
            default_body=settings.max_body_bytes,
            publication_body=max(2 * document, 4 * math.ceil(document / 3) + ENVELOPE_BYTES),
            upload_body=document + ENVELOPE_BYTES,
            header_bytes=settings.max_header_bytes,
            header_count=settings.max_header_count,
        )

    def body_limit(self, method: str, path: str) -> tuple[int, str]:
        """The largest body ``method path`` may carry, and the setting that says so."""
        if path.startswith("/oauth/"):
            return self.auth_body, "CARNET_MAX_AUTH_BODY_BYTES"
        if method == "POST" and path in ("/fhir", "/fhir/"):
            return self.publication_body, "CARNET_MAX_DOCUMENT_BYTES"
        # XDS.b (ITI-41) carries documents in MTOM parts or inline base64, as ITI-65 does.
        if method == "POST" and path.startswith("/xds/"):
            return self.publication_body, "CARNET_MAX_DOCUMENT_BYTES"
        if _UPLOADS.match(path):
            return self.upload_body, "CARNET_MAX_DOCUMENT_BYTES"
        return self.default_body, "CARNET_MAX_BODY_BYTES"


class _BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes its limit."""


class RequestLimitsMiddleware:
    """Refuse oversize heads (431), bodies (413) and wrong media types (415) before reading.

    The limits come from the settings of the platform the application runs on
    (``app.state.platform``), read at the first request.
    """

    def __init__(self, app: ASGIApp, *, fhir_refusal: FhirRefusal) -> None:
        self.app = app
        self.fhir_refusal = fhir_refusal
        self.limits: RequestLimits | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the head, then pass the request on with its body counted."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limits = self.limits
        if limits is None:
            limits = self.limits = RequestLimits.from_settings(scope["app"].state.platform.settings)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        head = _Head.read(scope, headers)
        if head.fault is None and len(headers) > limits.header_count:
            head.fault = (
                431,
                f"More than {limits.header_count} header fields (CARNET_MAX_HEADER_COUNT).",
                "too-costly",
            )
        if head.fault is None and head.size > limits.header_bytes:
            head.fault = (
                431,
                f"The request line and headers are over {limits.header_bytes} bytes "
                "(CARNET_MAX_HEADER_BYTES).",
                "too-costly",
            )
        if head.fault is None and not head.has_body:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        method: str = scope["method"]
        expected = _media_types(method, path)
        if head.fault is None and expected and head.content_type not in expected:
            head.fault = (415, f"Send this request as {' or '.join(expected)}.", "not-supported")
        limit, setting = limits.body_limit(method, path)
        too_large = (413, f"The request body is over {limit} bytes ({setting}).", "too-costly")
        if head.fault is None and head.length is not None and head.length > limit:
            head.fault = too_large
        refuse = self._refusal(path)
        if head.fault is not None:
            await refuse(*head.fault)(scope, receive, send)
            return
        await self._counted(scope, receive, send, limit, lambda: refuse(*too_large))

    async def _counted(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        limit: int,
        refusal: Callable[[], Response],
    ) -> None:
        """Run the application, refusing the request once its body passes ``limit``.

        Whatever the application makes of the error raised in its ``receive`` (FastAPI turns a
        body it cannot read into a 400), the answer sent is the refusal.
        """
        received = 0
        refused = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            if refused:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the application's own answer to the error: the refusal replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except BaseExceptionGroup as group:
            # Reading in a task group (a streaming response) wraps the error.
            matched, rest = group.split(_BodyTooLarge)
            if matched is None or rest is not None:
                raise
        if refused and not started:
            await refusal()(scope, receive, send)

    def _refusal(self, path: str) -> Callable[[int, str, str], Response]:
        """How the way in that owns ``path`` words a refusal."""
        if path == "/fhir" or path.startswith("/fhir/"):
            return lambda status, message, code: _closing(
                self.fhir_refusal(status, message, code=code)
            )
        if path.startswith("/oauth/"):
            return _oauth_refusal
        if path.startswith("/portal/"):
            return _portal_refusal
        return _plain_refusal


@dataclass
class _Head:
    """What the limits need from a request's head, read in one pass over its headers."""

    size: int
    length: int | None
    has_body: bool
    content_type: str
    fault: tuple[int, str, str] | None = None

    @classmethod
    def read(cls, scope: Scope, headers: list[tuple[bytes, bytes]]) -> _Head:
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        length: int | None = None
        chunked = False
        content_type = ""
        fault = None
        for name, value in headers:
            size += len(name) + len(value) + 4  # ": " and CRLF
            if name == b"content-length":
                if value.strip().isdigit():
                    length = int(value)
                else:  # the HTTP parser refuses these; refuse rather than guess
                    fault = (400, "The Content-Length is not a number.", "structure")
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"content-type":
                content_type = value.decode("latin-1").split(";")[0].strip().lower()
        has_body = chunked or bool(length)
        return cls(size, length, has_body, content_type, fault)


def _media_types(method: str, path: str) -> tuple[str, ...]:
    """What a FHIR or OAuth write must be sent as; empty where the route decides."""
    if method not in _WRITES:
        return ()
    if path.startswith("/oauth/"):
        # RFC 6749 sections 3.2 and 4.1.3, RFC 7009 section 2.1, OIDC Core 5.3.1.
        return (_FORM,)
    if path == "/fhir" or path.startswith("/fhir/"):
        if path.endswith("/_search"):
            return (_FORM,)  # FHIR R4 http.html#search: POST searches are form-encoded
        if method == "PATCH":
            return (_JSON_PATCH,)  # FHIR R4 http.html#patch: a JSON Patch (RFC 6902)
        return _FHIR_JSON
    return ()


def _closing(response: Response) -> Response:
    # After a refusal the connection is closed: uvicorn would otherwise read (and discard) the
    # rest of an oversize body to reach the next request.
    response.headers["Connection"] = "close"
    return response


def _oauth_refusal(status: int, message: str, code: str) -> Response:
    # RFC 6749 section 5.2: the error vocabulary has no word for size or media type;
    # invalid_request is "malformed", and the status says which.
    return _closing(
        JSONResponse(
            {"error": "invalid_request", "error_description": message},
            status_code=status,
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )
    )


def _portal_refusal(status: int, message: str, code: str) -> Response:
    page = (
        '<!doctype html><html lang="en"><meta charset="utf-8"><title>Carnet</title>'
        f"<h1>Not accepted</h1><p>{message}</p></html>"
    )
    return _closing(HTMLResponse(page, status_code=status))


def _plain_refusal(status: int, message: str, code: str) -> Response:
    return _closing(JSONResponse({"detail": message}, status_code=status))
