"""Data portability: everything of a dossier its patient may read, with the original files.

``collect_export`` gathers it through the same services as any other read, so each document is
checked by the policy and each retrieval audited: what the patient cannot read is not exported
(documents entered in error, and those their author holds back until disclosed). Besides the
documents: the live essential data (``essentials.service.read_essentials``), the patient's
rules in force (``access.rules.access_overview`` and the masks, ``access.masks``) and the
dossier's audit trail as the patient reads it (``access.history.read_dossier_trail``), each
read through the door for its own purpose and recorded as any such read is. The shape of
the export file (a FHIR Bundle and the files, in a zip) is the ways in's business
(``carnet.exports``); this module knows nothing of FHIR.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from carnet.access import history, masks, purposes, representation, rules
from carnet.access.door import OpenedDossier, open_dossier
from carnet.access.models import DocumentMask
from carnet.audit.models import AuditAction, AuditEvent
from carnet.directory import service as directory
from carnet.directory.models import Organisation, Professional
from carnet.documents import reading
from carnet.documents.models import Document, DocumentStatus
from carnet.essentials import service as essentials
from carnet.patients import service as patients
from carnet.patients.models import Patient
from carnet.storage import DocumentStore

# One listing page; a dossier holds hundreds of documents, not millions.
_PAGE = 1000


@dataclass(frozen=True)
class ExportedDocument:
    """A document's metadata and its original bytes (checked against its SHA-256 on read)."""

    document: Document
    content: bytes


@dataclass(frozen=True)
class DossierRules:
    """The patient's rules in force: who may open the dossier, and who may not see what."""

    overview: rules.AccessOverview
    masks: list[DocumentMask]
    # Who acts for the patient: for the record (another person's link; not set again on import).
    representatives: list[representation.Representative] = field(default_factory=list)


@dataclass(frozen=True)
class DossierExport:
    """The patient, their documents (current and superseded), who wrote them, the essential
    data, the patient's rules in force and the dossier's audit trail (oldest first).

    ``professionals`` and ``organisations`` are everyone the rest names: authors, custodians,
    grantees, blocked and treating doctors, masks' professionals.
    """

    patient: Patient
    documents: list[ExportedDocument]
    professionals: list[Professional]
    organisations: list[Organisation]
    exported_at: dt.datetime
    essentials: tuple[essentials.RecordedFact, ...] = ()
    rules: DossierRules | None = None
    history: list[AuditEvent] = field(default_factory=list)


def collect_export(session: Session, dossier: OpenedDossier, store: DocumentStore) -> DossierExport:
    """The whole dossier as its patient sees it, for export.

    Serves a dossier opened to ``EXPORT_DOSSIER``. Policy: the patient or their representative,
    strongly signed in, on an active or invited dossier (``Action.EXPORT``; a closed dossier is
    out of reach — export it before closing). Then every document goes through
    ``list_documents`` and ``read_content`` with the same actor, each opened for its own
    purpose (their scopes must allow reading documents). The essential data, the rules and the
    audit trail are read the same way (``READ_ESSENTIALS``, ``READ_ACCESS_RULES``,
    ``READ_AUDIT_TRAIL``: each category of essential data within the token's scopes). Recorded
    as one export event besides.
    """
    dossier.require(purposes.EXPORT_DOSSIER)
    actor, patient_id, clock = dossier.actor, dossier.patient_id, dossier.clock
    listed: list[Document] = []
    found = open_dossier(session, actor, patient_id, purposes.FIND_DOCUMENTS, clock=clock)
    while True:
        page = reading.list_documents(
            session,
            found,
            reading.DocumentFilter(
                statuses=(DocumentStatus.CURRENT, DocumentStatus.SUPERSEDED),
                limit=_PAGE,
                offset=len(listed),
            ),
        )
        listed.extend(page.documents)
        if not page.documents or len(listed) >= page.total:
            break
    # Opened for content only when there is some: an empty dossier exports under a token that
    # may not read content.
    retrieved = (
        open_dossier(session, actor, patient_id, purposes.RETRIEVE_DOCUMENTS, clock=clock)
        if listed
        else None
    )
    exported = [
        ExportedDocument(*reading.read_content(session, retrieved, listed_.id, store))
        for listed_ in listed
        if retrieved is not None
    ]
    facts = essentials.read_essentials(
        session, open_dossier(session, actor, patient_id, purposes.READ_ESSENTIALS, clock=clock)
    ).facts
    ruled = open_dossier(session, actor, patient_id, purposes.READ_ACCESS_RULES, clock=clock)
    in_force = DossierRules(
        rules.access_overview(session, ruled),
        masks.masks_in_force(session, ruled),
        representation.representatives(session, ruled),
    )
    trail = _trail(
        session, open_dossier(session, actor, patient_id, purposes.READ_AUDIT_TRAIL, clock=clock)
    )
    overview = in_force.overview
    named = [
        *(d.author_professional_id for d in listed),
        *(fact.author_professional_id for fact in facts),
        *(grant.professional_id for grant in overview.grants),
        *(block.professional_id for block in overview.blocks),
        *(mask.professional_id for mask in in_force.masks),
        overview.treating_doctor.professional_id if overview.treating_doctor else None,
    ]
    professionals = [
        directory.get_professional(session, pid)
        for pid in sorted({pid for pid in named if pid is not None})
    ]
    organisation_ids = (
        {
            org
            for d in listed
            for org in (d.author_organisation_id, d.custodian_organisation_id)
            if org is not None
        }
        | {p.organisation_id for p in professionals if p.organisation_id is not None}
        | {g.organisation_id for g in overview.grants if g.organisation_id is not None}
    )
    dossier.record(
        session,
        AuditAction.EXPORT,
        entity_ids=[d.id for d in listed],
        details={"documents": len(listed)},
    )
    return DossierExport(
        patient=patients.get_patient(session, patient_id),
        documents=exported,
        professionals=professionals,
        organisations=[
            directory.get_organisation(session, oid) for oid in sorted(organisation_ids)
        ],
        exported_at=clock.now(),
        essentials=facts,
        rules=in_force,
        history=trail,
    )


def _trail(session: Session, dossier: OpenedDossier) -> list[AuditEvent]:
    """The dossier's whole audit trail, oldest first, page by page.

    Each page read is itself recorded, after the events it returns: the count is taken from
    the first page, so the export does not chase its own reading.
    """
    events: list[AuditEvent] = []
    total: int | None = None
    while total is None or len(events) < total:
        page = history.read_dossier_trail(
            session,
            dossier,
            history.HistoryQuery(limit=history.MAX_PAGE, offset=len(events)),
        )
        total = page.total if total is None else total
        if not page.events:
            break
        events.extend(page.events[: total - len(events)])
    return events
