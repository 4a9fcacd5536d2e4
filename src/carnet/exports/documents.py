"""The dossier's documents in the export file: a DocumentReference per document (current and
superseded), shaped as the FHIR API serves them, and its original bytes under ``documents/``.

On import each document is published again through ``documents.publication`` by a stand-in for
its author, under the client id ``carnet-import``: a replaced one first, then its successor.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import mimetypes
import uuid
import zipfile
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality, Document
from carnet.errors import CarnetError
from carnet.exports.fields import (
    IMPORT_CLIENT,
    MASKED_EXTENSION,
    PUBLISH_SCOPES,
    SHA256_EXTENSION,
    extension_of,
    json_path,
    parse_datetime,
    patient_stand_in,
    professional_stand_in,
    reference_id,
)
from carnet.exports.parties import DirectoryIds
from carnet.fhir.ids import document_resource_id
from carnet.fhir.mapping.document_reference import CONFIDENTIALITY_SYSTEM, document_reference
from carnet.lifecycle.errors import InvalidExportFile
from carnet.lifecycle.export import ExportedDocument
from carnet.patients.models import Patient
from carnet.storage import DocumentStore


def document_resource(exported: ExportedDocument, base_url: str) -> dict[str, Any]:
    """The document's DocumentReference, its attachment naming its file in the zip."""
    resource = document_reference(exported.document, base_url=base_url)
    attachment = resource["content"][0]["attachment"]
    attachment["url"] = file_name(exported.document)
    attachment["hash"] = base64.b64encode(hashlib.sha1(exported.content).digest()).decode()  # noqa: S324 — FHIR R4 Attachment.hash is SHA-1
    resource["extension"] = [
        {"url": SHA256_EXTENSION, "valueString": exported.document.sha256},
        {
            "url": MASKED_EXTENSION,
            "valueBoolean": exported.document.masked_from_professionals,
        },
    ]
    return resource


def file_name(document: Document) -> str:
    """Where the document's bytes sit in the zip."""
    extension = mimetypes.guess_extension(document.mime_type) or ".bin"
    return f"documents/{document_resource_id(document.patient_id, document.id)}{extension}"


def import_documents(
    session: Session,
    store: DocumentStore,
    archive: zipfile.ZipFile,
    references: Mapping[str, dict[str, Any]],
    *,
    patient: Patient,
    directory_ids: DirectoryIds,
    clock: Clock,
    max_bytes: int,
) -> dict[str, uuid.UUID]:
    """Publish each document as its author would; a replaced one before its successor.

    Returns the DocumentReference ids of the export → the documents' ids here.
    """
    new_ids: dict[str, uuid.UUID] = {}
    for rid in _replaced_first(references):
        resource = references[rid]
        metadata = _metadata(resource, directory_ids, rid)
        actor = _stand_in(session, metadata, patient)
        content = _content(archive, resource, rid, max_bytes)
        replaced = _replaced(resource)
        try:
            if replaced in new_ids:
                dossier = open_dossier(
                    session, actor, patient.id, purposes.REPLACE_DOCUMENT, clock=clock
                )
                document = publication.replace_document(
                    session,
                    dossier,
                    store,
                    replaced_id=new_ids[replaced],
                    metadata=metadata,
                    content=content,
                )
            else:
                dossier = open_dossier(
                    session, actor, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock
                )
                document = publication.add_document(
                    session, dossier, store, metadata=metadata, content=content
                )
        except CarnetError as error:
            raise InvalidExportFile(
                f"DocumentReference/{rid} was refused: {error}", field="DocumentReference"
            ) from error
        new_ids[rid] = document.id
    return new_ids


def _replaced_first(references: Mapping[str, dict[str, Any]]) -> list[str]:
    """Resource ids ordered so that a replaced document comes before the one replacing it."""
    ordered: list[str] = []
    placed: set[str] = set()

    def place(rid: str, seen: frozenset[str]) -> None:
        if rid in placed or rid in seen:
            return
        replaced = _replaced(references[rid])
        if replaced is not None and replaced in references:
            place(replaced, seen | {rid})
        placed.add(rid)
        ordered.append(rid)

    for rid in sorted(references):
        place(rid, frozenset())
    return ordered


def _replaced(resource: dict[str, Any]) -> str | None:
    for relation in resource.get("relatesTo", []):
        if relation.get("code") == "replaces":
            return reference_id(relation.get("target"), "DocumentReference")
    return None


def _metadata(resource: dict[str, Any], directory_ids: DirectoryIds, rid: str) -> DocumentMetadata:
    attachment = json_path(resource, "content", 0, "attachment") or {}
    authors = [author.get("reference", "") for author in resource.get("author", [])]
    try:
        return DocumentMetadata(
            type_system=json_path(resource, "type", "coding", 0, "system") or "",
            type_code=json_path(resource, "type", "coding", 0, "code") or "",
            title=attachment.get("title", ""),
            mime_type=attachment.get("contentType", ""),
            created_at=_required_datetime(attachment.get("creation"), rid),
            author_professional_id=_mapped(authors, "Practitioner", directory_ids.professionals),
            author_organisation_id=_mapped(authors, "Organization", directory_ids.organisations),
            authored_by_patient=any(a.startswith("Patient/") for a in authors),
            master_identifier=json_path(resource, "masterIdentifier", "value"),
            class_code=json_path(resource, "category", 0, "coding", 0, "code"),
            format_code=json_path(resource, "content", 0, "format", "code"),
            language=attachment.get("language"),
            service_start=parse_datetime(json_path(resource, "context", "period", "start")),
            service_end=parse_datetime(json_path(resource, "context", "period", "end")),
            custodian_organisation_id=_mapped(
                [json_path(resource, "custodian", "reference") or ""],
                "Organization",
                directory_ids.organisations,
            ),
            facility_type=json_path(resource, "context", "facilityType", "coding", 0, "code"),
            practice_setting=json_path(resource, "context", "practiceSetting", "coding", 0, "code"),
            confidentiality=_confidentiality(resource),
            masked_from_professionals=bool(
                extension_of(resource, MASKED_EXTENSION).get("valueBoolean", False)
            ),
            expected_size=attachment.get("size"),
            expected_sha256=extension_of(resource, SHA256_EXTENSION).get("valueString"),
        )
    except ValueError as error:
        raise InvalidExportFile(
            f"DocumentReference/{rid} is not usable: {error}.", field="DocumentReference"
        ) from error


def _confidentiality(resource: dict[str, Any]) -> Confidentiality:
    for label in resource.get("securityLabel", []):
        for coding in label.get("coding", []):
            if coding.get("system") == CONFIDENTIALITY_SYSTEM:
                return Confidentiality(coding.get("code"))
    return Confidentiality.NORMAL


def _content(archive: zipfile.ZipFile, resource: dict[str, Any], rid: str, max_bytes: int) -> bytes:
    name = json_path(resource, "content", 0, "attachment", "url") or ""
    try:
        info = archive.getinfo(name)
    except KeyError as error:
        raise InvalidExportFile(
            f"DocumentReference/{rid} names the file {name!r}, which the zip does not hold.",
            field="DocumentReference",
        ) from error
    # Checked before reading: a small zip can expand into a very large file.
    if info.file_size > max_bytes:
        raise InvalidExportFile(
            f"{name} is {info.file_size} bytes, over the {max_bytes}-byte document limit.",
            field="DocumentReference",
        )
    return archive.read(info)


def _stand_in(session: Session, metadata: DocumentMetadata, patient: Patient) -> Actor:
    """Who publishes a re-imported document: its author, their system, or the patient."""
    if metadata.author_professional_id is not None:
        author = directory.get_professional(session, metadata.author_professional_id)
        return professional_stand_in(author, PUBLISH_SCOPES)
    if metadata.author_organisation_id is not None:
        return Actor(
            kind=ActorKind.FEEDING_SYSTEM,
            subject=f"Organization/{metadata.author_organisation_id}",
            assurance=Assurance.HIGH,
            scopes=PUBLISH_SCOPES,
            client_id=IMPORT_CLIENT,
            organisation_id=metadata.author_organisation_id,
        )
    return patient_stand_in(patient.id, PUBLISH_SCOPES)


def _mapped(references: list[str], kind: str, ids: Mapping[str, uuid.UUID]) -> uuid.UUID | None:
    for reference in references:
        if reference.startswith(f"{kind}/"):
            found = ids.get(reference.removeprefix(f"{kind}/"))
            if found is None:
                raise InvalidExportFile(
                    f"{reference} is named but not in the bundle.", field="DocumentReference"
                )
            return found
    return None


def _required_datetime(value: object, rid: str) -> dt.datetime:
    found = parse_datetime(value)
    if found is None:
        raise InvalidExportFile(
            f"DocumentReference/{rid} has no content[0].attachment.creation.",
            field="DocumentReference",
        )
    return found
