"""The XDS.b way in: SOAP 1.2 endpoints under ``/xds``, dispatched by WS-Addressing Action.

* ``POST /xds/repository`` — the Document Repository: ITI-41 Provide and Register Document
  Set-b, ITI-43 Retrieve Document Set.
* ``POST /xds/registry`` — the Document Registry: ITI-18 Registry Stored Query, ITI-57 Update
  Document Set.
* ``GET /xds/?wsdl`` (or ``/xds/repository?wsdl``, ``/xds/registry?wsdl``) — the WSDL, its
  endpoint addresses at ``CARNET_PUBLIC_URL``.

The caller authenticates inside the request: a XUA SAML 2.0 assertion in the SOAP header's
``wsse:Security`` (IHE ITI-40), or a Carnet access token (``Authorization: Bearer``). Either way
it becomes the same ``Actor`` the FHIR paths serve, and every dossier is opened through the door.

One request is one transaction. What the caller sent or may not do is answered as a
``RegistryResponse`` Failure with its IHE error code (``carnet.xds.errors``); a message that is
not SOAP, an unknown action or a failed authentication as a SOAP 1.2 Fault; never a stack trace.
A policy refusal is recorded on the audit trail in a transaction of its own, since the
request's is rolled back.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from lxml import etree
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.exceptions import HTTPException as StarletteHTTPException

from carnet.access.actors import Actor
from carnet.access.errors import AccessError
from carnet.audit.errors import AuditUnavailable
from carnet.db import DatabaseFault, database_fault, unit_of_work
from carnet.errors import CarnetError
from carnet.platform import Platform
from carnet.storage import StorageError
from carnet.web.authentication import BearerChallenge, bearer_actor
from carnet.web.refusals import record_refusal
from carnet.web.way_in import unexpected_incident, way_in_application
from carnet.xds import provide, retrieve, soap
from carnet.xds import vocabulary as v
from carnet.xds.errors import (
    QUERY,
    REGISTRY_ERROR,
    REGISTRY_METADATA_ERROR,
    RS,
    XDSB,
    RegistryError,
    XdsRefusal,
    registry_error,
    registry_response,
)

log = logging.getLogger(__name__)
PREFIX = "/xds"
_WSDL = Path(__file__).parent / "wsdl" / "carnet-xds.wsdl"
_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
# The answer to each action, and the element a Failure is worded in (ITI TF-2 3.18, 3.41, 3.43,
# 3.57: each response is, or wraps, a RegistryResponse).
_RESPONSES = {
    provide.ACTION: (provide.RESPONSE_ACTION, f"{{{RS}}}RegistryResponse"),
    retrieve.ACTION: (retrieve.RESPONSE_ACTION, f"{{{XDSB}}}RetrieveDocumentSetResponse"),
    v.ITI18_ACTION: (v.ITI18_RESPONSE_ACTION, f"{{{QUERY}}}AdhocQueryResponse"),
    v.ITI57_ACTION: (v.ITI57_RESPONSE_ACTION, f"{{{RS}}}RegistryResponse"),
}
_REPOSITORY = frozenset({provide.ACTION, retrieve.ACTION})
_REGISTRY = frozenset({v.ITI18_ACTION, v.ITI57_ACTION})


def application(state: State) -> FastAPI:
    """The XDS.b way in, sharing the site's ``state``; every error answered as SOAP."""
    app = way_in_application(state, title="Carnet XDS.b")
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

    @app.get(PREFIX, include_in_schema=False)
    @app.get(f"{PREFIX}/", summary="The XDS.b WSDL", tags=["XDS.b"])
    @app.get(f"{PREFIX}/repository", include_in_schema=False)
    @app.get(f"{PREFIX}/registry", include_in_schema=False)
    def wsdl(request: Request) -> Response:
        """The WSDL of Carnet's XDS.b services (public: it describes, it holds no data)."""
        platform: Platform = request.app.state.platform
        base = platform.settings.public_url.rstrip("/") + PREFIX
        text = _WSDL.read_text(encoding="utf-8").replace("{{BASE}}", base)
        return Response(text, media_type="text/xml; charset=utf-8")

    @app.post(f"{PREFIX}/repository", summary="ITI-41 and ITI-43 (SOAP 1.2)", tags=["XDS.b"])
    async def repository(request: Request) -> Response:
        """The Document Repository endpoint."""
        return await _serve(request, _REPOSITORY)

    @app.post(f"{PREFIX}/registry", summary="ITI-18 and ITI-57 (SOAP 1.2)", tags=["XDS.b"])
    async def registry(request: Request) -> Response:
        """The Document Registry endpoint."""
        return await _serve(request, _REGISTRY)

    return app


async def _serve(request: Request, actions: frozenset[str]) -> Response:
    platform: Platform = request.app.state.platform
    limit = platform.settings.max_document_bytes * 2 + 1024 * 1024
    body = await request.body()
    envelope: soap.Envelope | None = None
    try:
        if len(body) > limit:
            raise soap.SoapFault(f"The message is over {limit} bytes.", status=413)
        envelope = soap.read_message(request.headers.get("content-type", ""), body)
        if envelope.action not in actions:
            raise soap.SoapFault(
                f"This endpoint does not serve the action {envelope.action!r}.",
                subcode="wsa:ActionNotSupported",
            )
        if not soap.reply_to_is_anonymous(envelope):
            raise soap.SoapFault(
                "Carnet answers on the same connection: ReplyTo must be anonymous.",
                subcode="wsa:OnlyAnonymousAddressSupported",
            )
        answer = await run_in_threadpool(_answer, platform, request, envelope)
    except soap.SoapFault as fault:
        answer = soap.fault(fault, relates_to=envelope.message_id if envelope else None)
    except _Unauthenticated as failure:
        reply = soap.fault(failure.fault, relates_to=envelope.message_id if envelope else None)
        return Response(
            reply.body,
            status_code=reply.status,
            media_type=reply.content_type,
            headers=failure.headers,
        )
    return Response(answer.body, status_code=answer.status, media_type=answer.content_type)


class _Unauthenticated(Exception):
    def __init__(self, fault: soap.SoapFault, headers: dict[str, str]) -> None:
        super().__init__(fault.reason)
        self.fault = fault
        self.headers = headers


def _answer(platform: Platform, request: Request, envelope: soap.Envelope) -> soap.Reply:
    """Authenticate, serve the action in one transaction, and word the outcome."""
    response_action, failure_tag = _RESPONSES[envelope.action]
    actor = _authenticate(platform, request, envelope)
    attachments: dict[str, bytes] = {}
    refusals: list[AccessError] = []
    try:
        with unit_of_work(platform.sessions) as session:
            payload, attachments, refusals = _dispatch(session, platform, actor, envelope)
    except AccessError as denied:
        _record(platform, denied)
        payload = registry_response([registry_error(denied)], tag=failure_tag)
    except CarnetError as error:
        payload = registry_response([registry_error(error)], tag=failure_tag)
    except XdsRefusal as refused:
        payload = registry_response(refused.errors, tag=failure_tag)
    except StorageError:
        log.exception("xds: the document store failed")
        raise soap.SoapFault(
            "The document store is unavailable; retry later.", code="Receiver", status=503
        ) from None
    except SQLAlchemyError as error:
        payload = _database_failure(error, failure_tag)
    for refusal in refusals:
        _record(platform, refusal)
    return soap.reply(
        _wrapped(payload, failure_tag),
        action=response_action,
        relates_to=envelope.message_id,
        attachments=attachments,
        mtom=envelope.mtom,
    )


def _dispatch(
    session: Any, platform: Platform, actor: Actor, envelope: soap.Envelope
) -> tuple[etree._Element, dict[str, bytes], list[AccessError]]:
    if envelope.action == provide.ACTION:
        return (
            provide.provide(session, platform.store, actor, envelope, clock=platform.clock),
            {},
            [],
        )
    if envelope.action == retrieve.ACTION:
        found = retrieve.retrieve(
            session, platform.store, actor, envelope.body, clock=platform.clock, mtom=envelope.mtom
        )
        return found.response, found.attachments, found.refusals
    module = "carnet.xds.stored_query" if envelope.action == v.ITI18_ACTION else "carnet.xds.update"
    handle: Callable[..., etree._Element] = _transaction_of(module)
    return handle(session, actor, envelope.body, clock=platform.clock), {}, []


def _transaction_of(module: str) -> Callable[..., etree._Element]:
    # ITI-18 and ITI-57 live in modules of their own (``stored_query``, ``update``); an
    # installation without one answers that the action is not served rather than failing.
    try:
        handle: Callable[..., etree._Element] = importlib.import_module(module).handle
    except (ImportError, AttributeError):
        raise soap.SoapFault(
            "This action is not served yet.", subcode="wsa:ActionNotSupported"
        ) from None
    return handle


def _wrapped(payload: etree._Element, failure_tag: str) -> etree._Element:
    """A Failure of ITI-43 is a RetrieveDocumentSetResponse holding the RegistryResponse."""
    if (
        payload.tag == f"{{{RS}}}RegistryResponse"
        and failure_tag == f"{{{XDSB}}}RetrieveDocumentSetResponse"
    ):
        outer = etree.Element(failure_tag, nsmap={"xdsb": XDSB, "rs": RS})
        outer.append(payload)
        return outer
    return payload


def _authenticate(platform: Platform, request: Request, envelope: soap.Envelope) -> Actor:
    """The actor of a XUA assertion in the SOAP header, else of the bearer token."""
    security = envelope.header.find(f"{{{_WSSE}}}Security") if envelope.header is not None else None
    if security is not None:
        return _from_assertion(platform, request, security)
    try:
        return bearer_actor(request)
    except BearerChallenge as challenge:
        raise _Unauthenticated(
            soap.SoapFault(
                str(challenge.detail),
                subcode="wsse:FailedAuthentication",
                status=challenge.status_code,
            ),
            dict(challenge.headers or {}),
        ) from None


def _from_assertion(platform: Platform, request: Request, security: etree._Element) -> Actor:
    try:
        xua = importlib.import_module("carnet.xds.xua")
    except ImportError:
        raise soap.SoapFault(
            "XUA assertions are not accepted by this installation: send a bearer token.",
            subcode="wsse:UnsupportedSecurityToken",
            status=401,
        ) from None
    state = request.app.state
    trust = getattr(state, "xds_xua_trust", None)
    if trust is None:
        trust = xua.XuaTrust.from_settings(platform.settings)
        state.xds_xua_trust = trust
    try:
        with platform.sessions() as session:
            actor: Actor = xua.actor_from_assertion(
                session,
                security,
                trust=trust,
                clock=platform.clock,
                network_address=request.client.host if request.client else None,
            )
    except CarnetError as error:
        raise soap.SoapFault(str(error), subcode="wsse:FailedAuthentication", status=401) from None
    return actor


def _record(platform: Platform, refusal: AccessError) -> None:
    try:
        record_refusal(platform, refusal)
    except AuditUnavailable:
        # A refusal that cannot be recorded is not answered as if all were well (security.md).
        raise soap.SoapFault(
            "The audit trail is unavailable; retry later.", code="Receiver", status=503
        ) from None


def _database_failure(error: SQLAlchemyError, failure_tag: str) -> etree._Element:
    incident = uuid.uuid4().hex[:12]
    fault = database_fault(error)
    log.error("xds: database %s, incident %s: %s", fault, incident, type(error).__name__)
    if fault is DatabaseFault.INPUT:
        return registry_response(
            [
                RegistryError(
                    REGISTRY_METADATA_ERROR,
                    f"A value cannot be stored as given (incident {incident}).",
                )
            ],
            tag=failure_tag,
        )
    if fault is DatabaseFault.CONFLICT:
        return registry_response(
            [
                RegistryError(
                    REGISTRY_ERROR,
                    f"The request clashes with a concurrent change (incident {incident}).",
                )
            ],
            tag=failure_tag,
        )
    raise soap.SoapFault(
        f"The registry is unavailable; retry later (incident {incident}).",
        code="Receiver",
        status=503,
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    reply = soap.fault(soap.SoapFault(str(error.detail), status=error.status_code))
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


async def _unexpected(request: Request, error: Exception) -> Response:
    incident = unexpected_incident(request, error)
    reply = soap.fault(
        soap.SoapFault(
            f"Carnet could not complete this request (incident {incident}).",
            code="Receiver",
            status=500,
        )
    )
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)
