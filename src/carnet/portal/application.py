"""The portal under ``/portal``: an application of its own, whose errors are HTML pages.

Its routes, static files and the handlers of what they raise are set here, above the pages: the
kernel (``visits``) knows no page, so no page and the kernel import each other. A defect is a
page too, naming the incident the operators' log holds, never a stack trace.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from carnet.access.errors import AccessError, StrongerAuthenticationRequired
from carnet.audit.errors import AuditUnavailable
from carnet.db import DatabaseFault, database_fault
from carnet.errors import CarnetError, Conflict, InvalidInput, LimitExceeded, NotFound, StateRefused
from carnet.portal import agency, apps, essentials, patient, professional, security
from carnet.portal.error_words import said
from carnet.portal.visits import (
    STATIC_PATH,
    CsrfRefused,
    SignInRequired,
    language_of,
    platform_of,
    public_page,
    requested_path,
    router,
)
from carnet.storage import StorageError
from carnet.web.refusals import record_refusal
from carnet.web.way_in import unexpected_incident, way_in_application

PREFIX = "/portal"
log = logging.getLogger(__name__)
_VALUE_REFUSED = "A value in this form cannot be stored as given; nothing was saved."
_STATUS_BY_KIND: tuple[tuple[type[CarnetError], int], ...] = (
    (NotFound, 404),
    (InvalidInput, 422),
    (Conflict, 409),
    (LimitExceeded, 413),
    (StateRefused, 409),
)


def application(state: State) -> FastAPI:
    """The portal's pages, with their handlers."""
    app = way_in_application(state, title="Carnet portal")
    install(app)
    app.add_exception_handler(Exception, _unexpected)
    return app


async def _unexpected(request: Request, error: Exception) -> Response:
    incident = unexpected_incident(request, error)
    return public_page(
        request,
        "error.html",
        status_code=500,
        message=f"Carnet could not complete this request (incident {incident}).",
    )


def install(app: FastAPI) -> None:
    """Serve the portal on ``app`` (its own application, ``carnet.portal.application``): its
    routes, its static files, and readable error pages for whatever goes wrong."""
    app.include_router(router)
    app.include_router(patient.router)
    app.include_router(professional.router)
    app.include_router(agency.router)
    app.include_router(essentials.router)
    app.include_router(apps.router)
    # Passkeys: the Security page (carnet.portal.security).
    app.include_router(security.router)
    app.mount(
        STATIC_PATH, StaticFiles(packages=[("carnet.portal", "static")]), name="portal-static"
    )

    async def carnet_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, CarnetError)
        if isinstance(error, StrongerAuthenticationRequired):
            return _to_sign_in(request, SignInRequired(requested_path(request), reason="strong"))
        if isinstance(error, AccessError):
            try:
                await run_in_threadpool(record_refusal, platform_of(request), error)
            except AuditUnavailable:
                return _unavailable(request)
        if isinstance(error, AuditUnavailable):
            return _unavailable(request)
        status = next((code for kind, code in _STATUS_BY_KIND if isinstance(error, kind)), 400)
        return public_page(
            request, "error.html", status_code=status, message=said(error, language_of(request))
        )

    async def sign_in_required(request: Request, error: Exception) -> Response:
        assert isinstance(error, SignInRequired)
        return _to_sign_in(request, error)

    async def csrf_refused(request: Request, error: Exception) -> Response:
        return public_page(request, "error.html", status_code=403, problem="csrf")

    async def database_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, SQLAlchemyError)
        fault = database_fault(error)
        log.error("portal: database %s: %s", fault, type(error).__name__)
        if fault is DatabaseFault.INPUT:
            # A value the database refused is the form's, not an outage: no retry will help.
            return public_page(request, "error.html", status_code=400, message=_VALUE_REFUSED)
        return _unavailable(request)

    async def storage_error(request: Request, error: Exception) -> Response:
        log.error("portal: document store failure: %s", error)
        return _unavailable(request)

    app.add_exception_handler(CarnetError, carnet_error)
    app.add_exception_handler(SignInRequired, sign_in_required)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_exception_handler(SQLAlchemyError, database_error)
    app.add_exception_handler(StorageError, storage_error)


def _to_sign_in(request: Request, error: SignInRequired) -> Response:
    if error.reason is not None:
        # Signed in, but as someone this page is not for, or not strongly enough: say so rather
        # than loop through the sign-in page.
        return public_page(
            request,
            "error.html",
            status_code=403,
            problem=f"sign-in-{error.reason}",
            next_path=error.next_path,
        )
    if request.method != "GET":
        return public_page(request, "error.html", status_code=401, problem="session-ended")
    return RedirectResponse(f"/portal/sign-in?{urlencode({'next': error.next_path})}", 303)


def _unavailable(request: Request) -> Response:
    response = public_page(request, "error.html", status_code=503, problem="unavailable")
    response.headers["Retry-After"] = "5"
    return response
