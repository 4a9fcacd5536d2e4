"""The document an MDM^T02 or MDM^T10 carries, published in the patient's dossier.

The sending system's organisation publishes it through the documents services, as ITI-65 and
the portals do (``publishing``): the catalogue type TXA-2 names, TXA-12 as its identifier, its
creation time and confidentiality from TXA. A CDA document is then checked as every CDA
document is — its structure, its patient against PID-3's, its header against what TXA says —
and a PDF as every PDF is. A T10 replaces the document TXA-13 names, which must be current and
its own organisation's. Where the documents service refuses, the refusal names the field of
the message that said it (``fields``).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.cda import intake as cda
from carnet.cda.errors import CdaRefused
from carnet.cda.header import effective_time, read_header
from carnet.clock import Clock
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality, Document
from carnet.feeds.models import FeedingSystem
from carnet.laboratory import publishing
from carnet.laboratory.errors import ErrorCode, MessageRefused
from carnet.laboratory.mdm import NotifiedDocument
from carnet.storage import DocumentStore

# Where the documents service's refusals point in an MDM message (its metadata's names, and
# the CDA checks' names for what the header disagrees with).
_FIELDS = {
    "type": "TXA-2",
    "class_code": "TXA-2",
    "title": "TXA-2",
    "confidentiality": "TXA-18",
    "subject": "PID-3",
    "author": "MSH-4",
    "mime_type": "OBX-5",
    "content": "OBX-5",
    "size": "OBX-5",
    "hash": "OBX-5",
}


def fields(notified: NotifiedDocument) -> dict[str, str]:
    """The message's field for each metadata field the documents service may refuse."""
    return {**_FIELDS, "created_at": notified.created_field}


def publish_notified(
    session: Session,
    store: DocumentStore,
    notified: NotifiedDocument,
    *,
    system: FeedingSystem,
    actor: Actor,
    patient_id: uuid.UUID,
    language: str,
    clock: Clock,
) -> tuple[Document, bool]:
    """Publish the document (or, for a T10, the new version of TXA-13's): it, and whether it
    replaced one. Raises ``MessageRefused`` for what only the dossier can tell (an unknown
    parent), and the documents service's own errors for the rest (the intake names their
    field with ``fields``)."""
    replaces: uuid.UUID | None = None
    if notified.parent is not None:
        opened = publishing.open_to_publish(session, actor, patient_id, clock=clock)
        parent = publishing.numbered_document(
            session, opened, cda.master_identifiers(notified.parent)
        )
        if parent is None:
            raise MessageRefused(
                f"TXA-13: no document {notified.parent} of this dossier to replace.",
                field="TXA-13",
                code=ErrorCode.UNKNOWN_KEY,
            )
        replaces = parent.id
    document = publishing.publish(
        session,
        store,
        actor=actor,
        patient_id=patient_id,
        metadata=metadata_of(notified, system=system, language=language),
        content=notified.content,
        clock=clock,
        replaces=replaces,
    )
    return document, replaces is not None or document.replaces_id is not None


def metadata_of(
    notified: NotifiedDocument, *, system: FeedingSystem, language: str
) -> DocumentMetadata:
    """What TXA says of the document, as the documents service takes it.

    The title is the catalogue's name of the type in the patient's language (an MDM has no
    title of its own). Left out of TXA, the creation time and confidentiality of a CDA document
    are its header's (as a portal upload takes them), else the type's usual confidentiality.
    """
    document_type = notified.document_type
    return DocumentMetadata(
        type_system=document_type.system,
        type_code=document_type.code,
        title=document_type.labels.in_language(language),
        mime_type=notified.mime_type,
        created_at=_created_at(notified),
        author_organisation_id=system.organisation_id,
        master_identifier=notified.master_identifier,
        source_system=f"hl7v2:{system.id}",
        confidentiality=Confidentiality(
            notified.confidentiality
            or _header_confidentiality(notified)
            or document_type.default_confidentiality
        ),
    )


def _created_at(notified: NotifiedDocument) -> dt.datetime:
    created = notified.created_at or effective_time(notified.mime_type, notified.content)
    if created is None:
        raise MessageRefused(
            "TXA-6 (origination date/time) and TXA-4 (activity date/time) are both empty: "
            "when the document was written is required.",
            field="TXA-6",
            code=ErrorCode.REQUIRED_FIELD_MISSING,
        )
    return created


def _header_confidentiality(notified: NotifiedDocument) -> str | None:
    if not notified.is_cda:
        return None
    try:
        return read_header(notified.content).confidentiality
    except CdaRefused:
        return None  # publication refuses the document, naming why
