"""Errors as FHIR ``OperationOutcome``s: one translation for the whole FHIR API.

Domain errors carry a message and the field at fault; here they become an HTTP status, an
``issue.code`` (http://hl7.org/fhir/R4/valueset-issue-type.html) and an ``expression``. A policy
refusal is answered exactly like a missing resource. Nothing else — no stack trace, no internal
detail — reaches the client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from carnet.access.actors import Assurance
from carnet.access.errors import AccessError, InsufficientScope, StrongerAuthenticationRequired
from carnet.audit.errors import AuditUnavailable
from carnet.db import DatabaseFault, database_fault
from carnet.errors import (
    CarnetError,
    Conflict,
    InvalidInput,
    InvalidValue,
    LimitExceeded,
    NotFound,
    StateRefused,
)
from carnet.storage import StorageError
from carnet.web.refusals import record_refusal
from carnet.web.way_in import unexpected_incident

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"


class FhirResponse(JSONResponse):
    """A FHIR JSON answer, serialised by orjson (in C): a searchset of 1,000 entries is 1.5 MB,
    and the standard library's encoder spends tens of milliseconds of the worker on it."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        """The content as compact UTF-8 JSON."""
        return orjson.dumps(content)


# (status, issue code) by kind of domain error, most specific first.
_KINDS: tuple[tuple[type[CarnetError], int, str], ...] = (
    (NotFound, 404, "not-found"),
    (InvalidInput, 422, "invalid"),
    (Conflict, 409, "duplicate"),
    (LimitExceeded, 413, "too-costly"),
    (StateRefused, 409, "business-rule"),
)
# issue.code (http://hl7.org/fhir/R4/valueset-issue-type.html) by ``InvalidValue.reason``.
_VALUE_CODES = {
    "too-long": "too-long",
    "character": "value",
    "out-of-range": "value",
    "structure": "structure",
}
# A row refused by carnet.storable names its column; FHIR clients read the element they sent.
_COLUMN_PATHS = {
    "documents.title": (
        "DocumentReference.content.attachment.title | DocumentReference.description"
    ),
    "documents.master_identifier": "DocumentReference.masterIdentifier.value",
    "documents.type_system": "DocumentReference.type.coding.system",
    "documents.type_code": "DocumentReference.type.coding.code",
    "documents.class_code": "DocumentReference.category.coding.code",
    "documents.format_code": "DocumentReference.content.format.code",
    "documents.mime_type": "DocumentReference.content.attachment.contentType",
    "documents.language": "DocumentReference.content.attachment.language",
    "documents.facility_type": "DocumentReference.context.facilityType.coding.code",
    "documents.practice_setting": "DocumentReference.context.practiceSetting.coding.code",
    "documents.created_at": "DocumentReference.content.attachment.creation",
    "documents.service_start": "DocumentReference.context.period.start",
    "documents.service_end": "DocumentReference.context.period.end",
    "submission_sets.master_identifier": "List.identifier.value",
    "submission_sets.source_id": "List.extension.valueIdentifier.value",
    "submission_sets.title": "List.title",
}


def operation_outcome(
    message: str, *, code: str, severity: str = "error", expression: str | None = None
) -> dict[str, Any]:
    """An OperationOutcome with one issue."""
    issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": message}
    if expression:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def outcome_response(
    status: int,
    message: str,
    *,
    code: str,
    expression: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An OperationOutcome answer."""
    return FhirResponse(
        operation_outcome(message, code=code, expression=expression),
        status_code=status,
        headers=headers,
    )


def install(app: FastAPI) -> None:
    """Make ``app`` (the FHIR way in, under ``/fhir``) answer every error with an OperationOutcome.

    The FHIR application is mounted on its own (``carnet.web.way_in``): whatever goes wrong
    under ``/fhir`` — a domain refusal, an unknown path, a parameter FastAPI cannot read, an
    unreachable database, a defect — reaches these handlers and no other way in's.
    """
    app.add_exception_handler(CarnetError, _carnet_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(Exception, _unexpected)


async def _carnet_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CarnetError)
    if isinstance(error, AccessError):
        try:
            await run_in_threadpool(record_refusal, request.app.state.platform, error)
        except AuditUnavailable:
            return _audit_unavailable()
    if isinstance(error, AuditUnavailable):
        return _audit_unavailable()
    return _from_domain(error)


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, SQLAlchemyError)
    incident = uuid.uuid4().hex[:12]
    fault = database_fault(error)
    log.error("database %s, incident %s: %s", fault, incident, type(error).__name__)
    if fault is DatabaseFault.INPUT:
        # The safety net under the checks of carnet.storable: a value the database refused.
        message = f"A value cannot be stored as given (incident {incident}); nothing was done."
        return outcome_response(400, message, code="invalid")
    if fault is DatabaseFault.CONFLICT:
        return outcome_response(
            409,
            f"The request clashes with a concurrent change (incident {incident}).",
            code="conflict",
        )
    if fault is DatabaseFault.UNREACHABLE:
        return outcome_response(
            503,
            f"Carnet cannot reach its database (incident {incident}); nothing was done.",
            code="transient",
            headers={"Retry-After": "5"},
        )
    return outcome_response(
        500, f"Carnet could not complete this request (incident {incident}).", code="exception"
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {401: "login", 403: "forbidden", 404: "not-found", 405: "not-supported"}.get(
        error.status_code, "processing"
    )
    return outcome_response(
        error.status_code,
        str(error.detail),
        code=code,
        headers=dict(error.headers) if error.headers else None,
    )


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ())[1:])
    return outcome_response(
        400,
        f"Invalid parameter {where}: {first.get('msg', 'invalid')}",
        code="invalid",
        expression=where or None,
    )


async def _storage_error(request: Request, error: Exception) -> JSONResponse:
    incident = uuid.uuid4().hex[:12]
    log.error("document store failure, incident %s: %s", incident, error)
    return outcome_response(
        503,
        f"The document store could not serve this request (incident {incident}).",
        code="transient",
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    return outcome_response(
        500,
        f"Carnet could not complete this request (incident {unexpected_incident(request, error)}).",
        code="exception",
    )


def _audit_unavailable() -> JSONResponse:
    return outcome_response(
        503, AuditUnavailable().message, code="transient", headers={"Retry-After": "5"}
    )


def _from_domain(error: CarnetError) -> JSONResponse:
    if isinstance(error, StrongerAuthenticationRequired):
        # RFC 9470: ask the client to step up, naming the levels that would do.
        levels = " ".join(level.acr for level in Assurance if level >= error.required)
        challenge = (
            'Bearer realm="carnet", error="insufficient_user_authentication", '
            f'error_description="A stronger sign-in is required.", acr_values="{levels}"'
        )
        return outcome_response(
            401, error.message, code="security", headers={"WWW-Authenticate": challenge}
        )
    if isinstance(error, InsufficientScope):
        return outcome_response(
            403,
            error.message,
            code="forbidden",
            headers={"WWW-Authenticate": 'Bearer realm="carnet", error="insufficient_scope"'},
        )
    if isinstance(error, InvalidValue):
        return outcome_response(
            400,
            error.message,
            code=_VALUE_CODES.get(error.reason, "invalid"),
            expression=_COLUMN_PATHS.get(error.field or "", error.field),
        )
    for kind, status, code in _KINDS:
        if isinstance(error, kind):
            return outcome_response(status, error.message, code=code, expression=error.field)
    return outcome_response(400, error.message, code="processing", expression=error.field)
