"""DocumentReference read and vread: ``GET /fhir/DocumentReference/{id}[/_history/{vid}]``.

Carnet keeps the current metadata of a document (MHD allows changing only its status, and a
replacement is a new document): ``meta.versionId`` names that state, and a vread of any other
version answers 404.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.access.errors import AccessDenied
from carnet.documents import reading
from carnet.documents.models import Document
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id
from carnet.fhir.mapping.document_reference import document_reference, version_id
from carnet.fhir.outcome import FhirResponse
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (ResourceSupport("DocumentReference", interactions=("read", "vread")),)


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
        return reading.get_document(session, actor, ids[0], ids[1], clock=platform.clock)


def _answer(document: Document, base: str) -> JSONResponse:
    resource = document_reference(document, base_url=base)
    headers = {
        "ETag": f'W/"{version_id(document)}"',
        "Last-Modified": document.updated_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    }
    return FhirResponse(resource, headers=headers)
