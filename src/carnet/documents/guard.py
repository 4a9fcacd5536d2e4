"""The document services' side of the access policy: a document's facts, who sees or manages it.

Every document service opens the dossier through ``carnet.access.guard`` (scope, sign-in
strength, the access snapshot, the decision on the dossier), then comes here for the decision on
one document: ``visible`` and ``managed`` fetch it and refuse — audited, and indistinguishable
from "not found" — when the policy says no; ``record`` writes the audit event of what was
allowed. Keeping these in one place keeps the per-document decision the same for every service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor
from carnet.access.matrix import load_matrix
from carnet.access.policy import (
    Decision,
    DocumentFacts,
    DossierAccess,
    decide_document,
    decide_manage,
)
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.clock import Clock
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


def visible(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    document_id: uuid.UUID,
    audit: AuditAction,
) -> Document:
    """The document, if the policy lets ``actor`` see it; else an audited ``AccessDenied``."""
    return _decided(
        session,
        actor,
        access,
        document_id,
        audit=audit,
        decide=lambda facts_: decide_document(actor, access, facts_, load_matrix()),
    )


def managed(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    document_id: uuid.UUID,
    audit: AuditAction,
) -> Document:
    """The document, if ``actor`` may manage it (its author); else an audited ``AccessDenied``."""
    return _decided(
        session,
        actor,
        access,
        document_id,
        audit=audit,
        decide=lambda facts_: decide_manage(actor, access, facts_),
    )


def _decided(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    document_id: uuid.UUID,
    *,
    audit: AuditAction,
    decide: Callable[[DocumentFacts], Decision],
) -> Document:
    # A document that does not exist and one the policy refuses get the same refusal, so the
    # answer never tells which documents a dossier holds.
    document = session.get(Document, (access.patient_id, document_id))
    decision = decide(facts(document)) if document is not None else None
    if document is None or not decision:
        reason = decision.reason if decision is not None else "no such document"
        raise access_guard.refuse(actor, audit, reason, access.patient_id, (document_id,))
    return document


def record(
    session: Session,
    actor: Actor,
    action: AuditAction,
    patient_id: uuid.UUID,
    clock: Clock,
    *,
    documents: list[uuid.UUID],
    details: dict[str, object] | None = None,
    access: DossierAccess | None = None,
) -> None:
    """Record an allowed event; a consultation names the basis on which it was allowed."""
    if action in (AuditAction.SEARCH, AuditAction.READ, AuditAction.RETRIEVE):
        access_guard.record_consultation(
            session,
            actor,
            access,
            patient_id,
            action=action,
            clock=clock,
            entity_ids=documents,
            details=details,
        )
        return
    if access is not None and access.bases:
        details = {**(details or {}), "basis": access.bases[0].value}
    audit_trail.record(
        session,
        agent=actor.agent,
        action=action,
        clock=clock,
        patient_id=patient_id,
        entity_ids=documents,
        details=details,
    )
