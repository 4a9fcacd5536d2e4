"""Each way in (FHIR, OAuth, the portal, and XDS.b and MLLP over HTTP to come) as an application
of its own, mounted under its path prefix, translating its errors with its own handlers.

One application with every handler would have to pick the way in of each error from the URL;
here an error raised under ``/fhir`` can only reach the FHIR application's handlers (an
OperationOutcome), one under ``/oauth`` the OAuth one's (RFC 6749's JSON), one under
``/portal`` the portal's (an HTML page). A path under a prefix that no route of the way in
serves is answered by that way in too (a FHIR 404 is an OperationOutcome).

Unlike Starlette's ``Mount``, a ``WayIn`` keeps the whole path: routes are declared as clients
call them (``/fhir/Patient``), the OpenAPI document lists them so, and the prefix itself
(``POST /fhir``, ITI-65) is served by the way in rather than redirected to ``/fhir/``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette._utils import get_route_path
from starlette.datastructures import State
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

log = logging.getLogger(__name__)
# Where a way in's handler leaves the incident of a defect: the error goes on up to the site's
# own handler (Starlette re-raises it for the server's log), which must not count it twice.
_INCIDENT = "carnet.incident"


class WayIn(Mount):
    """A way in's application, serving ``prefix`` and every path under it, paths unchanged."""

    def __init__(self, prefix: str, app: FastAPI) -> None:
        # An empty mount path: the application sees the path the client sent, and a walk over
        # the routes (tests/architecture/test_routes.py) reads each route's own, whole path.
        super().__init__("", app=app, name=prefix.strip("/"))
        self.prefix = prefix.rstrip("/")
        self.application = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """A full match for the prefix and every path below it, the scope left as it is."""
        if scope["type"] != "http":
            return Match.NONE, {}
        path = get_route_path(scope)
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return Match.NONE, {}
        return Match.FULL, {"endpoint": self.app}


def way_in_application(state: State, *, title: str) -> FastAPI:
    """An empty application for a way in, sharing the site's ``state`` (its platform, token
    authority…, set by the site's lifespan: a mounted application's own lifespan never runs).

    It serves no documentation of its own; the site's ``/openapi.json`` lists every way in's
    operations (``openapi_of``).
    """
    app = FastAPI(title=title, openapi_url=None, docs_url=None, redoc_url=None)
    app.state = state
    return app


def served_routes(site: FastAPI) -> list[BaseRoute]:
    """The site's routes, each way in's in its place: what a walk over every route reads."""
    routes: list[BaseRoute] = []
    for route in site.routes:
        if isinstance(route, WayIn):
            routes.extend(route.application.routes)
        else:
            routes.append(route)
    return routes


def openapi_of(site: FastAPI) -> dict[str, Any]:
    """The site's OpenAPI document: its own operations and every way in's."""
    if site.openapi_schema is None:
        site.openapi_schema = get_openapi(
            title=site.title,
            version=site.version,
            description=site.description,
            routes=served_routes(site),
        )
    return site.openapi_schema


def unexpected_incident(request: Request, error: Exception) -> str:
    """Log a defect once, with its traceback, under a short incident number the answer shows."""
    known: str | None = request.scope.get(_INCIDENT)
    if known is not None:
        return known
    incident = uuid.uuid4().hex[:12]
    request.scope[_INCIDENT] = incident
    log.error("unexpected error, incident %s", incident, exc_info=error)
    return incident
