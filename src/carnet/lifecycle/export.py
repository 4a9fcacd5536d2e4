"""Data portability: everything of a dossier its patient may read, with the original files.

``collect_export`` gathers it through the same services as any other read, so each document is
checked by the policy and each retrieval audited: what the patient cannot read is not exported
(documents entered in error, and those their author holds back until disclosed). The shape of
the export file (a FHIR Bundle and the files, in a zip) is the ways in's business
(``carnet.exports``); this module knows nothing of FHIR.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier, open_dossier
from carnet.audit.models import AuditAction
from carnet.directory import service as directory
from carnet.directory.models import Organisation, Professional
from carnet.documents import reading
from carnet.documents.models import Document, DocumentStatus
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
class DossierExport:
    """The patient, their documents (current and superseded) and who wrote them."""

    patient: Patient
    documents: list[ExportedDocument]
    professionals: list[Professional]
    organisations: list[Organisation]
    exported_at: dt.datetime


def collect_export(session: Session, dossier: OpenedDossier, store: DocumentStore) -> DossierExport:
    """The whole dossier as its patient sees it, for export.

    Serves a dossier opened to ``EXPORT_DOSSIER``. Policy: the patient or their representative,
    strongly signed in, on an active or invited dossier (``Action.EXPORT``; a closed dossier is
    out of reach — export it before closing). Then every document goes through
    ``list_documents`` and ``read_content`` with the same actor, each opened for its own
    purpose (their scopes must allow reading documents). Recorded as one export event besides.
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
    professional_ids = {
        d.author_professional_id for d in listed if d.author_professional_id is not None
    }
    professionals = [directory.get_professional(session, pid) for pid in sorted(professional_ids)]
    organisation_ids = {
        org
        for d in listed
        for org in (d.author_organisation_id, d.custodian_organisation_id)
        if org is not None
    } | {p.organisation_id for p in professionals if p.organisation_id is not None}
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
    )
