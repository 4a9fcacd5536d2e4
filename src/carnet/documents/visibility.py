"""Changing what a published document shows, and to whom: withdrawing it as entered-in-error,
its confidentiality, its masking from professionals, its disclosure to the patient.

The document is kept in every case; only its status or its visibility flags change, audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.access.policy import Action
from carnet.access.scopes import Interaction
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.documents import guard
from carnet.documents.errors import DocumentNotCurrent
from carnet.documents.models import Confidentiality, Document, DocumentStatus


def mark_entered_in_error(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """Withdraw a current document published by mistake; it is kept, marked entered-in-error."""
    audit = AuditAction.STATUS_CHANGE
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )
    access = access_guard.authorize(
        session, actor, patient_id, Action.MANAGE_DOCUMENT, now=clock.now(), audit=audit
    )
    document = guard.managed(session, actor, access, document_id, audit)
    if document.status is not DocumentStatus.CURRENT:
        raise DocumentNotCurrent(document.status.value)
    document.status = DocumentStatus.ENTERED_IN_ERROR
    document.updated_at = clock.now()
    session.flush()
    guard.record(
        session,
        actor,
        audit,
        patient_id,
        clock,
        documents=[document.id],
        details={"status": "entered-in-error"},
    )
    return document


def set_visibility(
    session: Session,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    document_id: uuid.UUID,
    clock: Clock,
    confidentiality: Confidentiality | None = None,
    masked_from_professionals: bool | None = None,
) -> Document:
    """Change a document's confidentiality or its masking from all professionals.

    Policy: the patient (or representative) sets both on any document they can see; the author
    sets the confidentiality of what they wrote.
    """
    audit = AuditAction.VISIBILITY_CHANGE
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )
    now = clock.now()
    if actor.kind is ActorKind.PATIENT:
        access = access_guard.authorize(
            session, actor, patient_id, Action.SET_VISIBILITY, now=now, audit=audit
        )
        document = guard.visible(session, actor, access, document_id, audit)
    else:
        if masked_from_professionals is not None:
            raise access_guard.refuse(
                actor, audit, "only the patient masks documents", patient_id, (document_id,)
            )
        access = access_guard.authorize(
            session, actor, patient_id, Action.MANAGE_DOCUMENT, now=now, audit=audit
        )
        document = guard.managed(session, actor, access, document_id, audit)
    if confidentiality is not None:
        document.confidentiality = confidentiality
    if masked_from_professionals is not None:
        document.masked_from_professionals = masked_from_professionals
    document.updated_at = now
    session.flush()
    guard.record(
        session,
        actor,
        audit,
        patient_id,
        clock,
        documents=[document.id],
        details={"confidentiality": confidentiality, "masked": masked_from_professionals},
    )
    return document


def disclose_to_patient(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """Release a document held back from the patient (after the announcement consultation)."""
    audit = AuditAction.VISIBILITY_CHANGE
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )
    access = access_guard.authorize(
        session, actor, patient_id, Action.MANAGE_DOCUMENT, now=clock.now(), audit=audit
    )
    document = guard.managed(session, actor, access, document_id, audit)
    document.hidden_from_patient = False
    document.updated_at = clock.now()
    session.flush()
    guard.record(
        session,
        actor,
        audit,
        patient_id,
        clock,
        documents=[document.id],
        details={"disclosed": True},
    )
    return document
