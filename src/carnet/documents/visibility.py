"""Changing what a published document shows, and to whom: withdrawing it as entered-in-error,
its confidentiality, its masking from professionals, its disclosure to the patient.

The document is kept in every case; only its status or its visibility flags change, audited.
"""

from __future__ import annotations

import datetime as dt
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
    now = clock.now()
    _check_update_scope(actor, patient_id, audit)
    document = _authored(session, actor, patient_id, document_id, audit=audit, now=now)
    if document.status is not DocumentStatus.CURRENT:
        raise DocumentNotCurrent(document.status.value)
    document.status = DocumentStatus.ENTERED_IN_ERROR
    _record_change(
        session, actor, document, audit, clock, at=now, details={"status": "entered-in-error"}
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
    _check_update_scope(actor, patient_id, audit)
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
        document = _authored(session, actor, patient_id, document_id, audit=audit, now=now)
    if confidentiality is not None:
        document.confidentiality = confidentiality
    if masked_from_professionals is not None:
        document.masked_from_professionals = masked_from_professionals
    _record_change(
        session,
        actor,
        document,
        audit,
        clock,
        at=now,
        details={"confidentiality": confidentiality, "masked": masked_from_professionals},
    )
    return document


def disclose_to_patient(
    session: Session, *, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """Release a document held back from the patient (after the announcement consultation)."""
    audit = AuditAction.VISIBILITY_CHANGE
    now = clock.now()
    _check_update_scope(actor, patient_id, audit)
    document = _authored(session, actor, patient_id, document_id, audit=audit, now=now)
    document.hidden_from_patient = False
    _record_change(session, actor, document, audit, clock, at=now, details={"disclosed": True})
    return document


def _check_update_scope(actor: Actor, patient_id: uuid.UUID, audit: AuditAction) -> None:
    # Every change here updates a DocumentReference: the token must cover that before the
    # policy is asked.
    access_guard.check_scope(
        actor, "DocumentReference", Interaction.UPDATE, patient_id, audit=audit
    )


def _authored(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    document_id: uuid.UUID,
    *,
    audit: AuditAction,
    now: dt.datetime,
) -> Document:
    """The document, if ``actor`` manages it (its author); else an audited ``AccessDenied``."""
    access = access_guard.authorize(
        session, actor, patient_id, Action.MANAGE_DOCUMENT, now=now, audit=audit
    )
    return guard.managed(session, actor, access, document_id, audit)


def _record_change(
    session: Session,
    actor: Actor,
    document: Document,
    audit: AuditAction,
    clock: Clock,
    *,
    at: dt.datetime,
    details: dict[str, object],
) -> None:
    """Stamp the document as changed ``at`` and record the change on the dossier's trail."""
    document.updated_at = at
    session.flush()
    guard.record(
        session, actor, audit, document.patient_id, clock, documents=[document.id], details=details
    )
