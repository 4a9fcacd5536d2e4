"""The documents services a laboratory report goes through: the same as ITI-65's.

The one module of this package that calls ``carnet.documents``: publishing, replacing and
withdrawing go through ``documents.publication`` and ``documents.visibility`` — the policy,
the dossier's state, the checks on metadata and content, the store, the audit trail and the
patient's notice — exactly as a FHIR ITI-65 provide does, as the feeding system's actor.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier, open_dossier
from carnet.clock import Clock
from carnet.documents import publication, visibility
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Document, DocumentStatus
from carnet.laboratory.models import LabReport
from carnet.storage import DocumentStore


def publish(
    session: Session,
    store: DocumentStore,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    metadata: DocumentMetadata,
    content: bytes,
    clock: Clock,
    replaces: uuid.UUID | None,
) -> Document:
    """Publish a report, or a new version superseding ``replaces`` (its organisation's).

    The dossier is opened at the door for the purpose, as ITI-65 opens it: ``DossierNotActive``
    and ``PatientNotFound`` say why before the policy is asked; ``AccessDenied`` carries its
    audit record.
    """
    purpose = purposes.PUBLISH_DOCUMENTS if replaces is None else purposes.REPLACE_DOCUMENT
    dossier = open_dossier(session, actor, patient_id, purpose, clock=clock)
    if replaces is None:
        return publication.add_document(session, dossier, store, metadata=metadata, content=content)
    return publication.replace_document(
        session, dossier, store, replaced_id=replaces, metadata=metadata, content=content
    )


def withdraw(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """Withdraw a report its laboratory cancelled: kept, marked entered-in-error."""
    dossier = open_dossier(session, actor, patient_id, purposes.MANAGE_DOCUMENT, clock=clock)
    return visibility.mark_entered_in_error(session, dossier, document_id)


def open_to_publish(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> OpenedDossier:
    """The dossier opened at the door to publish, as ITI-65 opens it.

    Raises ``PatientNotFound`` or ``DossierNotActive`` first (a feed hears why), then an
    audited ``AccessDenied`` if the policy says no.
    """
    return open_dossier(session, actor, patient_id, purposes.PUBLISH_DOCUMENTS, clock=clock)


def current_report(
    session: Session, dossier: OpenedDossier, feeding_system_id: uuid.UUID, order_key: str
) -> LabReport | None:
    """The current report this system published for this order in the dossier, if any.

    Serves a dossier opened to publish: a sender looks up what it sent itself, to replace or
    withdraw it (reports of every feeding system of the organisation would be the
    organisation's to manage; an order number is read in its own sender's space).
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    return session.scalar(
        select(LabReport)
        .join(
            Document,
            (Document.patient_id == LabReport.patient_id) & (Document.id == LabReport.document_id),
        )
        .where(
            LabReport.patient_id == dossier.patient_id,
            LabReport.feeding_system_id == feeding_system_id,
            LabReport.order_key == order_key,
            Document.status == DocumentStatus.CURRENT,
        )
        .order_by(LabReport.received_at.desc())
        .limit(1)
    )


def numbered_document(
    session: Session, dossier: OpenedDossier, master_identifiers: tuple[str, ...]
) -> Document | None:
    """The dossier's document published under one of these identifiers (the forms one document
    number takes), if any: the one an MDM^T10 replaces.

    Serves a dossier opened to publish: whether the sender may replace it is the documents
    service's to say (only a current document, only by its author).
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS)
    if not master_identifiers:
        return None
    return session.scalar(
        select(Document)
        .where(
            Document.patient_id == dossier.patient_id,
            Document.master_identifier.in_(master_identifiers),
        )
        .order_by(Document.submitted_at.desc())
        .limit(1)
    )
