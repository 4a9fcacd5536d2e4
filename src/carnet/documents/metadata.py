"""What an author says of a document and of a submission, and the checks it must pass.

Everything here is checked before anything is stored (see ``publication``): the type against the
catalogue, the title, MIME type, language and times, the declared size and hash, and that the
content plainly is what its MIME type says. The bulk loader (``bulk``) checks its rows' metadata
with the same ``check_metadata``, so both paths accept the same metadata.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.door import OpenedDossier
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.cda import intake as cda
from carnet.cda.errors import CdaRefused
from carnet.cda.header import read_header
from carnet.cda.parsing import claims_cda
from carnet.documents import formats
from carnet.documents.errors import InvalidDocument
from carnet.documents.models import Confidentiality, Document
from carnet.patients import service as patients
from carnet.patients.identifiers import NationalIdentifier

_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*$")
# A document dated a little ahead is a clock off by a few minutes, not a mistake worth refusing.
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class DocumentMetadata:
    """What the author says of a document (FHIR DocumentReference / XDS DocumentEntry)."""

    type_system: str
    type_code: str
    title: str
    mime_type: str
    created_at: dt.datetime
    author_professional_id: uuid.UUID | None = None
    author_organisation_id: uuid.UUID | None = None
    authored_by_patient: bool = False
    master_identifier: str | None = None
    class_code: str | None = None
    format_code: str | None = None
    language: str | None = None
    service_start: dt.datetime | None = None
    service_end: dt.datetime | None = None
    custodian_organisation_id: uuid.UUID | None = None
    facility_type: str | None = None
    practice_setting: str | None = None
    confidentiality: Confidentiality = Confidentiality.NORMAL
    masked_from_professionals: bool = False
    hidden_from_patient: bool = False
    source_system: str | None = None
    expected_size: int | None = None
    expected_sha256: str | None = None
    # IHE relatesTo "replaces": this document supersedes that one (of the same dossier).
    replaces_id: uuid.UUID | None = None
    # The XDS entryUUID a sender chose (ITI TF-3 4.2.3.1.5: a registry keeps a given UUID);
    # None lets Carnet choose the document's id.
    entry_id: uuid.UUID | None = None


@dataclass(frozen=True)
class SubmissionSetMetadata:
    """One act of publication (IHE SubmissionSet)."""

    source_id: str
    master_identifier: str | None = None
    title: str | None = None
    author_professional_id: uuid.UUID | None = None
    author_organisation_id: uuid.UUID | None = None
    # The XDS entryUUID a sender chose for the SubmissionSet, as for a document's.
    entry_id: uuid.UUID | None = None


def check_metadata(metadata: DocumentMetadata, now: dt.datetime) -> str:
    """Validate the metadata; return the class code (from the catalogue if not given)."""
    try:
        document_type = load_catalogue().by_code(metadata.type_system, metadata.type_code)
    except UnknownDocumentType as error:
        raise InvalidDocument(str(error), field="type") from error
    if metadata.class_code is not None and metadata.class_code != document_type.class_code:
        raise InvalidDocument(
            f"The class {metadata.class_code!r} does not fit the type {document_type.display!r}, "
            f"whose class is {document_type.class_code!r}.",
            field="class_code",
        )
    title = metadata.title.strip()
    if not title:
        raise InvalidDocument("The title is empty.", field="title")
    if len(title) > 300:
        raise InvalidDocument("The title is over 300 characters.", field="title")
    if not _MIME.match(metadata.mime_type):
        raise InvalidDocument(
            f"The MIME type {metadata.mime_type!r} is not of the form type/subtype.",
            field="mime_type",
        )
    if metadata.language is not None and not _LANGUAGE.match(metadata.language):
        raise InvalidDocument(
            f"The language {metadata.language!r} is not a language tag such as fr or de-LU.",
            field="language",
        )
    for name in ("created_at", "service_start", "service_end"):
        value: dt.datetime | None = getattr(metadata, name)
        if value is not None and value.tzinfo is None:
            raise InvalidDocument(f"The {name} has no time zone.", field=name)
    if metadata.created_at > now + _CLOCK_SKEW:
        raise InvalidDocument("The creation time is in the future.", field="created_at")
    if (
        metadata.service_start is not None
        and metadata.service_end is not None
        and metadata.service_end < metadata.service_start
    ):
        raise InvalidDocument("The service period ends before it starts.", field="service_end")
    if not (
        metadata.author_professional_id
        or metadata.author_organisation_id
        or metadata.authored_by_patient
    ):
        raise InvalidDocument(
            "A document needs an author: a professional, an organisation or the patient.",
            field="author",
        )
    return document_type.class_code


def check_content(
    metadata: DocumentMetadata, content: bytes, *, session: Session, patient_id: uuid.UUID
) -> None:
    """Refuse content whose size or SHA-256 is not the declared one, or not of its MIME type.

    A CDA R2 document (an XML type, a ``ClinicalDocument`` root) is also read and checked by
    ``carnet.cda``: its structure, its body, its patient (one of ``patient_id``'s national
    identifiers) and its header against this metadata (issue 17).
    """
    if metadata.expected_size is not None and metadata.expected_size != len(content):
        raise InvalidDocument(
            f"The declared size {metadata.expected_size} does not match the content's "
            f"{len(content)} bytes.",
            field="size",
        )
    if metadata.expected_sha256 is not None:
        actual = hashlib.sha256(content).hexdigest()
        if metadata.expected_sha256.lower() != actual:
            raise InvalidDocument("The declared SHA-256 does not match the content.", field="hash")
    _check_format(metadata.mime_type, content)
    _check_clinical_document(metadata, content, session, patient_id)


def _check_clinical_document(
    metadata: DocumentMetadata, content: bytes, session: Session, patient_id: uuid.UUID
) -> None:
    """Refuse a CDA document ``carnet.cda`` refuses, as an ``InvalidDocument`` on its field."""
    if not claims_cda(metadata.mime_type, content):
        return
    patient = patients.get_patient(session, patient_id)
    try:
        cda.check_received(
            metadata.mime_type,
            content,
            declared=cda.Declared(
                type_system=metadata.type_system,
                type_code=metadata.type_code,
                confidentiality=metadata.confidentiality.value,
                created_at=metadata.created_at,
                language=metadata.language,
            ),
            patient=[NationalIdentifier(i.system, i.value) for i in patient.identifiers],
        )
    except CdaRefused as error:
        raise InvalidDocument(error.message, field=error.field) from error


def replaced_version(
    session: Session, dossier: OpenedDossier, metadata: DocumentMetadata, content: bytes
) -> uuid.UUID | None:
    """The document a CDA document is a new version of, if the dossier holds it: the one its
    header names in ``relatedDocument typeCode="RPLC"`` (CDA R2 §4.2.3.1: the next version of
    its set replaces the parent), by the master identifier it was published under.

    None when the metadata already names what it replaces, for content that is no CDA
    document, and when the parent is not in this dossier (never shared here: the new version
    is added as it is). Publication replaces it as an IHE "replaces" does: only a current
    document, and only by its author (``guard.require_manage``).
    """
    if metadata.replaces_id is not None or not claims_cda(metadata.mime_type, content):
        return metadata.replaces_id
    try:
        header = read_header(content)
    except CdaRefused:
        return None  # check_content refuses it, naming why
    forms = [form for parent in header.replaces for form in cda.master_identifiers(parent)]
    if not forms:
        return None
    return session.scalar(
        select(Document.id)
        .where(Document.patient_id == dossier.patient_id, Document.master_identifier.in_(forms))
        .order_by(Document.submitted_at.desc())
        .limit(1)
    )


def _check_format(mime_type: str, content: bytes) -> None:
    """Refuse content that plainly is not what its MIME type says (a PDF that is not a PDF)."""
    head = content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if mime_type == "application/pdf" and not content.startswith(b"%PDF-"):
        raise InvalidDocument(
            "The content is not a PDF (it lacks the %PDF- header).", field="content"
        )
    if mime_type in ("application/json", "application/fhir+json"):
        try:
            json.loads(content)
        except (UnicodeDecodeError, ValueError) as error:
            raise InvalidDocument("The content is not valid JSON.", field="content") from error
    if mime_type.endswith(("/xml", "+xml")) and not head.startswith(b"<"):
        raise InvalidDocument("The content is not XML.", field="content")
    # An image that is not what it claims would be shown as one (see ``formats``).
    mismatch = formats.claimed_image_mismatch(mime_type, content)
    if mismatch is not None:
        raise InvalidDocument(mismatch, field="mime_type")
