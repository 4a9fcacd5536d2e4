"""Each way in is an application of its own, answering its errors in its own words (issue 16).

FHIR under ``/fhir`` answers OperationOutcomes (http://hl7.org/fhir/R4/http.html), OAuth under
``/oauth`` RFC 6749 section 5.2's JSON, the portal under ``/portal`` an HTML page; a defect in
any of them shows an incident number and no stack trace, and is logged once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError

from carnet.access.errors import AccessDenied
from carnet.app import create_app
from carnet.audit.errors import AuditUnavailable
from carnet.clock import FrozenClock
from carnet.db import session_factory
from carnet.errors import InvalidInput, StateRefused
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore
from carnet.storage.errors import StorageError
from carnet.web.way_in import WayIn


@pytest.fixture
def app(engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock) -> FastAPI:
    platform = Platform(
        settings=Settings(),
        engine=engine,
        sessions=session_factory(engine),
        store=store,
        clock=clock,
    )
    return create_app(platform=platform)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _way_in(app: FastAPI, prefix: str) -> FastAPI:
    (found,) = [r for r in app.routes if isinstance(r, WayIn) and r.prefix == prefix]
    return found.application


def _explode() -> None:
    raise RuntimeError("secret internal detail")


def _plant(app: FastAPI, prefix: str, endpoint: Callable[[], None]) -> str:
    path = f"{prefix}/explode"
    _way_in(app, prefix).add_api_route(path, endpoint)
    return path


class TestFhir:
    def test_an_unknown_path_is_an_operation_outcome(self, client: TestClient) -> None:
        response = client.get("/fhir/Goal")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/fhir+json"
        assert response.json()["issue"][0]["code"] == "not-found"

    def test_a_method_not_served_is_an_operation_outcome(self, client: TestClient) -> None:
        response = client.delete("/fhir/metadata")
        assert response.status_code == 405
        assert response.json()["issue"][0]["code"] == "not-supported"

    def test_the_base_itself_is_served_not_redirected(self, client: TestClient) -> None:
        # ITI-65 posts to the base: no redirect to /fhir/, the way in's own 401.
        response = client.post(
            "/fhir",
            content=b"{}",
            headers={"Content-Type": "application/fhir+json"},
            follow_redirects=False,
        )
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_a_defect_is_an_operation_outcome_with_an_incident(
        self, app: FastAPI, client: TestClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = _plant(app, "/fhir", _explode)
        with caplog.at_level(logging.ERROR):
            response = client.get(path)
        assert response.status_code == 500
        issue = response.json()["issue"][0]
        assert issue["code"] == "exception"
        assert "incident" in issue["diagnostics"]
        assert "secret" not in response.text
        # Logged once, although the error goes up to the site's handler too.
        assert len([r for r in caplog.records if "incident" in r.getMessage()]) == 1


UNAVAILABLE = "temporarily_unavailable"


class TestOAuth:
    def test_a_defect_is_an_rfc_6749_server_error(self, app: FastAPI, client: TestClient) -> None:
        response = client.get(_plant(app, "/oauth", _explode))
        assert response.status_code == 500
        body = response.json()
        assert body["error"] == "server_error"
        assert "incident" in body["error_description"]
        assert "secret" not in response.text

    @pytest.mark.parametrize(
        ("raised", "status", "code"),
        [
            (lambda: InvalidInput("A value is out of range.", field="x"), 400, "invalid_request"),
            (lambda: AccessDenied("not theirs"), 403, "access_denied"),
            (AuditUnavailable, 503, UNAVAILABLE),
            (lambda: StateRefused("Not now."), 400, "invalid_request"),
            (lambda: DataError("INSERT", {}, ValueError("secret")), 400, "invalid_request"),
            (lambda: IntegrityError("INSERT", {}, ValueError("secret")), 503, UNAVAILABLE),
            (lambda: OperationalError("SELECT", {}, OSError("secret")), 503, UNAVAILABLE),
            (lambda: ProgrammingError("SELECT", {}, Exception("secret")), 500, "server_error"),
            (lambda: StorageError("secret disk"), 503, UNAVAILABLE),
        ],
        ids=[
            "input", "access", "audit", "state", "data", "integrity", "operational",
            "programming", "storage",
        ],
    )  # fmt: skip
    def test_each_refusal_from_below_is_an_rfc_6749_error(
        self,
        app: FastAPI,
        client: TestClient,
        raised: Callable[[], Exception],
        status: int,
        code: str,
    ) -> None:
        def refuse() -> None:
            raise raised()

        response = client.get(_plant(app, "/oauth", refuse))
        assert response.status_code == status
        assert response.json()["error"] == code
        assert response.json()["error_description"]
        assert response.headers["cache-control"] == "no-store"
        assert "secret" not in response.text
        if status == 503:
            assert response.headers["retry-after"] == "5"

    def test_a_refused_token_request_is_an_rfc_6749_error(self, client: TestClient) -> None:
        response = client.post("/oauth/token", data={"grant_type": "password"})
        assert response.status_code in (400, 401)
        assert set(response.json()) == {"error", "error_description"}


class TestPortal:
    def test_a_defect_is_a_page(self, app: FastAPI, client: TestClient) -> None:
        response = client.get(_plant(app, "/portal", _explode))
        assert response.status_code == 500
        assert response.headers["content-type"].startswith("text/html")
        assert "incident" in response.text
        assert "secret" not in response.text


def test_discovery_stays_outside_the_ways_in(client: TestClient) -> None:
    assert client.get("/fhir/.well-known/smart-configuration").status_code == 200
    assert client.get("/.well-known/openid-configuration").status_code == 200


def test_the_openapi_document_lists_every_way_in(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/fhir", "/fhir/DocumentReference", "/oauth/token", "/health"} <= set(paths)
