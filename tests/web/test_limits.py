"""Limits before reading (issue 15): oversize bodies 413, oversize heads 431, wrong media 415.

Every route that accepts a body is read from the application itself, so a route added tomorrow
is checked too. Refusals come before authentication (no token is sent: memory was exhausted
without one) and in the way in's own words: an OperationOutcome on FHIR
(http://hl7.org/fhir/R4/http.html#Status-Codes), an RFC 6749 section 5.2 error on OAuth, a page
on the portal. A real server shows that a streamed body is refused as it arrives, without the
worker growing by its size, and that a huge head is refused before httptools buffers it.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Session

from carnet.app import create_app
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.web.limits import ENVELOPE_BYTES
from carnet.web.way_in import served_routes
from factories.actors import system_actor
from factories.auth import Served, bearer, serve, settings
from factories.directory import make_organisation

KIB = 1024
# Small limits, so that one oversize body is oversize on every route.
LIMITS = {
    "max_document_bytes": 4 * KIB,
    "max_body_bytes": 2 * KIB,
    "max_auth_body_bytes": 1 * KIB,
    "max_header_bytes": 4 * KIB,
    "max_header_count": 30,
}
OVERSIZE = ENVELOPE_BYTES + 64 * KIB
FORM = "application/x-www-form-urlencoded"
FHIR_JSON = "application/fhir+json"


def _body_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the application that accepts a body."""
    app = create_app(settings())
    found = {
        (method, route.path)
        for route in iter_route_contexts(served_routes(app))
        if route.path
        for method in route.methods or ()
        if method in {"POST", "PUT", "PATCH", "DELETE"}
    }
    return sorted(found)


ROUTES = _body_routes()


def _filled(path: str) -> str:
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "1" + path[end + 1 :]
    return path


def _content_type(method: str, path: str) -> str:
    """What the route reads, so the refusal is for the size and nothing else."""
    if path.startswith("/oauth/") or path.endswith("/_search"):
        return FORM
    if path.startswith("/fhir") and method == "PATCH":
        return "application/json-patch+json"
    if path.startswith("/fhir"):
        return FHIR_JSON
    return FORM


def _assert_refused_in_own_words(response: Any, path: str, status: int) -> None:
    assert response.status_code == status, (path, response.status_code, response.text[:200])
    assert response.headers["connection"] == "close"
    # The security headers still apply to a refusal.
    assert response.headers["x-content-type-options"] == "nosniff"
    if path.startswith("/fhir"):
        assert response.headers["content-type"].startswith(FHIR_JSON)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        issue = outcome["issue"][0]
        expected = "not-supported" if status == 415 else "too-costly"
        assert issue["code"] == expected
        assert "CARNET_" in issue["diagnostics"] or status == 415
    elif path.startswith("/oauth/"):
        body = response.json()
        assert body["error"] == "invalid_request"
        assert body["error_description"]
        assert response.headers["cache-control"] == "no-store"
    elif path.startswith("/portal/"):
        assert response.headers["content-type"].startswith("text/html")
        assert "<p>" in response.text
    else:
        assert "detail" in response.json()


@pytest.fixture
def limited(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> Iterator[Served]:
    """Carnet served with small limits."""
    with serve(session, store, clock, wrapper, **LIMITS) as served:
        yield served


def test_every_route_with_a_body_is_walked() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/fhir", "/oauth/token", "/oauth/revoke", "/fhir/Consent"} <= paths
    assert "/portal/patient/documents/new" in paths
    assert len(ROUTES) >= 30


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_an_oversize_body_is_refused_from_its_length(
    limited: Served, method: str, path: str
) -> None:
    response = limited.client.request(
        method,
        _filled(path),
        content=b"a" * OVERSIZE,
        headers={"Content-Type": _content_type(method, path)},
    )
    _assert_refused_in_own_words(response, path, 413)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_an_oversize_body_is_refused_as_it_streams(limited: Served, method: str, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(OVERSIZE // (64 * KIB)):
            yield b"a" * (64 * KIB)

    response = limited.client.request(
        method,
        _filled(path),
        content=chunks(),
        headers={"Content-Type": _content_type(method, path)},
    )
    assert "content-length" not in response.request.headers
    if response.status_code in (401, 403):
        # Refused for want of a token or a session before the body was read: none of it was
        # held (the routes that read first, and a publication with a token, are below).
        assert path not in READ_BEFORE_AUTHENTICATION
        return
    _assert_refused_in_own_words(response, path, 413)


# Routes that read their body before (or to) authenticate: a streamed refusal must reach them.
READ_BEFORE_AUTHENTICATION = {
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/authorize",
    *(path for _, path in ROUTES if path.endswith("/_search")),
}


def test_a_streamed_publication_with_a_token_is_refused_as_it_arrives(
    limited: Served, session: Session, clock: FrozenClock
) -> None:
    organisation = make_organisation(session, clock)
    lab = system_actor(organisation, scopes="system/DocumentReference.cru")
    headers = {
        "Content-Type": FHIR_JSON,
        **bearer(limited, session, lab, clock, "system/DocumentReference.cru"),
    }

    def chunks() -> Iterator[bytes]:
        yield b'{"resourceType": "Bundle", "type": "transaction", "entry": ["'
        for _ in range(OVERSIZE // (64 * KIB)):
            yield b"a" * (64 * KIB)

    response = limited.client.post("/fhir", content=chunks(), headers=headers)
    _assert_refused_in_own_words(response, "/fhir", 413)


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/oauth/token", 16 * KIB),
        ("/oauth/revoke", 16 * KIB),
        ("/fhir/Patient/_search", 64 * KIB),
        ("/portal/sign-out", 64 * KIB),
    ],
)
def test_the_default_limits(web: Served, path: str, limit: int) -> None:
    within = web.client.post(path, content=b"a" * limit, headers={"Content-Type": FORM})
    assert within.status_code != 413
    over = web.client.post(path, content=b"a" * (limit + 1), headers={"Content-Type": FORM})
    _assert_refused_in_own_words(over, path, 413)


def test_a_publication_may_carry_a_whole_document_in_base64(web: Served) -> None:
    document = web.platform.settings.max_document_bytes
    base64_size = 4 * (document // 3 + 1)
    # Announced only: what matters is that the length alone is not refused.
    within = web.client.post(
        "/fhir", content=b"{}", headers={"Content-Type": FHIR_JSON, "X-Pad": "a"}
    )
    assert within.status_code != 413
    over = web.client.post(
        "/fhir",
        content=b"a" * (max(2 * document, base64_size + ENVELOPE_BYTES) + 1),
        headers={"Content-Type": FHIR_JSON},
    )
    _assert_refused_in_own_words(over, "/fhir", 413)


@pytest.mark.parametrize("path", ["/fhir/Patient", "/oauth/jwks", "/portal/sign-in", "/"])
def test_too_many_headers_are_refused(limited: Served, path: str) -> None:
    headers = {f"X-Field-{number}": "a" for number in range(31)}
    _assert_refused_in_own_words(limited.client.get(path, headers=headers), path, 431)


@pytest.mark.parametrize("path", ["/fhir/Patient", "/oauth/jwks", "/portal/sign-in"])
def test_oversize_headers_are_refused(limited: Served, path: str) -> None:
    response = limited.client.get(path, headers={"X-Big": "a" * 4 * KIB})
    _assert_refused_in_own_words(response, path, 431)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/oauth/token", "application/json"),
        ("/oauth/revoke", "text/plain"),
        ("/fhir", "application/xml"),
        ("/fhir/Consent", FORM),
        ("/fhir/Patient/_search", "application/json"),
    ],
)
def test_a_write_in_the_wrong_media_type_is_refused(
    web: Served, path: str, content_type: str
) -> None:
    response = web.client.post(path, content=b"{}", headers={"Content-Type": content_type})
    _assert_refused_in_own_words(response, path, 415)


def test_normal_requests_still_pass(web: Served) -> None:
    assert web.client.get("/fhir/metadata").status_code == 200
    # Within every limit: the route answers for itself (no client, no token).
    token = web.client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert token.status_code in (400, 401)
    assert token.json()["error"] in ("invalid_client", "invalid_request")
    search = web.client.post("/fhir/Patient/_search", data={"family": "Dupont"})
    assert search.status_code == 401
    # A POST with no body needs no media type (OIDC userinfo by POST).
    assert web.client.post("/oauth/userinfo").status_code == 401


# --- a real server: streaming refusals, memory, and heads too large to buffer --------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """``carnet serve`` (one worker, default limits): its port and its process id."""
    var = tmp_path_factory.mktemp("limits") / "var"
    env = {**os.environ, "CARNET_VAR_DIR": str(var), "CARNET_JOBS_INTERVAL_SECONDS": "0"}
    carnet = [sys.executable, "-m", "carnet"]
    subprocess.run([*carnet, "db", "upgrade"], env=env, check=True, capture_output=True)
    port = _free_port()
    process = subprocess.Popen(
        [*carnet, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                assert process.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def _send_until_answered(
    port: int, head: bytes, frames: Iterator[bytes], pid: int
) -> tuple[bytes, int, float]:
    """Send ``head`` then ``frames`` until the server answers: the answer, bytes sent, peak RSS."""
    sent = 0
    peak = _rss_mib(pid)
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(head)
        try:
            for frame in frames:
                connection.sendall(frame)
                sent += len(frame)
                peak = max(peak, _rss_mib(pid))
                if select.select([connection], [], [], 0.01)[0]:
                    break
        except OSError:
            pass  # closed by the server after its refusal: the answer is read below
        connection.settimeout(20)
        answer = b""
        try:
            while part := connection.recv(65536):  # until the server closes, as it says
                answer += part
        except ConnectionResetError:
            pass  # what it had sent is kept; the rest of the request was not read
    return answer, sent, max(peak, _rss_mib(pid))


def test_a_streamed_body_is_refused_as_it_arrives_without_growing_the_worker(
    server: tuple[int, int],
) -> None:
    port, pid = server
    before = _rss_mib(pid)
    chunk = b"a=" + b"b" * (64 * KIB - 2)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    total = 200 * 1024 * KIB
    head = (
        b"POST /oauth/token HTTP/1.1\r\nHost: carnet\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    answer, sent, peak = _send_until_answered(
        port, head, (frame for _ in range(total // len(chunk))), pid
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"error":"invalid_request"' in answer
    assert sent < 50 * 1024 * KIB
    assert peak - before < 50, (before, peak)


def test_an_announced_oversize_body_is_refused_before_it_is_sent(
    server: tuple[int, int],
) -> None:
    port, pid = server
    head = (
        b"POST /fhir HTTP/1.1\r\nHost: carnet\r\nContent-Type: application/fhir+json\r\n"
        b"Content-Length: 600000000\r\n\r\n"
    )
    answer, sent, _ = _send_until_answered(port, head, iter(()), pid)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"OperationOutcome" in answer
    assert sent == 0


def test_a_head_too_large_to_buffer_is_refused_as_it_arrives(server: tuple[int, int]) -> None:
    port, pid = server
    before = _rss_mib(pid)
    frames = (b"X-Big-%d: " % number + b"a" * (64 * KIB) + b"\r\n" for number in range(1600))
    answer, sent, peak = _send_until_answered(
        port, b"GET /health HTTP/1.1\r\nHost: carnet\r\n", frames, pid
    )
    # httptools would buffer the whole 100 MB head; the connection is refused long before.
    # The 431 is written before the close, but a client still sending may see the reset of
    # the unread rest first: what matters is that the server stopped reading and held nothing.
    assert answer.startswith(b"HTTP/1.1 431") or not answer, answer[:200]
    assert sent < 50 * 1024 * KIB
    assert peak - before < 50, (before, peak)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        assert response.status == 200
