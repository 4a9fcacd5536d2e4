"""ITI-68 Retrieve Document: ``GET /fhir/Binary/{id}``.

https://profiles.ihe.net/ITI/MHD/ITI-68.html — the document's bytes with its MIME type, or a
FHIR ``Binary`` resource when ``application/fhir+json`` is asked for, or CDA R2 when
``application/hl7-cda+xml`` is (``iti68_cda``: a CDA document as received, a laboratory report
written from its results; else 406). Clinical content is never
cached (``no-store``); the ETag is the content's SHA-256. The answer is sandboxed
(``Content-Security-Policy: sandbox``, ``nosniff``) and anything but a passive type (PDF, PNG,
JPEG, GIF, WebP, plain text: ``documents.formats``) is an attachment.
"""

from __future__ import annotations

import base64
import hashlib

from fastapi import APIRouter, Request, Response

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.documents import formats, reading
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import CurrentPlatform, transaction
from carnet.fhir.ids import parse_document_resource_id
from carnet.fhir.mhd.iti68_cda import CDA_MEDIA_TYPE, as_cda, wants_cda
from carnet.fhir.outcome import FHIR_JSON, FhirResponse, outcome_response
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
        dossier = open_dossier(
            session, actor, patient_id, purposes.RETRIEVE_DOCUMENTS, clock=platform.clock
        )
        document, content = reading.read_content(session, dossier, document_id, platform.store)
        accept = request.headers.get("accept", "")
        cda = as_cda(session, dossier, document, content) if wants_cda(accept) else None
    headers = {
        "ETag": f'"{document.sha256}"',
        "Cache-Control": "no-store",
        # A browser pointed at the API must not run what a publisher stored (HTML, SVG…) on
        # Carnet's origin, nor guess a type other than the one declared.
        "Content-Security-Policy": "sandbox",
        "X-Content-Type-Options": "nosniff",
    }
    if wants_cda(accept):
        if cda is None:
            return outcome_response(
                406, "This document is not available as CDA R2.", code="not-supported"
            )
        headers["ETag"] = f'"{hashlib.sha256(cda).hexdigest()}"'
        headers["Content-Disposition"] = "attachment"
        return Response(cda, media_type=CDA_MEDIA_TYPE, headers=headers)
    if FHIR_JSON in accept:
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
