"""ITI-68 Retrieve Document: ``GET /fhir/Binary/{id}``.

https://profiles.ihe.net/ITI/MHD/ITI-68.html — the document's bytes with its MIME type, or a
FHIR ``Binary`` resource when ``application/fhir+json`` is asked for. Clinical content is never
cached (``no-store``); the ETag is the content's SHA-256. The answer is sandboxed
(``Content-Security-Policy: sandbox``, ``nosniff``) and anything but a passive type (PDF, PNG,
JPEG, GIF, WebP, plain text: ``documents.formats``) is an attachment.
"""

from __future__ import annotations

import base64

from fastapi import APIRouter, Request, Response

from carnet.access.errors import AccessDenied
from carnet.documents import formats, reading
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id
from carnet.fhir.outcome import FHIR_JSON, FhirResponse
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (ResourceSupport("Binary", interactions=("read",)),)


@router.get("/Binary/{resource_id}", summary="ITI-68 Retrieve Document", tags=["MHD"])
def retrieve_document(
    *,
    resource_id: str,
    request: Request,
    actor: CurrentActor,
    platform: CurrentPlatform,
) -> Response:
    """The document's content, if the policy lets the actor see it."""
    ids = parse_document_resource_id(resource_id)
    if ids is None:
        raise AccessDenied("malformed id")
    patient_id, document_id = ids
    with transaction(platform) as session:
        document, content = reading.read_content(
            session, platform.store, actor, patient_id, document_id, clock=platform.clock
        )
    headers = {
        "ETag": f'"{document.sha256}"',
        "Cache-Control": "no-store",
        # A browser pointed at the API must not run what a publisher stored (HTML, SVG…) on
        # Carnet's origin, nor guess a type other than the one declared.
        "Content-Security-Policy": "sandbox",
        "X-Content-Type-Options": "nosniff",
    }
    if FHIR_JSON in request.headers.get("accept", ""):
        binary = {
            "resourceType": "Binary",
            "id": resource_id,
            "contentType": document.mime_type,
            "data": base64.b64encode(content).decode("ascii"),
        }
        return FhirResponse(binary, headers=headers)
    if not formats.shown_inline(document.mime_type, content):
        headers["Content-Disposition"] = "attachment"
    return Response(content, media_type=document.mime_type, headers=headers)
