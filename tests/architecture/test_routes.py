"""Every route has an authenticated actor, or a written reason to be public.

The walk goes over every route ``create_app`` serves — included routers, mounted sub-applications
and static mounts, the portal's pages — and reads each route's dependency tree (the endpoint's
signature, its router's dependencies and theirs, down to the leaves). A route is authenticated
when one dependency is the bearer authentication (``carnet.web.authentication``'s
``authenticated_actor``, behind ``CurrentActor`` and ``require_scope``) or the portal's signed-in
visit (``current_visit``, behind ``AnyVisit``, ``PatientVisit``…), or a dependency that calls one
of them. Anything else must sit on ``PUBLIC``, with the reason it may; a new way in (XDS.b,
MLLP over HTTP…) gets the guard right by construction or this test says which route forgot.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Mount

from carnet.access.actors import Actor
from carnet.app import create_app
from carnet.portal.visits import current_visit
from carnet.web.authentication import CurrentActor, authenticated_actor

# The dependencies that establish who is asking: a bearer token, or the portal's signed-in visit.
AUTHENTICATING: frozenset[Callable[..., Any]] = frozenset({authenticated_actor, current_visit})

# Paths (shell patterns; a mount's files are "<mount>/*") served to whoever asks, and why.
PUBLIC: dict[str, str] = {
    "/": "the home page: what Carnet is, its version; no data",
    "/health": "the operators' probe (database and store reachable); no data",
    "/openapi.json": "the API's description; no data",
    "/docs": "the Swagger UI page over /openapi.json",
    "/static/swagger/*": "the Swagger UI's static files",
    "/.well-known/openid-configuration": "OpenID Connect discovery: must be read before sign-in",
    "/fhir/.well-known/smart-configuration": "SMART App Launch discovery: read before sign-in",
    "/oauth/jwks": "the public keys that verify Carnet's tokens (RFC 7517)",
    "/oauth/authorize": "the sign-in page itself: the person proves who they are here",
    "/oauth/authorize/*": "the sign-in steps (letter, invitation, federated, consent, act-for)",
    "/oauth/federation/callback": "an identity provider's answer, checked against its state",
    "/oauth/token": "token endpoint: the client authenticates in the request (RFC 6749 3.2)",
    "/oauth/revoke": "revocation: the client authenticates in the request (RFC 7009 2.1)",
    "/fhir/metadata": "the CapabilityStatement, public by FHIR R4 (http.html#capabilities)",
    "/portal": "the portal's landing page; sends a signed-in visitor home",
    "/portal/sign-in": "starts the portal's authorization code flow",
    "/portal/callback": "ends it: the code is exchanged with the PKCE verifier",
    "/portal/sign-out": "works with an expired session too; CSRF-checked form",
    "/portal/language": "remembers a language cookie; no data",
    "/portal/static/*": "the portal's stylesheets, scripts and images",
    "/xds": "the XDS.b WSDL (GET): describes the services, holds no data",
    "/xds/": "the XDS.b WSDL (GET): describes the services, holds no data",
    "/xds/repository": "WSDL (GET); SOAP (POST) authenticates inside the request — a XUA SAML "
    "assertion in the envelope or a bearer token — in carnet.xds.router before any dossier opens",
    "/xds/registry": "as /xds/repository: WSDL (GET), SOAP authenticated in carnet.xds.router",
}


def _routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(methods, path, route) for every route, mounted sub-applications walked into."""
    for context in iter_route_contexts(routes):
        path = prefix + (context.path or "")
        route = context.route
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from _routes(list(inner), path)
            else:  # static files, or an application that is not a router: every path under it
                yield "*", f"{path}/*", context
            continue
        yield ",".join(sorted(context.methods or ["*"])), path, context


def _dependencies(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    stack = list(dependant.dependencies)
    while stack:
        current = stack.pop()
        if current.call is not None:
            yield current.call
        stack.extend(current.dependencies)


def _authenticates(call: Callable[..., Any]) -> bool:
    """``call`` is an authenticating dependency, or one that calls one (``_visit_of``'s)."""
    if call in AUTHENTICATING:
        return True
    try:
        names = inspect.getclosurevars(call).globals.values()
    except TypeError:  # a class or a callable object: it would name its dependencies itself
        return False
    return any(value in AUTHENTICATING for value in names if callable(value))


def _public(path: str) -> bool:
    return any(fnmatchcase(path, pattern) for pattern in PUBLIC)


def unauthenticated_routes(app: FastAPI) -> list[str]:
    """Every route of ``app`` with no authenticated actor and no place on ``PUBLIC``."""
    found = []
    for methods, path, route in _routes(list(app.routes)):
        dependant = getattr(route, "dependant", None)
        if dependant is not None and any(map(_authenticates, _dependencies(dependant))):
            continue
        if not _public(path):
            found.append(f"{methods} {path}")
    return found


def test_every_route_has_an_authenticated_actor_or_a_public_reason() -> None:
    assert unauthenticated_routes(create_app()) == []


def test_every_public_entry_names_a_route() -> None:
    """A stale entry would let a future route slip in under an old name."""
    paths = [path for _, path, _ in _routes(list(create_app().routes))]
    stale = [pattern for pattern in PUBLIC if not any(fnmatchcase(p, pattern) for p in paths)]
    assert stale == []


def test_a_planted_public_route_is_reported() -> None:
    app = create_app()

    @app.get("/fhir/Observation")
    def leak() -> dict[str, str]:
        return {}

    assert unauthenticated_routes(app) == ["GET /fhir/Observation"]


def test_a_planted_route_in_a_mounted_application_is_reported() -> None:
    app = create_app()
    # Its own docs and description would be public routes too: a sibling way in states them.
    xds = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @xds.post("/iti-41")
    def provide() -> dict[str, str]:
        return {}

    @xds.post("/iti-43")
    def retrieve(actor: CurrentActor) -> dict[str, str]:
        return {}

    app.mount("/xds", xds)
    assert unauthenticated_routes(app) == ["POST /xds/iti-41"]


def test_an_actor_reached_through_another_dependency_counts() -> None:
    app = create_app()

    def reader(actor: CurrentActor) -> Actor:
        return actor

    @app.get("/fhir/Observation", dependencies=[Depends(reader)])
    def observations() -> dict[str, str]:
        return {}

    assert unauthenticated_routes(app) == []
