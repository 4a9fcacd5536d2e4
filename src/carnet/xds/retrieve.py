"""ITI-43 Retrieve Document Set: documents' bytes by repository and document uniqueId.

IHE ITI TF-2 3.43: an ``xdsb:RetrieveDocumentSetRequest`` names one or more documents
(``RepositoryUniqueId`` + ``DocumentUniqueId``); the answer carries each found document in a
``DocumentResponse`` — as an MTOM part when the request came as MTOM, inline base64 otherwise —
and a ``RegistryResponse`` whose status is ``Success`` (all found), ``PartialSuccess`` or
``Failure`` (none), with an error for each one missing.

XDS sends no patient: ``documents.locating`` says which dossiers hold a uniqueId, and each is
opened through the door to retrieve, with the document-by-document policy of ITI-68. A document
the caller may not see is answered ``XDSMissingDocument``, exactly as an absent one; its refusal
is on the audit trail (``refusals``, recorded by the router in a transaction of its own).
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.access.errors import AccessError
from carnet.clock import Clock
from carnet.storage import DocumentStore
from carnet.xds import dossiers, mapping
from carnet.xds.errors import (
    MISSING_DOCUMENT,
    REGISTRY_METADATA_ERROR,
    RS,
    UNKNOWN_REPOSITORY_ID,
    XDSB,
    RegistryError,
    XdsRefusal,
    append_errors,
)
from carnet.xds.soap import XOP
from carnet.xds.vocabulary import REPOSITORY_UNIQUE_ID

ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
# One request retrieves a handful of documents; more is a bulk export, which has its own way.
MAX_DOCUMENTS = 100
_SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
_FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
_PARTIAL = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


@dataclass
class Retrieved:
    """The answer, its MTOM parts (by Content-ID) and the refusals to record on their own."""

    response: etree._Element
    attachments: dict[str, bytes] = field(default_factory=dict)
    refusals: list[AccessError] = field(default_factory=list)


@dataclass(frozen=True)
class _Request:
    repository: str
    unique_id: str
    home: str | None


def retrieve(
    session: Session,
    store: DocumentStore,
    actor: Actor,
    body: etree._Element,
    *,
    clock: Clock,
    mtom: bool,
) -> Retrieved:
    """Retrieve the documents ``body`` names that the actor may see."""
    requests = _requests(body)
    response = etree.Element(
        f"{{{XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": XDSB, "rs": RS}
    )
    registry = etree.SubElement(response, f"{{{RS}}}RegistryResponse")
    retrieved = Retrieved(response)
    errors: list[RegistryError] = []
    holders = dossiers.holders(
        session, {mapping.master_identifier(request.unique_id) for request in requests}
    )
    for request in requests:
        if request.repository != REPOSITORY_UNIQUE_ID:
            errors.append(
                RegistryError(
                    UNKNOWN_REPOSITORY_ID,
                    f"Carnet's repository is {REPOSITORY_UNIQUE_ID}.",
                    request.repository,
                )
            )
            continue
        found = _read(
            session,
            store,
            actor,
            request,
            holders=holders,
            clock=clock,
            refusals=retrieved.refusals,
        )
        if found is None:
            errors.append(RegistryError(MISSING_DOCUMENT, "No such document.", request.unique_id))
            continue
        mime_type, content = found
        _document_response(response, request, mime_type, content, retrieved, mtom=mtom)
    status = (
        _PARTIAL if errors and len(errors) < len(requests) else _FAILURE if errors else _SUCCESS
    )
    registry.set("status", status)
    if errors:
        append_errors(registry, errors)
    return retrieved


def _requests(body: etree._Element) -> list[_Request]:
    if body.tag != f"{{{XDSB}}}RetrieveDocumentSetRequest":
        raise XdsRefusal(REGISTRY_METADATA_ERROR, "The body is not a RetrieveDocumentSetRequest.")
    requests = []
    for element in body.iterfind(f"{{{XDSB}}}DocumentRequest"):
        repository = _text(element, "RepositoryUniqueId")
        unique_id = _text(element, "DocumentUniqueId")
        if not repository or not unique_id:
            raise XdsRefusal(
                REGISTRY_METADATA_ERROR,
                "A DocumentRequest needs a RepositoryUniqueId and a DocumentUniqueId.",
            )
        requests.append(_Request(repository, unique_id, _text(element, "HomeCommunityId")))
    if not requests:
        raise XdsRefusal(REGISTRY_METADATA_ERROR, "The request names no document.")
    if len(requests) > MAX_DOCUMENTS:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR, f"A request retrieves at most {MAX_DOCUMENTS} documents."
        )
    return requests


def _read(
    session: Session,
    store: DocumentStore,
    actor: Actor,
    request: _Request,
    *,
    holders: dict[str, list[tuple[uuid.UUID, uuid.UUID]]],
    clock: Clock,
    refusals: list[AccessError],
) -> tuple[str, bytes] | None:
    """The document's MIME type and bytes from the first dossier that lets the actor see it."""
    for patient_id, document_id in holders.get(mapping.master_identifier(request.unique_id), []):
        try:
            dossier = dossiers.open_to_retrieve(session, actor, patient_id, clock=clock)
            document, content = dossiers.read_content(session, dossier, document_id, store)
        except AccessError as refusal:
            refusals.append(refusal)
            continue
        return document.mime_type, content
    return None


def _document_response(
    response: etree._Element,
    request: _Request,
    mime_type: str,
    content: bytes,
    retrieved: Retrieved,
    *,
    mtom: bool,
) -> None:
    element = etree.SubElement(response, f"{{{XDSB}}}DocumentResponse")
    if request.home:
        etree.SubElement(element, f"{{{XDSB}}}HomeCommunityId").text = request.home
    etree.SubElement(element, f"{{{XDSB}}}RepositoryUniqueId").text = request.repository
    etree.SubElement(element, f"{{{XDSB}}}DocumentUniqueId").text = request.unique_id
    etree.SubElement(element, f"{{{XDSB}}}mimeType").text = mime_type
    document = etree.SubElement(element, f"{{{XDSB}}}Document")
    if mtom:
        content_id = f"document{len(retrieved.attachments) + 1}@carnet"
        include = etree.SubElement(document, f"{{{XOP}}}Include", nsmap={"xop": XOP})
        include.set("href", f"cid:{content_id}")
        retrieved.attachments[content_id] = content
    else:
        document.text = base64.b64encode(content).decode("ascii")


def _text(element: etree._Element, name: str) -> str:
    found = element.find(f"{{{XDSB}}}{name}")
    return (found.text or "").strip() if found is not None else ""
