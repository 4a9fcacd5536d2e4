"""The dossier export file — a FHIR R4 Bundle and the original files in one zip — and its import.

``build_export_zip`` is what ``carnet export`` writes and what an HTTP ``$export`` operation
serves; ``import_export_zip`` is ``carnet import``: it re-creates the dossier in a Carnet that
does not hold the patient yet, through the services, with the same documents and hashes.

The zip holds:

    bundle.json             a Bundle of type collection: the Patient, the Organizations,
                            Practitioners and PractitionerRoles who wrote or keep the
                            documents, and a DocumentReference per document (current and
                            superseded), shaped as the FHIR API serves them
    documents/<id><.ext>    each document's original bytes; the DocumentReference's
                            ``content[0].attachment.url`` names the file, ``attachment.hash``
                            is its SHA-1 (FHIR R4) and an extension carries its SHA-256

It sits with the ways in because it speaks FHIR (``carnet.fhir.mapping``); the lifecycle domain
gathers the dossier (``lifecycle.export.collect_export``, policy-checked and audited).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import mimetypes
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import OpenedDossier, open_dossier
from carnet.access.scopes import parse_scopes
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Organisation, OrganisationKind, Profession, Professional
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality, Document
from carnet.errors import CarnetError
from carnet.fhir.ids import document_resource_id
from carnet.fhir.mapping.document_reference import CONFIDENTIALITY_SYSTEM, document_reference
from carnet.lifecycle.errors import ImportConflict, InvalidExportFile
from carnet.lifecycle.export import DossierExport, collect_export
from carnet.patients import service as patients
from carnet.patients.models import Patient, Sex
from carnet.storage import DocumentStore

BUNDLE = "bundle.json"
EXTENSIONS = "http://carnet.health/fhir/StructureDefinition"
SHA256_EXTENSION = f"{EXTENSIONS}/content-sha256"
MASKED_EXTENSION = f"{EXTENSIONS}/masked-from-professionals"
INSURED_SINCE_EXTENSION = f"{EXTENSIONS}/insured-since"
PROFESSION_SYSTEM = "http://carnet.health/fhir/CodeSystem/profession"
ORGANISATION_KIND_SYSTEM = "http://carnet.health/fhir/CodeSystem/organisation-kind"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
# Re-imported documents are published by their authors' stand-ins under this client id, so the
# audit trail tells them from the authors' own publications.
IMPORT_CLIENT = "carnet-import"
_PUBLISH_SCOPES = parse_scopes("user/DocumentReference.cu system/DocumentReference.cu")[0]


# --- Export ------------------------------------------------------------------------------------


def build_export_zip(
    session: Session, dossier: OpenedDossier, store: DocumentStore, *, base_url: str
) -> bytes:
    """The dossier's export file, as its actor (the patient or their representative) sees it.

    Policy and audit are ``lifecycle.export.collect_export``'s, on a dossier opened to
    ``EXPORT_DOSSIER``. ``base_url`` is the FHIR base the resources are named under
    (``<CARNET_PUBLIC_URL>/fhir``). The zip is built in memory: a dossier is hundreds of
    documents of at most ``CARNET_MAX_DOCUMENT_BYTES`` each.
    """
    export = collect_export(session, dossier, store)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = list(_export_entries(export, base_url))
        for exported in export.documents:
            archive.writestr(_file_name(exported.document), exported.content)
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": _instant(export.exported_at),
            "entry": [
                {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r}
                for r in entries
            ],
        }
        archive.writestr(BUNDLE, json.dumps(bundle, indent=1, ensure_ascii=False))
    return buffer.getvalue()


def _export_entries(export: DossierExport, base_url: str) -> Iterator[dict[str, Any]]:
    yield _patient(export.patient)
    yield from (_organization(organisation) for organisation in export.organisations)
    for professional in export.professionals:
        yield from _practitioner(professional)
    for exported in export.documents:
        resource = document_reference(exported.document, base_url=base_url)
        attachment = resource["content"][0]["attachment"]
        attachment["url"] = _file_name(exported.document)
        attachment["hash"] = base64.b64encode(hashlib.sha1(exported.content).digest()).decode()  # noqa: S324 — FHIR R4 Attachment.hash is SHA-1
        resource["extension"] = [
            {"url": SHA256_EXTENSION, "valueString": exported.document.sha256},
            {
                "url": MASKED_EXTENSION,
                "valueBoolean": exported.document.masked_from_professionals,
            },
        ]
        yield resource


def _patient(patient: Patient) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": [{"system": i.system, "value": i.value} for i in patient.identifiers],
        "name": [{"family": patient.family, "given": [patient.given]}],
        "gender": patient.sex.value,
        "birthDate": patient.birth_date.isoformat(),
        "communication": [
            {
                "language": {"coding": [{"system": LANGUAGE_SYSTEM, "code": patient.language}]},
                "preferred": True,
            }
        ],
    }
    if patient.email:
        resource["telecom"] = [{"system": "email", "value": patient.email}]
    address = {
        "line": [patient.address_line] if patient.address_line else None,
        "postalCode": patient.postal_code,
        "city": patient.city,
        "country": patient.country,
    }
    if any(address.values()):
        resource["address"] = [{key: value for key, value in address.items() if value}]
    if patient.insured_since:
        resource["extension"] = [
            {"url": INSURED_SINCE_EXTENSION, "valueDate": patient.insured_since.isoformat()}
        ]
    return resource


def _organization(organisation: Organisation) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": str(organisation.id),
        "identifier": [
            {"system": organisation.identifier_system, "value": organisation.identifier_value}
        ],
        "name": organisation.name,
        "type": [{"coding": [{"system": ORGANISATION_KIND_SYSTEM, "code": organisation.kind}]}],
    }
    if organisation.city:
        resource["address"] = [{"city": organisation.city}]
    return resource


def _practitioner(professional: Professional) -> Iterator[dict[str, Any]]:
    yield {
        "resourceType": "Practitioner",
        "id": str(professional.id),
        "identifier": [
            {"system": professional.identifier_system, "value": professional.identifier_value}
        ],
        "name": [{"family": professional.family, "given": [professional.given]}],
    }
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "id": str(professional.id),
        "practitioner": {"reference": f"Practitioner/{professional.id}"},
        "code": [{"coding": [{"system": PROFESSION_SYSTEM, "code": professional.profession}]}],
    }
    if professional.organisation_id:
        role["organization"] = {"reference": f"Organization/{professional.organisation_id}"}
    if professional.specialty:
        role["specialty"] = [{"coding": [{"code": professional.specialty}]}]
    yield role


def _file_name(document: Document) -> str:
    extension = mimetypes.guess_extension(document.mime_type) or ".bin"
    return f"documents/{document_resource_id(document.patient_id, document.id)}{extension}"


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- Import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What ``import_export_zip`` created."""

    patient_id: uuid.UUID
    documents: int
    organisations_created: int
    professionals_created: int

    def summary(self) -> str:
        """One line for the operator."""
        return (
            f"Imported dossier {self.patient_id}: {self.documents} documents; "
            f"{self.organisations_created} organisations and {self.professionals_created} "
            "professionals added to the directory."
        )


def import_export_zip(
    session: Session,
    store: DocumentStore,
    data: bytes,
    *,
    operator: Actor,
    clock: Clock,
    max_document_bytes: int,
) -> ImportReport:
    """Re-create an exported dossier here: the patient (active), the directory entries its
    documents name, and the documents with their master identifiers, metadata and bytes.

    For an operator moving a dossier into a Carnet that does not hold the patient
    (``ImportConflict`` otherwise). Each document is published through ``documents.publication``
    by a stand-in for its author — the professional, their organisation's system, or the
    patient — under the client id ``carnet-import``, so the policy, validation, encryption and
    audit all run; a replaced document is published first, then replaced by its successor.
    The SHA-256 of each file is checked against the export. The submission sets of the
    original publications are not carried over. Raises ``InvalidExportFile`` naming what is
    wrong in the file; the caller's transaction then writes nothing.
    """
    if operator.kind is not ActorKind.OPERATOR:
        raise InvalidExportFile("An export is imported by an operator.", field="operator")
    with _open(data) as archive:
        resources = _resources(archive)
        patient = _import_patient(session, _only(resources, "Patient"), clock)
        organisations = {
            rid: _import_organisation(session, resource, clock)
            for rid, resource in resources.get("Organization", {}).items()
        }
        roles = {
            _reference_id(role.get("practitioner"), "Practitioner"): role
            for role in resources.get("PractitionerRole", {}).values()
        }
        professionals = {
            rid: _import_professional(session, resource, roles.get(rid), organisations, clock)
            for rid, resource in resources.get("Practitioner", {}).items()
        }
        imported = _import_documents(
            session,
            store,
            archive,
            resources.get("DocumentReference", {}),
            patient=patient,
            directory_ids=_DirectoryIds(
                {rid: org.id for rid, (org, _) in organisations.items()},
                {rid: pro.id for rid, (pro, _) in professionals.items()},
            ),
            clock=clock,
            max_bytes=max_document_bytes,
        )
    audit_trail.record(
        session,
        agent=operator.agent,
        action=AuditAction.LIFECYCLE,
        clock=clock,
        patient_id=patient.id,
        entity_ids=imported,
        details={"reason": "imported from a dossier export", "documents": len(imported)},
    )
    return ImportReport(
        patient_id=patient.id,
        documents=len(imported),
        organisations_created=sum(created for _, created in organisations.values()),
        professionals_created=sum(created for _, created in professionals.values()),
    )


@dataclass(frozen=True)
class _DirectoryIds:
    """Organisation and professional ids in the export → their ids here."""

    organisations: Mapping[str, uuid.UUID]
    professionals: Mapping[str, uuid.UUID]


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise InvalidExportFile(f"The file is not a zip: {error}.", field="file") from error


def _resources(archive: zipfile.ZipFile) -> dict[str, dict[str, dict[str, Any]]]:
    """The bundle's resources by type, then by id."""
    try:
        bundle = json.loads(archive.read(BUNDLE))
    except KeyError as error:
        raise InvalidExportFile(f"The zip holds no {BUNDLE}.", field="file") from error
    except ValueError as error:
        raise InvalidExportFile(f"{BUNDLE} is not JSON: {error}.", field=BUNDLE) from error
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidExportFile(f"{BUNDLE} is not a FHIR Bundle.", field=BUNDLE)
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not resource.get("id"):
            raise InvalidExportFile(
                f"Bundle.entry[{index}] has no resource with an id.", field=BUNDLE
            )
        found.setdefault(str(resource.get("resourceType")), {})[str(resource["id"])] = resource
    return found


def _only(resources: Mapping[str, Mapping[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    found = list(resources.get(kind, {}).values())
    if len(found) != 1:
        raise InvalidExportFile(
            f"The bundle holds {len(found)} {kind} resources, not one.", field=BUNDLE
        )
    return found[0]


def _import_patient(session: Session, resource: dict[str, Any], clock: Clock) -> Patient:
    names = (resource.get("name") or [{}])[0]
    address = (resource.get("address") or [{}])[0]
    email = next(
        (t.get("value") for t in resource.get("telecom", []) if t.get("system") == "email"), None
    )
    language = _path(resource, "communication", 0, "language", "coding", 0, "code") or "fr"
    insured = _extension(resource, INSURED_SINCE_EXTENSION).get("valueDate")
    found_identifiers = [
        (i["system"], i["value"])
        for i in resource.get("identifier", [])
        if i.get("system") in patients.PATIENT_SYSTEMS and i.get("value")
    ]
    for system, value in found_identifiers:
        if patients.find_patient(session, system, value) is not None:
            raise ImportConflict(value)
    try:
        return patients.create_dossier(
            session,
            identifiers_=found_identifiers,
            demographics=patients.Demographics(
                family=names.get("family", ""),
                given=" ".join(names.get("given", [])),
                birth_date=dt.date.fromisoformat(resource.get("birthDate", "")),
                sex=Sex(resource.get("gender", "unknown")),
                language=language,
                email=email,
                address_line=" ".join(address.get("line", [])) or None,
                postal_code=address.get("postalCode"),
                city=address.get("city"),
                country=address.get("country"),
                insured_since=dt.date.fromisoformat(insured) if insured else None,
            ),
            clock=clock,
        )
    except ValueError as error:
        raise InvalidExportFile(
            f"The Patient resource is not usable: {error}.", field="Patient"
        ) from error


def _import_organisation(
    session: Session, resource: dict[str, Any], clock: Clock
) -> tuple[Organisation, bool]:
    system, value = _identifier(resource, "Organization")
    found = directory.find_organisation(session, system, value)
    if found is not None:
        return found, False
    kind = _path(resource, "type", 0, "coding", 0, "code") or OrganisationKind.LABORATORY.value
    return (
        directory.register_organisation(
            session,
            identifier_system=system,
            identifier_value=value,
            name=resource.get("name", ""),
            kind=_enum(OrganisationKind, kind, "Organization.type"),
            city=_path(resource, "address", 0, "city"),
            clock=clock,
        ),
        True,
    )


def _import_professional(
    session: Session,
    resource: dict[str, Any],
    role: dict[str, Any] | None,
    organisations: Mapping[str, tuple[Organisation, bool]],
    clock: Clock,
) -> tuple[Professional, bool]:
    system, value = _identifier(resource, "Practitioner")
    found = directory.find_professional(session, system, value)
    if found is not None:
        return found, False
    role = role or {}
    organisation = organisations.get(_reference_id(role.get("organization"), "Organization") or "")
    names = (resource.get("name") or [{}])[0]
    profession = _path(role, "code", 0, "coding", 0, "code") or ""
    return (
        directory.register_professional(
            session,
            identifier_system=system,
            identifier_value=value,
            family=names.get("family", ""),
            given=" ".join(names.get("given", [])),
            profession=_enum(Profession, profession, "PractitionerRole.code"),
            specialty=_path(role, "specialty", 0, "coding", 0, "code"),
            organisation_id=organisation[0].id if organisation else None,
            clock=clock,
        ),
        True,
    )


def _import_documents(
    session: Session,
    store: DocumentStore,
    archive: zipfile.ZipFile,
    references: Mapping[str, dict[str, Any]],
    *,
    patient: Patient,
    directory_ids: _DirectoryIds,
    clock: Clock,
    max_bytes: int,
) -> list[uuid.UUID]:
    """Publish each document as its author would; a replaced one before its successor."""
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
    return list(new_ids.values())


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
            return _reference_id(relation.get("target"), "DocumentReference")
    return None


def _metadata(resource: dict[str, Any], directory_ids: _DirectoryIds, rid: str) -> DocumentMetadata:
    attachment = _path(resource, "content", 0, "attachment") or {}
    authors = [author.get("reference", "") for author in resource.get("author", [])]
    try:
        return DocumentMetadata(
            type_system=_path(resource, "type", "coding", 0, "system") or "",
            type_code=_path(resource, "type", "coding", 0, "code") or "",
            title=attachment.get("title", ""),
            mime_type=attachment.get("contentType", ""),
            created_at=_required_datetime(attachment.get("creation"), rid),
            author_professional_id=_mapped(authors, "Practitioner", directory_ids.professionals),
            author_organisation_id=_mapped(authors, "Organization", directory_ids.organisations),
            authored_by_patient=any(a.startswith("Patient/") for a in authors),
            master_identifier=_path(resource, "masterIdentifier", "value"),
            class_code=_path(resource, "category", 0, "coding", 0, "code"),
            format_code=_path(resource, "content", 0, "format", "code"),
            language=attachment.get("language"),
            service_start=_datetime(_path(resource, "context", "period", "start")),
            service_end=_datetime(_path(resource, "context", "period", "end")),
            custodian_organisation_id=_mapped(
                [_path(resource, "custodian", "reference") or ""],
                "Organization",
                directory_ids.organisations,
            ),
            facility_type=_path(resource, "context", "facilityType", "coding", 0, "code"),
            practice_setting=_path(resource, "context", "practiceSetting", "coding", 0, "code"),
            confidentiality=_confidentiality(resource),
            masked_from_professionals=bool(
                _extension(resource, MASKED_EXTENSION).get("valueBoolean", False)
            ),
            expected_size=attachment.get("size"),
            expected_sha256=_extension(resource, SHA256_EXTENSION).get("valueString"),
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
    name = _path(resource, "content", 0, "attachment", "url") or ""
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
    common: dict[str, Any] = {
        "assurance": Assurance.HIGH,
        "scopes": _PUBLISH_SCOPES,
        "client_id": IMPORT_CLIENT,
    }
    if metadata.author_professional_id is not None:
        author = directory.get_professional(session, metadata.author_professional_id)
        return Actor(
            kind=ActorKind.PROFESSIONAL,
            subject=f"Practitioner/{author.id}",
            professional_id=author.id,
            organisation_id=author.organisation_id,
            profession=author.profession.value,
            **common,
        )
    if metadata.author_organisation_id is not None:
        return Actor(
            kind=ActorKind.FEEDING_SYSTEM,
            subject=f"Organization/{metadata.author_organisation_id}",
            organisation_id=metadata.author_organisation_id,
            **common,
        )
    return Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient.id}",
        person_id=patient.id,
        acting_for=patient.id,
        **common,
    )


def _identifier(resource: dict[str, Any], kind: str) -> tuple[str, str]:
    system = _path(resource, "identifier", 0, "system")
    value = _path(resource, "identifier", 0, "value")
    if not system or not value:
        raise InvalidExportFile(f"{kind}/{resource.get('id')} has no identifier.", field=kind)
    return system, value


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


def _reference_id(reference: object, kind: str) -> str | None:
    if not isinstance(reference, dict):
        return None
    value = str(reference.get("reference", ""))
    return value.removeprefix(f"{kind}/") if value.startswith(f"{kind}/") else None


_Code = TypeVar("_Code", OrganisationKind, Profession)


def _enum(kind: type[_Code], value: str, where: str) -> _Code:
    try:
        return kind(value)
    except ValueError as error:
        raise InvalidExportFile(f"{where} {value!r} is not a known code.", field=where) from error


def _extension(resource: dict[str, Any], url: str) -> dict[str, Any]:
    return next((e for e in resource.get("extension", []) if e.get("url") == url), {})


def _required_datetime(value: object, rid: str) -> dt.datetime:
    found = _datetime(value)
    if found is None:
        raise InvalidExportFile(
            f"DocumentReference/{rid} has no content[0].attachment.creation.",
            field="DocumentReference",
        )
    return found


def _datetime(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidExportFile(
            f"{value!r} is not a FHIR instant.", field="DocumentReference"
        ) from error


def _path(data: object, *steps: str | int) -> Any:
    """The value at ``steps`` inside nested JSON, or None where a step is missing."""
    for step in steps:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and len(data) > step else None
        else:
            data = data.get(step) if isinstance(data, dict) else None
    return data
