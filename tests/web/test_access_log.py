"""The access log: method, path, status and time; never the query string (issue 15 review)."""

from __future__ import annotations

import logging

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from carnet.web.access_log import AccessLog


async def _search(request: Request) -> PlainTextResponse:
    return PlainTextResponse("[]", status_code=200 if request.query_params else 400)


async def _fail(request: Request) -> PlainTextResponse:
    raise RuntimeError("boom")


_APP = AccessLog(Starlette(routes=[Route("/fhir/Patient", _search), Route("/fail", _fail)]))


def test_logs_method_path_status_and_no_query_value(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="carnet.web.access_log")
    with TestClient(_APP) as client:
        answered = client.get(
            "/fhir/Patient?identifier=urn:oid:1.2.250|1850375123456&family=Secretname"
            "&birthdate=1985-03-07"
        )
    assert answered.status_code == 200
    (line,) = [record.getMessage() for record in caplog.records]
    assert line.startswith("GET /fhir/Patient 200 ")
    assert line.endswith(" ms")
    for value in ("1850375123456", "Secretname", "1985-03-07", "identifier", "?"):
        assert value not in line


def test_a_failed_request_is_logged_as_500(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="carnet.web.access_log")
    with TestClient(_APP, raise_server_exceptions=False) as client:
        assert client.get("/fail?code=one-time").status_code == 500
    assert [record.getMessage().rsplit(" ", 2)[0] for record in caplog.records] == ["GET /fail 500"]


def test_an_encoded_newline_cannot_forge_a_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="carnet.web.access_log")
    with TestClient(_APP) as client:
        client.get("/x%0AINFO%20forged")
    (line,) = [record.getMessage() for record in caplog.records]
    assert "\n" not in line
    assert line.startswith("GET /x%0AINFO%20forged 404 ")
