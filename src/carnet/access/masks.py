"""Documents the patient hides from named professionals: the masks on one document, masking
once, and lifting a mask.

A mask hides one document from one professional whatever else they may see (the door's
snapshot lists the masked documents, ``documents.guard`` applies them). Setting one is
``rules.mask_document``; here the patient's page reads what is in force and changes it. Each
serves a dossier opened to ``MASK_DOCUMENT`` (the patient or their representative), and each
change is recorded on the dossier's audit trail, naming the document.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.access.errors import AccessRuleNotFound
from carnet.access.models import DocumentMask
from carnet.access.rules import mask_document
from carnet.audit.models import AuditAction


def masks_of_document(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID
) -> list[DocumentMask]:
    """The masks in force on the document, oldest first."""
    dossier.require(purposes.MASK_DOCUMENT)
    return list(
        session.scalars(
            select(DocumentMask)
            .where(
                DocumentMask.patient_id == dossier.patient_id,
                DocumentMask.document_id == document_id,
                DocumentMask.lifted_at.is_(None),
            )
            .order_by(DocumentMask.created_at, DocumentMask.id)
        )
    )


def masks_in_force(session: Session, dossier: OpenedDossier) -> list[DocumentMask]:
    """Every mask in force on the dossier, oldest first: the patient's rules, for their export.

    Serves a dossier opened to ``READ_ACCESS_RULES`` or ``MASK_DOCUMENT``.
    """
    dossier.require(purposes.READ_ACCESS_RULES, purposes.MASK_DOCUMENT)
    return list(
        session.scalars(
            select(DocumentMask)
            .where(DocumentMask.patient_id == dossier.patient_id, DocumentMask.lifted_at.is_(None))
            .order_by(DocumentMask.created_at, DocumentMask.id)
        )
    )


def mask_once(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID, professional_id: uuid.UUID
) -> DocumentMask:
    """Hide the document from the professional; the mask in force if there is one already.

    ``ProfessionalNotFound`` for a professional the directory does not know.
    """
    for mask in masks_of_document(session, dossier, document_id):
        if mask.professional_id == professional_id:
            return mask
    return mask_document(session, dossier, document_id, professional_id)


def lift_mask(session: Session, dossier: OpenedDossier, mask_id: uuid.UUID) -> DocumentMask:
    """Show the document to the professional again; the mask stays in the history, stamped.

    Raises ``AccessRuleNotFound`` unless the mask is in force on this dossier.
    """
    dossier.require(purposes.MASK_DOCUMENT)
    mask = session.get(DocumentMask, (dossier.patient_id, mask_id))
    if mask is None or mask.lifted_at is not None:
        raise AccessRuleNotFound("mask in force")
    mask.lifted_at = dossier.clock.now()
    session.flush()
    dossier.record(
        session,
        AuditAction.MASK,
        entity_ids=[mask.document_id],
        details={"professional": mask.professional_id, "lifted": True},
    )
    return mask
