"""Hostile input on every FHIR and OAuth route: a 4xx in the route's own error shape, never a 5xx.

The routes are read from the application itself, so a route added tomorrow is probed too. Each
route gets every class of bad input it can receive — control characters and NUL, over-long
values, instants outside the years 1 to 9999 once in UTC, JSON nested a thousand levels deep,
malformed JSON, JSON of the wrong type, the wrong content type — with a real token, so the input
reaches the code that reads it. FHIR routes answer an OperationOutcome (http://hl7.org/fhir/R4/
http.html#Status-Codes); OAuth routes an RFC 6749 section 5.2 error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.routing import iter_route_contexts

from carnet.app import create_app
from carnet.fhir.search import MAX_VALUE_CHARS
from carnet.web.way_in import served_routes
from factories.auth import settings
from robustness.conftest import PUBLISH_SCOPE, Target

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
TOO_LONG = "a" * (MAX_VALUE_CHARS + 1)
# A dateTime that is in year 9999 where it was written and in year 10000 in UTC.
PAST_9999 = "9999-12-31T23:00:00-05:00"


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) the application serves under /fhir, /oauth and /.well-known."""
    app = create_app(settings())
    found = {
        (method, route.path)
        for route in iter_route_contexts(served_routes(app))
        if route.path and route.path.startswith(("/fhir", "/oauth", "/.well-known"))
        for method in route.methods or ()
        if method != "HEAD"
    }
    return sorted(found)


ROUTES = _routes()
# OAuth routes that read a form body (RFC 6749 section 3.2, RFC 7009 section 2.1).
OAUTH_FORMS = {("POST", "/oauth/token"), ("POST", "/oauth/revoke"), ("POST", "/oauth/authorize")}
# The browser's sign-in steps: they answer bad input with a page, never an OAuth error or a 5xx.
SIGN_IN_PAGES = {
    path for _, path in ROUTES if path.startswith(("/oauth/authorize", "/oauth/federation"))
}
# Routes that take no input but the token: hostile parameters are ignored, never a 5xx.
NO_INPUT = {
    ("GET", "/fhir/metadata"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/fhir/.well-known/smart-configuration"),
    ("GET", "/oauth/jwks"),
    ("GET", "/oauth/userinfo"),
    ("POST", "/oauth/userinfo"),
    # The letter's first page: a form that reads no parameter and no bearer token.
    ("GET", "/oauth/authorize/letter"),
}
DEEP = b'{"a":' * 1000 + b"1" + b"}" * 1000


@dataclass(frozen=True)
class Probe:
    """One bad request: ``name`` for the report, the request's parts."""

    name: str
    params: dict[str, str] | None = None
    path_value: str | None = None
    content: bytes | None = None
    content_type: str | None = None
    authorization: str | None = None


QUERY_PROBES = (
    Probe("NUL in a value", params={"patient": "Patient/1\x00"}),
    # NUL in parameters that reach a query, one route's or another's.
    *(
        Probe(f"NUL in {name}", params={name: value})
        for name, value in (
            ("family", "Du\x00pont"),
            ("name", "Labo\x00"),
            ("identifier", "urn:oid:1.2|12\x0034"),
            ("patient.identifier", "urn:oid:1.2|12\x0034"),
            ("author.family", "Du\x00pont"),
            ("type", "11502\x00-2"),
            ("agent", "Practitioner/\x00"),
        )
    ),
    Probe("control character in a value", params={"family": "Du\x01pont"}),
    Probe("NUL in a name", params={"pat\x00ient": "x"}),
    Probe("over-long value", params={"family": TOO_LONG}),
    Probe("over-long name", params={"p" * 100: "x"}),
    Probe("date past 9999 in UTC", params={"date": f"ge{PAST_9999}"}),
    Probe("date before year 1 in UTC", params={"date": "lt0001-01-01T00:00:00+05:00"}),
)
PATH_PROBES = (
    Probe("NUL in an id", path_value="abc\x00def"),
    Probe("control character in an id", path_value="abc\x1bdef"),
    Probe("over-long id", path_value=TOO_LONG),
)
JSON_PROBES = (
    Probe("nested 1,000 levels", content=DEEP, content_type="application/fhir+json"),
    Probe(
        "nested 65 levels",
        content=b"[" * 65 + b"]" * 65,
        content_type="application/fhir+json",
    ),
    Probe("malformed JSON", content=b'{"resourceType": "Bundle",', content_type="application/json"),
    Probe("not UTF-8", content=b'{"resourceType": "\xff"}', content_type="application/fhir+json"),
    Probe("lone surrogate", content=b'{"a": "\\ud800"}', content_type="application/fhir+json"),
    Probe("a JSON array", content=b"[]", content_type="application/fhir+json"),
    Probe("a JSON string", content=b'"Bundle"', content_type="application/fhir+json"),
    Probe("JSON null", content=b"null", content_type="application/fhir+json"),
    Probe("an empty body", content=b"", content_type="application/fhir+json"),
    Probe(
        "NUL in a string",
        content=b'{"resourceType": "Bundle", "type": "trans\\u0000action"}',
        content_type="application/fhir+json",
    ),
    Probe(
        "control character in a string",
        content=b'{"resourceType": "Consent", "status": "active\\u0007"}',
        content_type="application/fhir+json",
    ),
    Probe("text/plain", content=b"resourceType=Bundle", content_type="text/plain"),
    Probe("a form", content=b"resourceType=Bundle", content_type=FORM["Content-Type"]),
)
FORM_PROBES = (
    Probe(
        "NUL in a form value",
        content=b"client_id=a%00b&grant_type=x",
        content_type=FORM["Content-Type"],
    ),
    Probe(
        "control character in a form value",
        content=b"family=a%07b&client_id=c%0bd",
        content_type=FORM["Content-Type"],
    ),
    Probe("NUL in a form name", content=b"a%00b=c", content_type=FORM["Content-Type"]),
    Probe(
        "over-long form value",
        content=f"client_id={TOO_LONG}&family={TOO_LONG}".encode(),
        content_type=FORM["Content-Type"],
    ),
    Probe(
        "form not UTF-8", content=b"client_id=%ff%fe&family=\xff", content_type=FORM["Content-Type"]
    ),
    Probe("JSON instead of a form", content=DEEP, content_type="application/json"),
)
AUTH_PROBES = (
    Probe("over-long bearer token", authorization=f"Bearer {TOO_LONG}"),
    Probe("malformed bearer token", authorization="Bearer a.b.c"),
)


def _probes(method: str, path: str) -> tuple[Probe, ...]:
    probes: tuple[Probe, ...] = AUTH_PROBES
    if (path.startswith("/fhir") or path in SIGN_IN_PAGES) and (method, path) not in NO_INPUT:
        probes += QUERY_PROBES if method == "GET" else ()
    if "{" in path:
        probes += PATH_PROBES
    if method == "POST" and path in ("/fhir", "/fhir/Consent"):
        probes += JSON_PROBES
    if method == "POST" and (
        path.endswith("/_search") or (method, path) in OAUTH_FORMS or path in SIGN_IN_PAGES
    ):
        probes += FORM_PROBES
    return probes


def _token(target: Target, method: str, path: str) -> dict[str, str]:
    """A token that passes authentication (and, where the route checks one, its scope)."""
    if (method, path) == ("POST", "/fhir"):
        return target.headers(target.lab, PUBLISH_SCOPE)
    if path.startswith("/fhir/Consent"):
        return target.headers(target.patient, "patient/*.cruds")
    return target.headers(target.professional, "user/*.cruds openid fhirUser")


def _path(path: str, value: str | None, patient_id: uuid.UUID) -> str:
    filled = path
    while "{" in filled:
        start, end = filled.index("{"), filled.index("}")
        # Percent-encoded as a client would send it; the server decodes it back.
        part = quote(value, safe="") if value is not None else str(patient_id)
        filled = filled[:start] + part + filled[end + 1 :]
    return filled


def _expectation(method: str, path: str) -> Callable[[Any], str | None]:
    """What the route must answer bad input with; None when it did, else what went wrong."""

    def fhir(response: Any) -> str | None:
        if not 400 <= response.status_code < 500:
            return f"status {response.status_code}"
        if not response.headers.get("content-type", "").startswith("application/fhir+json"):
            return f"content type {response.headers.get('content-type')}"
        if response.json().get("resourceType") != "OperationOutcome":
            return "no OperationOutcome"
        return None

    def oauth(response: Any) -> str | None:
        if not 400 <= response.status_code < 500:
            return f"status {response.status_code}"
        if "error" not in response.json():
            return "no OAuth error"
        return None

    def page(response: Any) -> str | None:
        return None if 400 <= response.status_code < 500 else f"status {response.status_code}"

    if (method, path) in OAUTH_FORMS:
        return oauth
    if path in SIGN_IN_PAGES:
        return page
    return fhir if path.startswith("/fhir") else page


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_bad_input_is_refused_in_the_route_s_own_words(
    target: Target, method: str, path: str
) -> None:
    client = target.served.client
    patient_id = target.patient.person_id
    assert patient_id is not None
    expect = _expectation(method, path)
    failures = []
    for probe in _probes(method, path):
        headers = _token(target, method, path)
        if probe.authorization is not None:
            headers["Authorization"] = probe.authorization
        if probe.content_type is not None:
            headers["Content-Type"] = probe.content_type
        # Percent-encoded by hand: the HTTP client refuses to encode a control character.
        query = f"?{urlencode(probe.params)}" if probe.params else ""
        response = client.request(
            method,
            _path(path, probe.path_value, patient_id) + query,
            content=probe.content,
            headers=headers,
        )
        if (method, path) in NO_INPUT:
            fault = f"status {response.status_code}" if response.status_code >= 500 else None
        else:
            fault = expect(response)
        if fault is not None:
            failures.append(f"{probe.name}: {fault}: {response.text[:200]}")
    assert not failures, "\n".join(failures)


def test_every_fhir_and_oauth_route_is_probed() -> None:
    paths = {path for _, path in ROUTES}
    assert {"/fhir", "/fhir/DocumentReference", "/oauth/token", "/fhir/Consent"} <= paths
    assert len(ROUTES) >= 30


def test_fhir_json_probes_reach_a_real_fhir_body_parser(target: Target) -> None:
    # The probes above must be refused for what they are, not for a missing token: the same
    # request with a valid body is accepted.
    response = target.publish(target.bundle())
    assert response.status_code == 200, response.text
    deep = target.publish(DEEP)
    assert deep.status_code == 400
    issue = deep.json()["issue"][0]
    assert issue["code"] == "structure"
