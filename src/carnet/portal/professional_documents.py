"""Documents in the professional portal: the viewer, the original and FHIR downloads, uploads.

Every read goes through ``carnet.documents`` with the professional's actor, so each one is
decided by the policy and written to the dossier's audit trail (the viewer page and the content
it frames are two retrievals, and are recorded as two).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import mimetypes
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.catalogue import DocumentType, UnknownDocumentType, load_catalogue
from carnet.cda.header import effective_time
from carnet.directory import service as directory
from carnet.documents import publication, reading, visibility
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.errors import InvalidInput, LimitExceeded, StateRefused
from carnet.fhir.mapping.document_reference import document_reference
from carnet.fhir.validation import validate
from carnet.portal.document_content import original_response, uploaded_type
from carnet.portal.document_view import render_document
from carnet.portal.error_words import said
from carnet.portal.professional_header import optional_header
from carnet.portal.professional_links import document_url, patient_url, upload_url
from carnet.portal.visits import (
    CheckedForm,
    ProfessionalVisit,
    Visit,
    form_text,
    parse_date,
    parse_id,
)

router = APIRouter()

FHIR_JSON = "application/fhir+json"
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "text/plain": ".txt",
    "text/xml": ".xml",
    "application/xml": ".xml",
    "application/json": ".json",
    "application/fhir+json": ".json",
    "image/jpeg": ".jpg",
    "image/png": ".png",
}
# What a browser may send for a file it does not recognise: the name then says more.
_UNTYPED = {"", "application/octet-stream"}
# Carnet's CDA documents are text/xml (as the feeds and the demo send them): one type, one view.
_SAME_TYPE = {"application/xml": "text/xml"}


@dataclass(frozen=True)
class DocumentRow:
    """A document as the portal lists it: its metadata, type in words, author by name."""

    document: Document
    type_label: str
    author: str
    url: str

    @property
    def date(self) -> dt.datetime:
        """The date care was given, else the date it was written."""
        return self.document.service_start or self.document.created_at


def document_types(language: str) -> list[tuple[str, str]]:
    """The catalogue's document types as ``(key, label)``, labelled and sorted in ``language``."""
    labelled = [(kind.key, kind.labels.in_language(language)) for kind in load_catalogue().types]
    return sorted(labelled, key=lambda item: item[1].casefold())


def document_rows(session: Session, visit: Visit, found: list[Document]) -> list[DocumentRow]:
    """Documents the service returned, with their type labels and authors' names."""
    names: dict[uuid.UUID, str] = {}
    return [
        DocumentRow(
            document=document,
            type_label=_type_label(document, visit.language),
            author=_author(session, visit, document, names),
            url=document_url(document.patient_id, document.id),
        )
        for document in found
    ]


@router.get("/patients/{patient_id}/documents/{document_id}")
def viewer(patient_id: str, document_id: str, visit: ProfessionalVisit) -> Response:
    """One document: its metadata, a rendition of its content, and its downloads."""
    dossier, wanted = parse_id(patient_id), parse_id(document_id)
    with visit.transaction() as session:
        opened = open_dossier(
            session, visit.actor, dossier, purposes.READ_DOCUMENTS, clock=visit.platform.clock
        )
        document, content = reading.read_content(session, opened, wanted, visit.platform.store)
        row = document_rows(session, visit, [document])[0]
    # An author may read what they wrote in a dossier they cannot open otherwise.
    header = optional_header(visit, dossier)
    rendition = render_document(document.mime_type, content, language=visit.language)
    base = document_url(dossier, wanted)
    return visit.render(
        "professional/viewer.html",
        patient_header=header,
        row=row,
        rendition=rendition,
        content_url=f"{base}/content",
        download_url=f"{base}/content?download=1",
        fhir_url=f"{base}/fhir",
        disclose_url=f"{base}/disclose",
        withdraw_url=f"{base}/entered-in-error",
        may_withdraw=document.status is DocumentStatus.CURRENT
        and document.author_professional_id == visit.actor.professional_id,
        back=patient_url(dossier),
        may_disclose=document.hidden_from_patient
        and document.status is DocumentStatus.CURRENT
        and document.author_professional_id == visit.actor.professional_id,
    )


@router.get("/patients/{patient_id}/documents/{document_id}/content")
def content(
    patient_id: str, document_id: str, visit: ProfessionalVisit, download: str | None = None
) -> Response:
    """The original bytes: shown inline (the viewer's frame), or as a file with ``?download=1``."""
    dossier, wanted = parse_id(patient_id), parse_id(document_id)
    with visit.transaction() as session:
        opened = open_dossier(
            session, visit.actor, dossier, purposes.RETRIEVE_DOCUMENTS, clock=visit.platform.clock
        )
        document, data = reading.read_content(session, opened, wanted, visit.platform.store)
    response = original_response(
        document,
        data,
        file_parameters=f'filename="{file_name(document)}"',
        download=download == "1",
    )
    return visit.keep(response)


@router.get("/patients/{patient_id}/documents/{document_id}/fhir")
def fhir_download(patient_id: str, document_id: str, visit: ProfessionalVisit) -> Response:
    """The document as a FHIR R4 Bundle (collection): its DocumentReference, content inline.

    Built by the FHIR API's own mapping and checked against the R4 structure, so the file is
    what a FHIR client reading Carnet would get, with the bytes in ``attachment.data``.
    """
    dossier, wanted = parse_id(patient_id), parse_id(document_id)
    with visit.transaction() as session:
        opened = open_dossier(
            session, visit.actor, dossier, purposes.RETRIEVE_DOCUMENTS, clock=visit.platform.clock
        )
        document, data = reading.read_content(session, opened, wanted, visit.platform.store)
    bundle = fhir_bundle(document, data, base_url=_fhir_base(visit), now=visit.platform.clock.now())
    response = Response(
        json.dumps(bundle, ensure_ascii=False, indent=2).encode(),
        media_type=FHIR_JSON,
        headers={
            "Content-Disposition": f'attachment; filename="{file_name(document, ".fhir.json")}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
    return visit.keep(response)


def fhir_bundle(
    document: Document, data: bytes, *, base_url: str, now: dt.datetime
) -> dict[str, Any]:
    """A Bundle of type ``collection`` holding the document's DocumentReference, bytes inline.

    Raises ``InvalidResource`` should the result not be valid FHIR R4 (a defect, not an input).
    """
    resource = document_reference(document, base_url=base_url)
    attachment = resource["content"][0]["attachment"]
    attachment["data"] = base64.b64encode(data).decode("ascii")
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "entry": [
            {"fullUrl": f"{base_url}/DocumentReference/{resource['id']}", "resource": resource}
        ],
    }
    validate(bundle, expected="Bundle")
    return bundle


@router.post("/patients/{patient_id}/documents/{document_id}/disclose")
def disclose(
    patient_id: str, document_id: str, visit: ProfessionalVisit, form: CheckedForm
) -> Response:
    """Release a document its author held back from the patient (after telling them)."""
    dossier, wanted = parse_id(patient_id), parse_id(document_id)
    with visit.transaction() as session:
        opened = open_dossier(
            session,
            visit.actor,
            dossier,
            purposes.CHANGE_DOCUMENT_VISIBILITY,
            clock=visit.platform.clock,
        )
        visibility.disclose_to_patient(session, opened, wanted)
    return visit.redirect(
        document_url(dossier, wanted),
        flash=visit.gettext("The patient can now see this document."),
        kind="success",
    )


@router.post("/patients/{patient_id}/documents/{document_id}/entered-in-error")
def withdraw(
    patient_id: str, document_id: str, visit: ProfessionalVisit, form: CheckedForm
) -> Response:
    """The author withdraws a document published by mistake: kept, marked entered-in-error.

    Asked once more on the page (a checkbox); the services refuse anyone but its author and a
    document that is no longer current.
    """
    dossier, wanted = parse_id(patient_id), parse_id(document_id)
    if form.get("confirm") != "yes":
        return visit.redirect(
            document_url(dossier, wanted),
            flash=visit.gettext("Tick the box to confirm the document was entered in error."),
            kind="error",
        )
    try:
        with visit.transaction() as session:
            opened = open_dossier(
                session, visit.actor, dossier, purposes.MANAGE_DOCUMENT, clock=visit.platform.clock
            )
            visibility.mark_entered_in_error(session, opened, wanted)
    except StateRefused as error:
        return visit.redirect(
            document_url(dossier, wanted), flash=said(error, visit.language), kind="error"
        )
    return visit.redirect(
        document_url(dossier, wanted),
        flash=visit.gettext(
            "The document is marked entered in error. It stays in the dossier, struck out."
        ),
        kind="success",
    )


# --- uploads -----------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/upload")
def upload_form(patient_id: str, visit: ProfessionalVisit) -> Response:
    """The form adding a document to the dossier."""
    return _upload_page(visit, parse_id(patient_id), {})


@router.post("/patients/{patient_id}/upload")
def upload(patient_id: str, visit: ProfessionalVisit, form: CheckedForm) -> Response:
    """Add the document, authored by the professional; back to the form with what was typed.

    The documents service checks the rest (type, title, content against its MIME type, size,
    the dossier's state) and writes nothing when it refuses.
    """
    dossier = parse_id(patient_id)
    typed = {
        name: form_text(form, name) for name in ("type", "title", "service_date", "confidentiality")
    }
    typed["hidden"] = "yes" if form.get("hidden_from_patient") == "yes" else ""
    file = form.get("file")
    data = b""
    if isinstance(file, UploadFile):
        with file.file:
            data = file.file.read()
    try:
        metadata = _metadata(visit, typed, file if isinstance(file, UploadFile) else None, data)
        with visit.transaction() as session:
            opened = open_dossier(
                session,
                visit.actor,
                dossier,
                purposes.PUBLISH_DOCUMENTS,
                clock=visit.platform.clock,
            )
            document = publication.add_document(
                session, opened, visit.platform.store, metadata=metadata, content=data
            )
    except InvalidInput as error:
        return _upload_page(
            visit, dossier, typed, error=said(error, visit.language), status_code=422
        )
    except LimitExceeded as error:
        return _upload_page(
            visit, dossier, typed, error=said(error, visit.language), status_code=413
        )
    except StateRefused as error:
        return _upload_page(
            visit, dossier, typed, error=said(error, visit.language), status_code=409
        )
    return visit.redirect(
        document_url(dossier, document.id),
        flash=visit.gettext("The document was added to the dossier."),
        kind="success",
    )


def _metadata(
    visit: Visit, typed: dict[str, str], file: UploadFile | None, data: bytes
) -> DocumentMetadata:
    """The metadata of an upload; ``InvalidInput`` (in the visitor's language) for a bad field."""
    if file is None or not data:
        raise InvalidInput(visit.gettext("Choose the file to add."), field="file")
    try:
        kind: DocumentType = load_catalogue().by_key(typed["type"])
    except UnknownDocumentType as error:
        raise InvalidInput(visit.gettext("Choose the type of document."), field="type") from error
    try:
        confidentiality = Confidentiality(typed["confidentiality"] or Confidentiality.NORMAL)
    except ValueError as error:
        raise InvalidInput(
            visit.gettext("Choose who may see the document."), field="confidentiality"
        ) from error
    zone = visit.formats.zone
    try:
        day = parse_date(typed["service_date"])
    except ValueError as error:
        raise InvalidInput(
            visit.gettext("The date of service is not a date (for example 2026-05-31)."),
            field="service_date",
        ) from error
    now = visit.platform.clock.now()
    if day is not None and day > now.astimezone(zone).date():
        raise InvalidInput(
            visit.gettext("The date of service is in the future."), field="service_date"
        )
    mime_type = uploaded_type(_mime_type(file), data, visit.gettext)
    return DocumentMetadata(
        type_system=kind.system,
        type_code=kind.code,
        title=typed["title"],
        mime_type=mime_type,
        # A CDA document says when it was written (its header's effectiveTime): the upload's
        # time would disagree with it, and publication refuses what disagrees (issue 17).
        created_at=effective_time(mime_type, data) or now,
        service_start=(
            dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC) if day else None
        ),
        confidentiality=confidentiality,
        hidden_from_patient=typed["hidden"] == "yes",
    )


def _mime_type(file: UploadFile) -> str:
    """The file's type as the browser named it (without parameters), else as its name says."""
    declared = (file.content_type or "").split(";", 1)[0].strip().lower()
    if declared in _UNTYPED:
        declared = mimetypes.guess_type(file.filename or "")[0] or "application/octet-stream"
    return _SAME_TYPE.get(declared, declared)


def _upload_page(
    visit: Visit,
    patient_id: uuid.UUID,
    typed: dict[str, str],
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    return visit.render(
        "professional/upload.html",
        patient_header=optional_header(visit, patient_id),
        status_code=status_code,
        action=upload_url(patient_id),
        back=patient_url(patient_id),
        types=document_types(visit.language),
        confidentialities=[level.value for level in Confidentiality],
        typed=typed,
        error=error,
    )


# --- names -------------------------------------------------------------------------------------


def file_name(document: Document, extension: str | None = None) -> str:
    """A file name for a download: its date and title in plain ASCII, and a fitting extension."""
    folded = unicodedata.normalize("NFKD", document.title).encode("ascii", "ignore").decode()
    stem = re.sub(r"[^A-Za-z0-9]+", "-", folded).strip("-").lower()[:60] or "document"
    if extension is None:
        extension = (
            _EXTENSIONS.get(document.mime_type)
            or mimetypes.guess_extension(document.mime_type)
            or ".bin"
        )
    return f"{document.created_at.date().isoformat()}-{stem}{extension}"


def _type_label(document: Document, language: str) -> str:
    try:
        kind = load_catalogue().by_code(document.type_system, document.type_code)
    except UnknownDocumentType:
        return document.type_code
    return kind.labels.in_language(language)


def _author(session: Session, visit: Visit, document: Document, names: dict[uuid.UUID, str]) -> str:
    """Who wrote the document, by name (the directory is public to professionals)."""
    if document.authored_by_patient:
        return visit.gettext("The patient")
    author_id = document.author_professional_id or document.author_organisation_id
    if author_id is None:
        return ""
    if author_id not in names:
        if document.author_professional_id is not None:
            person = directory.get_professional(session, document.author_professional_id)
            names[author_id] = f"{person.given} {person.family}"
        else:
            names[author_id] = directory.get_organisation(session, author_id).name
    return names[author_id]


def _fhir_base(visit: Visit) -> str:
    return visit.platform.settings.public_url.rstrip("/") + "/fhir"
