"""Documents built through the documents service."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import Clock
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Document
from carnet.storage import DocumentStore

LAB_REPORT = (LOINC_SYSTEM, "11502-2")
PATIENT_SUMMARY = (LOINC_SYSTEM, "60591-5")


def lab_metadata(clock: Clock, **changes: object) -> DocumentMetadata:
    """Metadata of a plain-text laboratory report written a day before ``clock`` says.

    The author is left out: the service takes it from the publishing actor.
    """
    metadata = DocumentMetadata(
        type_system=LAB_REPORT[0],
        type_code=LAB_REPORT[1],
        title="Bilan sanguin",
        mime_type="text/plain",
        created_at=clock.now() - dt.timedelta(days=1),
        language="fr",
    )
    return replace(metadata, **changes)  # type: ignore[arg-type]


def make_document(
    session: Session,
    store: DocumentStore,
    clock: Clock,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    content: bytes | None = None,
    **changes: object,
) -> Document:
    """A current document in the patient's dossier, published by ``actor``."""
    return publication.add_document(
        session,
        open_dossier(session, actor, patient_id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        store,
        metadata=lab_metadata(clock, **changes),
        content=content
        if content is not None
        else f"Hémoglobine 14.2 g/dL {uuid.uuid4()}".encode(),
    )
