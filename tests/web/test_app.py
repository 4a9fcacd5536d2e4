"""The HTTP application: health, home page, OpenAPI page, security headers, error handling."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from carnet.app import create_app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper


def _platform(engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock) -> Platform:
    return Platform(
        settings=Settings(),
        engine=engine,
        sessions=session_factory(engine),
        store=store,
        clock=clock,
    )


@pytest.fixture
def client(
    engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock
) -> Iterator[TestClient]:
    app = create_app(platform=_platform(engine, store, clock))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_health_reports_database_and_store(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["store"] == "ok"


def test_health_is_503_when_the_schema_is_behind(
    tmp_path: Path, store: FilesystemDocumentStore, clock: FrozenClock
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with TestClient(create_app(platform=_platform(engine, store, clock))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"].startswith("schema at None")


def test_health_is_503_when_the_store_is_unavailable(
    engine: Engine, tmp_path: Path, master_key: bytes, clock: FrozenClock
) -> None:
    broken = FilesystemDocumentStore(
        tmp_path / "missing" / "parent" / "store", MasterKeyWrapper(master_key, "k"), max_bytes=10
    )
    with TestClient(create_app(platform=_platform(engine, broken, clock))) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["store"] == "unavailable"


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/", "/health", "/openapi.json", "/no-such-page"):
        headers = client.get(path).headers
        assert headers["cache-control"] == "no-store", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert "default-src 'self'" in headers["content-security-policy"], path
        assert "'unsafe-inline'" not in headers["content-security-policy"], path


def test_home_page(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Carnet</h1>" in response.text


def test_openapi_page_is_served_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/static/swagger/swagger-ui-bundle.js" in page.text
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Carnet"


def test_not_found_is_json(client: TestClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_unexpected_errors_reveal_no_stack_trace(client: TestClient) -> None:
    def explode() -> None:
        raise RuntimeError("secret internal detail")

    client.app.add_api_route("/explode", explode)  # type: ignore[attr-defined]
    response = client.get("/explode")
    assert response.status_code == 500
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "incident" in response.json()["detail"]
