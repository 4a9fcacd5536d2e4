"""The document services' side of the access policy: a document's facts, who sees or manages it.

Every document service takes a dossier opened at the door (``carnet.access.door``: scope,
sign-in strength, the access snapshot, the decision on the dossier), then comes here for the
decision on one document: ``sees`` answers it, ``visible`` and ``require_manage`` fetch the
document and refuse — audited, and indistinguishable from "not found" — when the policy says
no. Keeping these in one place keeps the per-document decision the same for every service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from carnet.access.door import OpenedDossier
from carnet.access.matrix import load_matrix
from carnet.access.policy import Decision, DocumentFacts, decide_document, decide_manage
from carnet.audit.models import AuditAction
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.documents.models import Document


def facts(document: Document) -> DocumentFacts:
    """What the policy needs to know of a document."""
    try:
        type_key = load_catalogue().by_code(document.type_system, document.type_code).key
    except UnknownDocumentType:
        type_key = document.type_code
    return DocumentFacts(
        document_id=document.id,
        type_key=type_key,
        status=document.status,
        confidentiality=document.confidentiality,
        masked_from_professionals=document.masked_from_professionals,
        hidden_from_patient=document.hidden_from_patient,
        author_professional_id=document.author_professional_id,
        author_organisation_id=document.author_organisation_id,
        authored_by_patient=document.authored_by_patient,
    )


def sees(dossier: OpenedDossier, document: Document) -> bool:
    """Whether the policy lets the dossier's actor see ``document`` (metadata and content)."""
    return bool(decide_document(dossier.actor, dossier.access, facts(document), load_matrix()))


def visible(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID, audit: AuditAction
) -> Document:
    """The document, if the policy lets the actor see it; else an audited ``AccessDenied``."""
    return _decided(
        session,
        dossier,
        document_id,
        audit=audit,
        decide=lambda facts_: decide_document(dossier.actor, dossier.access, facts_, load_matrix()),
    )


def require_manage(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID, audit: AuditAction
) -> Document:
    """The document, if the actor may manage it (its author); else an audited ``AccessDenied``."""
    return _decided(
        session,
        dossier,
        document_id,
        audit=audit,
        decide=lambda facts_: decide_manage(dossier.actor, dossier.access, facts_),
    )


def _decided(
    session: Session,
    dossier: OpenedDossier,
    document_id: uuid.UUID,
    *,
    audit: AuditAction,
    decide: Callable[[DocumentFacts], Decision],
) -> Document:
    # A document that does not exist and one the policy refuses get the same refusal, so the
    # answer never tells which documents a dossier holds.
    document = session.get(Document, (dossier.patient_id, document_id))
    decision = decide(facts(document)) if document is not None else None
    if document is None or not decision:
        reason = decision.reason if decision is not None else "no such document"
        raise dossier.refuse(reason, (document_id,), audit=audit)
    return document
