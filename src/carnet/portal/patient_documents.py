"""The patient's documents: the timeline, the viewer, the raw content, hiding a document from
professionals, and adding one of their own.

Every read goes through ``carnet.documents`` with the visitor's actor, so the policy decides
what the patient sees (never a document held back until its author disclosed it) and each
consultation lands in the audit trail they can read on the history page.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
import re
import uuid
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from carnet.access import purposes
from carnet.access.door import OpenedDossier, Purpose, open_dossier
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.documents import publication, reading, visibility
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Document
from carnet.errors import Conflict, InvalidInput, LimitExceeded, StateRefused
from carnet.portal.document_content import original_response, uploaded_type
from carnet.portal.document_view import render_document
from carnet.portal.error_words import said
from carnet.portal.patient_context import (
    Whose,
    organisations_by_id,
    pages,
    professionals_by_id,
    start_of_day,
    type_label,
    whose_dossier,
)
from carnet.portal.visits import (
    CheckedForm,
    PatientVisit,
    Visit,
    form_text,
    page_number,
    parse_date,
    parse_id,
)

router = APIRouter()

PAGE_SIZE = 20
# What a patient adds to their own dossier: their own notes and papers, their directives, the
# vaccination booklet and allergy card they keep at home. Clinical reports come from their
# authors (the documents service marks every patient upload as authored by the patient).
PATIENT_UPLOAD_TYPES = ("patient-provided", "advance-directives", "vaccination-record", "allergies")
# Formats a browser shows and a patient has at hand (a scan, a photo, a PDF, a note).
UPLOAD_MIME_TYPES = ("application/pdf", "image/jpeg", "image/png", "text/plain")
_UNSAFE_FILE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Entry:
    """One document as the timeline and the viewer show it."""

    document: Document
    type_label: str
    author: str | None
    organisation: str | None


def _entries(session: Session, visit: Visit, found: list[Document]) -> list[Entry]:
    people = professionals_by_id(session, {d.author_professional_id for d in found})
    organisations = organisations_by_id(
        session,
        {d.author_organisation_id for d in found} | {p.organisation_id for p in people.values()},
    )
    entries = []
    for document in found:
        person = people.get(document.author_professional_id or uuid.UUID(int=0))
        organisation_id = document.author_organisation_id or (
            person.organisation_id if person else None
        )
        organisation = organisations.get(organisation_id) if organisation_id else None
        author: str | None
        if document.authored_by_patient:
            author = visit.gettext("Added by the patient")
        else:
            author = f"{person.given} {person.family}" if person else None
        entries.append(
            Entry(
                document=document,
                type_label=type_label(document.type_system, document.type_code, visit.language),
                author=author,
                organisation=organisation.name if organisation else None,
            )
        )
    return entries


def _opened(session: Session, visit: Visit, purpose: Purpose) -> OpenedDossier:
    """The visit's dossier, opened at the door for ``purpose``."""
    return open_dossier(session, visit.actor, visit.patient_id, purpose, clock=visit.platform.clock)


def latest_entries(session: Session, visit: Visit, count: int) -> tuple[list[Entry], int]:
    """The ``count`` newest documents of the dossier and how many there are in all."""
    found = _opened(session, visit, purposes.FIND_DOCUMENTS)
    page = reading.list_documents(session, found, reading.DocumentFilter(limit=count))
    return _entries(session, visit, page.documents), page.total


# --- the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineFilters:
    """The filters of the timeline, as typed (they come back in the form and the links)."""

    type: str = ""
    author: str = ""
    date_from: str = ""
    date_to: str = ""

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters."""
        return {
            "type": self.type,
            "author": self.author,
            "from": self.date_from,
            "to": self.date_to,
        }


def _document_filter(visit: Visit, filters: TimelineFilters, number: int) -> reading.DocumentFilter:
    """The service's filter for the typed ones; ``ValueError`` with a message to show."""
    type_codes: tuple[str, ...] = ()
    if filters.type:
        try:
            type_codes = (load_catalogue().by_key(filters.type).code,)
        except UnknownDocumentType:
            raise ValueError(visit.gettext("Choose a document type from the list.")) from None
    try:
        since = parse_date(filters.date_from)
        until = parse_date(filters.date_to)
    except ValueError:
        raise ValueError(
            visit.gettext("Type dates as YYYY-MM-DD, for example 2026-05-31.")
        ) from None
    if since and until and until < since:
        raise ValueError(visit.gettext("The period ends before it starts."))
    zone = visit.formats.zone
    return reading.DocumentFilter(
        type_codes=type_codes,
        author_family=filters.author or None,
        created_from=start_of_day(since, zone) if since else None,
        # "To" includes the whole of its day.
        created_to=start_of_day(until + dt.timedelta(days=1), zone) if until else None,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )


@router.get("/documents")
def timeline(
    visit: PatientVisit,
    *,
    type: str = "",
    author: str = "",
    date_from: Annotated[str, Query(alias="from")] = "",
    date_to: Annotated[str, Query(alias="to")] = "",
    page: str = "1",
) -> Response:
    """The dossier's documents, newest first, filtered by type, author and period."""
    filters = TimelineFilters(type.strip(), author.strip(), date_from.strip(), date_to.strip())
    number = page_number(page)
    problem = None
    entries: list[Entry] = []
    total = 0
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        if whose.readable:
            try:
                wanted = _document_filter(visit, filters, number)
            except ValueError as error:
                problem = str(error)
            else:
                found = reading.list_documents(
                    session, _opened(session, visit, purposes.FIND_DOCUMENTS), wanted
                )
                entries, total = _entries(session, visit, found.documents), found.total
    return visit.render(
        "patient/documents.html",
        status_code=422 if problem else 200,
        whose=whose,
        entries=entries,
        filters=filters,
        problem=problem,
        types=_type_options(visit),
        pages=pages("/portal/patient/documents", number, PAGE_SIZE, total, filters.as_params()),
    )


def _type_options(visit: Visit, keys: tuple[str, ...] | None = None) -> list[tuple[str, str]]:
    types = load_catalogue().types
    options = [
        (t.key, t.labels.in_language(visit.language))
        for t in types
        if keys is None or t.key in keys
    ]
    return sorted(options, key=lambda option: option[1].casefold())


# --- the viewer --------------------------------------------------------------------------------


@router.get("/documents/new")
def upload_form(visit: PatientVisit) -> Response:
    """The form to add a document of one's own."""
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
    today = visit.platform.clock.now().astimezone(visit.formats.zone).date()
    return _render_upload(visit, whose, {"type": "patient-provided", "date": today.isoformat()})


@router.post("/documents/new")
def upload(visit: PatientVisit, form: CheckedForm) -> Response:
    """Add the patient's document; the form again with the message if anything is wrong."""
    typed = {name: form_text(form, name) for name in ("type", "title", "date")}
    try:
        try:
            metadata, content = _upload_of(visit, typed, form.get("file"))
        finally:
            # The request does not close the files of a form a dependency parsed.
            for _name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    value.file.close()
        with visit.transaction() as session:
            document = publication.add_document(
                session,
                _opened(session, visit, purposes.PUBLISH_DOCUMENTS),
                visit.platform.store,
                metadata=metadata,
                content=content,
            )
    except (InvalidInput, LimitExceeded, StateRefused, Conflict) as error:
        with visit.transaction() as session:
            whose = whose_dossier(session, visit)
        return _render_upload(
            visit, whose, typed, problem=said(error, visit.language), status_code=422
        )
    return visit.redirect(
        f"/portal/patient/documents/{document.id}",
        flash=visit.gettext("Your document was added to the dossier."),
        kind="success",
    )


def _upload_of(visit: Visit, typed: dict[str, str], file: object) -> tuple[DocumentMetadata, bytes]:
    """The metadata and bytes of an upload; ``InvalidInput`` naming what to correct."""
    if typed["type"] not in PATIENT_UPLOAD_TYPES:
        raise InvalidInput(visit.gettext("Choose the kind of document."), field="type")
    document_type = load_catalogue().by_key(typed["type"])
    if not isinstance(file, UploadFile) or not file.filename:
        raise InvalidInput(visit.gettext("Choose the file to add."), field="file")
    content = file.file.read()  # whole: the store takes bytes, within its size limit
    if not content:
        raise InvalidInput(visit.gettext("The file is empty."), field="file")
    mime_type = (file.content_type or "").split(";")[0].strip().lower()
    if mime_type not in UPLOAD_MIME_TYPES:
        mime_type = (mimetypes.guess_type(file.filename)[0] or "").lower()
    if mime_type in UPLOAD_MIME_TYPES:
        mime_type = uploaded_type(mime_type, content, visit.gettext)
    if mime_type not in UPLOAD_MIME_TYPES:
        raise InvalidInput(
            visit.gettext("Add a PDF, a JPEG or PNG image, or a text file."), field="file"
        )
    try:
        day = parse_date(typed["date"])
    except ValueError:
        day = None
    if day is None:
        raise InvalidInput(
            visit.gettext("Type the document's date as YYYY-MM-DD, for example 2026-05-31."),
            field="date",
        )
    metadata = DocumentMetadata(
        type_system=document_type.system,
        type_code=document_type.code,
        title=typed["title"],
        mime_type=mime_type,
        created_at=start_of_day(day, visit.formats.zone),
        language=visit.language,
    )
    return metadata, content


def _render_upload(
    visit: Visit,
    whose: Whose,
    typed: dict[str, str],
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> Response:
    return visit.render(
        "patient/upload.html",
        status_code=status_code,
        whose=whose,
        typed=typed,
        problem=problem,
        types=_type_options(visit, PATIENT_UPLOAD_TYPES),
        accept=",".join(UPLOAD_MIME_TYPES),
    )


@router.get("/documents/{document_id}")
def viewer(visit: PatientVisit, document_id: str) -> Response:
    """One document: what it is, its rendition, a download, and the patient's controls."""
    wanted = parse_id(document_id)
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        document, content = reading.read_content(
            session, _opened(session, visit, purposes.READ_DOCUMENTS), wanted, visit.platform.store
        )
        [entry] = _entries(session, visit, [document])
    return visit.render(
        "patient/viewer.html",
        whose=whose,
        entry=entry,
        document=document,
        rendition=render_document(document.mime_type, content, language=visit.language),
        content_url=f"/portal/patient/documents/{document.id}/content",
    )


@router.get("/documents/{document_id}/content")
def content(visit: PatientVisit, document_id: str, download: str = "") -> Response:
    """The document's original bytes, for the viewer's frame or as a download."""
    wanted = parse_id(document_id)
    with visit.transaction() as session:
        document, body = reading.read_content(
            session,
            _opened(session, visit, purposes.RETRIEVE_DOCUMENTS),
            wanted,
            visit.platform.store,
        )
    name = _file_name(document)
    response = original_response(
        document,
        body,
        file_parameters=f"filename=\"{name}\"; filename*=UTF-8''{quote(name)}",
        download=bool(download),
    )
    return visit.keep(response)


def _file_name(document: Document) -> str:
    """A file name safe in a header: the title in plain letters, and the type's extension."""
    stem = _UNSAFE_FILE_NAME.sub("-", document.title).strip("-.")[:80] or "document"
    extension = mimetypes.guess_extension(document.mime_type) or ""
    return f"{stem}{extension}"


@router.post("/documents/{document_id}/visibility")
def set_visibility(visit: PatientVisit, document_id: str, form: CheckedForm) -> Response:
    """Hide the document from every professional, or show it to them again."""
    wanted = parse_id(document_id)
    masked = form_text(form, "masked") == "1"
    with visit.transaction() as session:
        visibility.set_visibility(
            session,
            _opened(session, visit, purposes.SET_DOCUMENT_VISIBILITY),
            wanted,
            masked_from_professionals=masked,
        )
    message = (
        visit.gettext("The document is now hidden from professionals.")
        if masked
        else visit.gettext("Professionals who may see your dossier can see the document again.")
    )
    return visit.redirect(f"/portal/patient/documents/{wanted}", flash=message, kind="success")
