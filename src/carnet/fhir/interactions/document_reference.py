"""DocumentReference read, vread and its author's correction.

``GET /fhir/DocumentReference/{id}[/_history/{vid}]``: Carnet keeps the current metadata of a
document (MHD allows changing only its status, and a replacement is a new document):
``meta.versionId`` names that state, and a vread of any other version answers 404.

``PATCH /fhir/DocumentReference/{id}`` (http://hl7.org/fhir/R4/http.html#patch, a JSON Patch,
RFC 6902, as ``application/json-patch+json``) takes one change only: ``replace`` of ``/status``
by ``entered-in-error``, the author withdrawing what they published by mistake (as MHD's
metadata update and XDS's ITI-57 do). The document stays in the dossier, marked; an
``If-Match`` naming another version answers 412. Only its author may (``MANAGE_DOCUMENT``);
anyone else meets 404, recorded.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.audit.models import AuditAction
from carnet.documents import guard, reading, visibility
from carnet.documents.models import Document
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id
from carnet.fhir.mapping.document_reference import document_reference, version_id
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.validation import InvalidResource, read_json
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (ResourceSupport("DocumentReference", interactions=("read", "vread", "patch")),)
_JSON_PATCH = "application/json-patch+json"
_WITHDRAWAL = {"op": "replace", "path": "/status", "value": "entered-in-error"}


@router.get("/DocumentReference/{resource_id}", summary="Read a DocumentReference", tags=["MHD"])
def read_document_reference(
    resource_id: str, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """The document's metadata, if the policy lets the actor see it."""
    document = _read(platform, actor, resource_id)
    return _answer(document, base)


@router.get(
    "/DocumentReference/{resource_id}/_history/{version}",
    summary="Read a version of a DocumentReference",
    tags=["MHD"],
)
def vread_document_reference(
    resource_id: str, version: str, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """The document's metadata in the given version (only the current one is kept)."""
    document = _read(platform, actor, resource_id)
    if version != version_id(document):
        raise AccessDenied("no such version")
    return _answer(document, base)


def _read(platform: CurrentPlatform, actor: CurrentActor, resource_id: str) -> Document:
    ids = parse_document_resource_id(resource_id)
    if ids is None:
        raise AccessDenied("malformed id")
    with transaction(platform) as session:
        dossier = open_dossier(
            session, actor, ids[0], purposes.READ_DOCUMENTS, clock=platform.clock
        )
        return reading.get_document(session, dossier, ids[1])


def _answer(document: Document, base: str) -> JSONResponse:
    resource = document_reference(document, base_url=base)
    headers = {
        "ETag": f'W/"{version_id(document)}"',
        "Last-Modified": document.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    return FhirResponse(resource, headers=headers)


async def json_patch(request: Request) -> Any:
    """A dependency: the request's JSON Patch (RFC 6902), as ``application/json-patch+json``."""
    if request.headers.get("content-type", "").split(";")[0].strip() != _JSON_PATCH:
        raise HTTPException(415, "Send the change as a JSON Patch (application/json-patch+json).")
    return read_json(await request.body(), root="Patch")


@router.patch(
    "/DocumentReference/{resource_id}",
    summary="Withdraw a document as entered-in-error (its author)",
    tags=["MHD"],
)
def patch_document_reference(
    resource_id: str,
    *,
    actor: CurrentActor,
    platform: CurrentPlatform,
    base: BaseUrl,
    patch: Annotated[Any, Depends(json_patch)],
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Mark the document entered-in-error; the answer is its metadata after the change."""
    if patch != [_WITHDRAWAL]:
        raise InvalidResource(
            'Only [{"op": "replace", "path": "/status", "value": "entered-in-error"}] is '
            "taken: a document's author withdraws it; anything else is a new document.",
            field="Patch",
        )
    ids = parse_document_resource_id(resource_id)
    if ids is None:
        raise AccessDenied("malformed id")
    with transaction(platform) as session:
        dossier = open_dossier(
            session, actor, ids[0], purposes.MANAGE_DOCUMENT, clock=platform.clock
        )
        if if_match is not None:
            # The author's own document, read under the same purpose the change is made with.
            current = guard.require_manage(session, dossier, ids[1], AuditAction.STATUS_CHANGE)
            if if_match.strip() not in (f'W/"{version_id(current)}"', f'"{version_id(current)}"'):
                raise HTTPException(412, "The document changed since that version was read.")
        document = visibility.mark_entered_in_error(session, dossier, ids[1])
    return _answer(document, base)
