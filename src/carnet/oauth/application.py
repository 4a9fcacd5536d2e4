"""The OAuth way in under ``/oauth``, its errors answered in RFC 6749's words.

https://www.rfc-editor.org/rfc/rfc6749#section-5.2 — ``{"error": …, "error_description": …}``,
never cached. A refusal from the sign-in domain (``AuthError``) carries its own error code; a
refusal from below it (a value a row cannot hold, a dossier the policy refuses) is an
``invalid_request`` or ``access_denied``; an outage is ``temporarily_unavailable`` and a defect
``server_error`` (section 4.1.2.1's codes). The sign-in pages render their own refusals as
pages; what reaches these handlers escaped them.
"""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from carnet.access.errors import AccessError
from carnet.audit.errors import AuditUnavailable
from carnet.auth.errors import AuthError, InvalidRequest
from carnet.db import DatabaseFault, database_fault
from carnet.errors import CarnetError, InvalidInput
from carnet.oauth import authorize, consent, federation, onboarding, staff_sign_in, tokens
from carnet.storage import StorageError
from carnet.web.refusals import record_refusal
from carnet.web.way_in import unexpected_incident, way_in_application

log = logging.getLogger(__name__)
PREFIX = "/oauth"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def application(state: State) -> FastAPI:
    """The OAuth 2.0 / OpenID Connect endpoints and the sign-in pages, with their handlers."""
    app = way_in_application(state, title="Carnet OAuth")
    app.include_router(tokens.router)
    app.include_router(authorize.router)
    app.include_router(onboarding.router)  # the letter's and invitations' pages
    app.include_router(federation.router)
    app.include_router(consent.router)
    # Staff (CPE card) choose the professional they act for.
    app.include_router(staff_sign_in.router)
    app.add_exception_handler(CarnetError, _carnet_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(Exception, _unexpected)
    return app


async def _carnet_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CarnetError)
    if isinstance(error, AuthError):
        return tokens.oauth_error(error)
    if isinstance(error, InvalidInput):
        # A refusal from below the OAuth routes (a row that cannot be stored).
        return tokens.oauth_error(InvalidRequest(error.message, field=error.field))
    if isinstance(error, AccessError):
        try:
            await run_in_threadpool(record_refusal, request.app.state.platform, error)
        except AuditUnavailable:
            return _unavailable(AuditUnavailable().message)
        return _error(403, "access_denied", error.message)
    if isinstance(error, AuditUnavailable):
        return _unavailable(error.message)
    return _error(400, "invalid_request", error.message)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SQLAlchemyError)
    incident = uuid.uuid4().hex[:12]
    fault = database_fault(error)
    log.error("database %s, incident %s: %s", fault, incident, type(error).__name__)
    if fault is DatabaseFault.INPUT:
        message = f"A value cannot be stored as given (incident {incident}); nothing was done."
        return tokens.oauth_error(InvalidRequest(message))
    if fault in (DatabaseFault.CONFLICT, DatabaseFault.UNREACHABLE):
        return _unavailable(f"Try again (incident {incident}); nothing was done.")
    return _error(500, "server_error", f"Carnet could not complete this (incident {incident}).")


async def _storage_error(request: Request, error: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error("document store failure, incident %s: %s", incident, error)
    return _unavailable(f"Try again (incident {incident}).")


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    incident = unexpected_incident(request, error)
    return _error(500, "server_error", f"Carnet could not complete this (incident {incident}).")


def _unavailable(message: str) -> JSONResponse:
    response = _error(503, "temporarily_unavailable", message)
    response.headers["Retry-After"] = "5"
    return response


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": code, "error_description": message}, status_code=status, headers=_NO_STORE
    )
