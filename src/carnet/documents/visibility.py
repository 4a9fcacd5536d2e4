"""Changing what a published document shows, and to whom: withdrawing it as entered-in-error,
its confidentiality, its masking from professionals, its disclosure to the patient.

The document is kept in every case; only its status or its visibility flags change, audited.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.audit.models import AuditAction
from carnet.documents import guard
from carnet.documents.errors import DocumentNotCurrent
from carnet.documents.models import Confidentiality, Document, DocumentStatus


def mark_entered_in_error(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID
) -> Document:
    """Withdraw a current document published by mistake; it is kept, marked entered-in-error.

    Serves a dossier opened to ``MANAGE_DOCUMENT``: only the document's author withdraws it.
    """
    dossier.require(purposes.MANAGE_DOCUMENT)
    audit = AuditAction.STATUS_CHANGE
    document = guard.require_manage(session, dossier, document_id, audit)
    if document.status is not DocumentStatus.CURRENT:
        raise DocumentNotCurrent(document.status.value)
    document.status = DocumentStatus.ENTERED_IN_ERROR
    _record_change(session, dossier, document, audit, details={"status": "entered-in-error"})
    return document


def set_visibility(
    session: Session,
    dossier: OpenedDossier,
    document_id: uuid.UUID,
    *,
    confidentiality: Confidentiality | None = None,
    masked_from_professionals: bool | None = None,
) -> Document:
    """Change a document's confidentiality or its masking from all professionals.

    Policy: the patient (or representative) sets both on any document they can see, on a
    dossier opened to ``SET_DOCUMENT_VISIBILITY``; the author sets the confidentiality of what
    they wrote, on one opened to ``CHANGE_DOCUMENT_VISIBILITY`` (``purposes.visibility_for``
    names the one for an actor).
    """
    dossier.require(purposes.SET_DOCUMENT_VISIBILITY, purposes.CHANGE_DOCUMENT_VISIBILITY)
    audit = AuditAction.VISIBILITY_CHANGE
    if dossier.purpose is purposes.SET_DOCUMENT_VISIBILITY:
        document = guard.visible(session, dossier, document_id, audit)
    else:
        if masked_from_professionals is not None:
            raise dossier.refuse("only the patient masks documents", (document_id,))
        document = guard.require_manage(session, dossier, document_id, audit)
    if confidentiality is not None:
        document.confidentiality = confidentiality
    if masked_from_professionals is not None:
        document.masked_from_professionals = masked_from_professionals
    _record_change(
        session,
        dossier,
        document,
        audit,
        details={"confidentiality": confidentiality, "masked": masked_from_professionals},
    )
    return document


def disclose_to_patient(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID
) -> Document:
    """Release a document held back from the patient (after the announcement consultation).

    Serves a dossier opened to ``CHANGE_DOCUMENT_VISIBILITY``: its author discloses it.
    """
    dossier.require(purposes.CHANGE_DOCUMENT_VISIBILITY)
    audit = AuditAction.VISIBILITY_CHANGE
    document = guard.require_manage(session, dossier, document_id, audit)
    document.hidden_from_patient = False
    _record_change(session, dossier, document, audit, details={"disclosed": True})
    return document


def _record_change(
    session: Session,
    dossier: OpenedDossier,
    document: Document,
    audit: AuditAction,
    *,
    details: dict[str, object],
) -> None:
    """Stamp the document as changed now and record the change on the dossier's trail."""
    document.updated_at = dossier.clock.now()
    session.flush()
    dossier.record(session, audit, entity_ids=[document.id], details=details)
