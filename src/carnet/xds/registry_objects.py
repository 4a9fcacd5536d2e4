"""Carnet's documents, submission sets, folders and associations as ebRIM 3.0 registry objects.

IHE ITI TF-3 4.2.3 (metadata attributes) and 4.2.5 (their ebRIM identifiers): a document is an
``ExtrinsicObject`` (a DocumentEntry), a submission set or folder a ``RegistryPackage`` marked by
its classification node, a relation an ``Association``; ``ObjectRef`` answers a query asked with
``returnType="ObjectRef"``. The attributes follow the MHD ↔ XDS mapping
(https://profiles.ihe.net/ITI/MHD/32_fhir_maps.html): ``uniqueId`` is the document's
``masterIdentifier``, ``entryUUID`` its identifier (``urn:uuid:<document id>``), the status
``current`` is ``Approved`` and a superseded or withdrawn document ``Deprecated``.

The ids of the classifications, external identifiers and the associations Carnet derives from
its own rows (a submission set's membership, a replacement) are UUIDv5 of what they describe:
the same object answers with the same ids to every query.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy.orm import Session

from carnet.catalogue import CLASS_SYSTEM, UnknownDocumentType, load_catalogue
from carnet.directory import service as directory
from carnet.directory.errors import DirectoryError
from carnet.documents.models import (
    AssociationKind,
    Document,
    DocumentAssociation,
    DocumentStatus,
    Folder,
    SubmissionSet,
)
from carnet.xds import mapping
from carnet.xds import vocabulary as v

# The namespace of the UUIDv5 ids Carnet gives the parts of its registry objects.
_CONFIDENTIALITY = {"N": "normal", "R": "restricted", "V": "very restricted"}
_IDS = uuid.UUID("0f2c4d1e-7d0b-4c3e-9f55-2b8f3a9e6c11")


@dataclass(frozen=True)
class Code:
    """A coded value: ``code`` in the coding scheme ``scheme``, with its display name."""

    code: str
    scheme: str
    display: str | None = None


@dataclass(frozen=True)
class FolderEntry:
    """A folder of a dossier, as the registry shows it (TF-3 4.2.3.4)."""

    id: uuid.UUID
    unique_id: str
    title: str | None
    last_update_time: dt.datetime
    codes: tuple[Code, ...] = ()
    comments: str | None = None
    status: str = v.APPROVED


@dataclass(frozen=True)
class AssociationEntry:
    """An association between two registry objects (TF-3 4.2.2).

    ``submission_set_status`` is the ``SubmissionSetStatus`` slot of a submission set's
    ``HasMember`` to a document: ``Original`` where the document was first submitted.
    """

    id: uuid.UUID
    type: str
    source: uuid.UUID
    target: uuid.UUID
    submission_set_status: str | None = None
    status: str = v.APPROVED


@dataclass
class Directory:
    """Names and identifiers of authors, looked up once per answer (no patient data here)."""

    session: Session
    _authors: dict[uuid.UUID, tuple[str, str | None]] = field(default_factory=dict)
    _institutions: dict[uuid.UUID, str] = field(default_factory=dict)

    def person(self, professional_id: uuid.UUID) -> tuple[str, str | None] | None:
        """The author's XCN and profession, or None if the directory no longer knows them."""
        if professional_id not in self._authors:
            try:
                found = directory.get_professional(self.session, professional_id)
            except DirectoryError:
                return None
            authority = _authority(found.identifier_system)
            xcn = f"{found.identifier_value}^{found.family}^{found.given}^^^^^^{authority}"
            self._authors[professional_id] = (xcn, found.profession.value)
        return self._authors[professional_id]

    def institution(self, organisation_id: uuid.UUID) -> str | None:
        """The organisation as an XON, or None if the directory no longer knows it."""
        if organisation_id not in self._institutions:
            try:
                found = directory.get_organisation(self.session, organisation_id)
            except DirectoryError:
                return None
            authority = _authority(found.identifier_system)
            self._institutions[organisation_id] = (
                f"{found.name}^^^^^{authority}^^^^{found.identifier_value}"
            )
        return self._institutions[organisation_id]


entry_uuid = mapping.entry_uuid
dtm = mapping.format_time


def document_status(status: DocumentStatus) -> str:
    """The ebRIM status of a document: only a current document is Approved."""
    return v.APPROVED if status is DocumentStatus.CURRENT else v.DEPRECATED


def membership(submission_set_id: uuid.UUID, document_id: uuid.UUID) -> AssociationEntry:
    """The ``HasMember`` that says a submission set brought a document."""
    return AssociationEntry(
        id=_derived("has-member", submission_set_id, document_id),
        type=v.HAS_MEMBER,
        source=submission_set_id,
        target=document_id,
        submission_set_status="Original",
    )


def replacement(document: Document) -> AssociationEntry | None:
    """The ``RPLC`` from a document to the one it replaced, if it replaced one."""
    if document.replaces_id is None:
        return None
    return AssociationEntry(
        id=_derived("rplc", document.id, document.replaces_id),
        type=v.RPLC,
        source=document.id,
        target=document.replaces_id,
    )


def stored_association(row: DocumentAssociation) -> AssociationEntry:
    """An association as a submission recorded it, with its own entryUUID."""
    kind = (
        v.HAS_MEMBER
        if row.kind is AssociationKind.HAS_MEMBER
        else f"urn:ihe:iti:2007:AssociationType:{row.kind.value}"
    )
    return AssociationEntry(
        id=row.id,
        type=kind,
        source=row.source_id,
        target=row.target_id,
        submission_set_status=row.submission_set_status,
    )


def folder_entry(folder: Folder) -> FolderEntry:
    """A stored folder as the registry shows it (always Approved: Carnet deprecates none)."""
    return FolderEntry(
        id=folder.id,
        unique_id=folder.unique_id,
        title=folder.title,
        last_update_time=folder.updated_at,
        codes=tuple(
            Code(str(code.get("code", "")), str(code.get("scheme", "")), code.get("display"))
            for code in folder.codes
        ),
        comments=folder.comments,
    )


def object_ref(object_id: uuid.UUID) -> etree._Element:
    """``rim:ObjectRef`` naming one registry object (returnType ObjectRef)."""
    ref = etree.Element(v.rim("ObjectRef"), nsmap={"rim": v.RIM})
    ref.set("id", entry_uuid(object_id))
    ref.set("home", v.HOME_COMMUNITY_ID)
    return ref


def document_entry(document: Document, patient_cx: str, names: Directory) -> etree._Element:
    """The DocumentEntry of ``document`` (an ``ExtrinsicObject``) for a LeafClass answer."""
    object_id = entry_uuid(document.id)
    entry = _registry_object("ExtrinsicObject", document.id, document_status(document.status))
    entry.set("objectType", v.STABLE_DOCUMENT)
    entry.set("mimeType", document.mime_type)
    entry.set("home", v.HOME_COMMUNITY_ID)
    _slot(entry, "creationTime", [dtm(document.created_at)])
    if document.language:
        _slot(entry, "languageCode", [document.language])
    _slot(entry, "repositoryUniqueId", [v.REPOSITORY_UNIQUE_ID])
    if document.service_start:
        _slot(entry, "serviceStartTime", [dtm(document.service_start)])
    if document.service_end:
        _slot(entry, "serviceStopTime", [dtm(document.service_end)])
    _slot(entry, "size", [str(document.size)])
    _slot(entry, "sourcePatientId", [patient_cx])
    _name(entry, document.title)
    _version(entry)
    _author(entry, object_id, document, names)
    classifications: list[tuple[str, Code]] = [
        (v.DOCUMENT_CLASS_CODE, Code(document.class_code, CLASS_SYSTEM)),
        *((v.DOCUMENT_CONFIDENTIALITY_CODE, code) for code in confidentiality_codes(document)),
    ]
    if document.format_code:
        classifications.append(
            (v.DOCUMENT_FORMAT_CODE, Code(document.format_code, v.CARNET_FORMAT_SCHEME))
        )
    if document.facility_type:
        classifications.append(
            (v.DOCUMENT_FACILITY_TYPE, Code(document.facility_type, v.CARNET_FACILITY_SCHEME))
        )
    if document.practice_setting:
        classifications.append(
            (
                v.DOCUMENT_PRACTICE_SETTING,
                Code(document.practice_setting, v.CARNET_PRACTICE_SETTING_SCHEME),
            )
        )
    classifications.append((v.DOCUMENT_TYPE_CODE, type_code(document)))
    for scheme, code in classifications:
        _classification(entry, object_id, scheme, code)
    _external_identifier(
        entry, object_id, v.DOCUMENT_PATIENT_ID, patient_cx, "XDSDocumentEntry.patientId"
    )
    _external_identifier(
        entry,
        object_id,
        v.DOCUMENT_UNIQUE_ID,
        mapping.unique_id(document.master_identifier),
        "XDSDocumentEntry.uniqueId",
    )
    return entry


def submission_set_package(
    submission: SubmissionSet, patient_cx: str, names: Directory
) -> etree._Element:
    """The SubmissionSet of ``submission`` (a ``RegistryPackage``) for a LeafClass answer."""
    object_id = entry_uuid(submission.id)
    package = _registry_object("RegistryPackage", submission.id, v.APPROVED)
    package.set("objectType", v.REGISTRY_PACKAGE)
    _slot(package, "submissionTime", [dtm(submission.submitted_at)])
    if submission.title:
        _name(package, submission.title)
    _version(package)
    slots = _author_slots(
        submission.author_professional_id, submission.author_organisation_id, names
    )
    if slots:
        _classification(package, object_id, v.SUBMISSION_SET_AUTHOR, None, slots=slots)
    _marker(package, object_id, v.SUBMISSION_SET_CLASSIFICATION)
    _external_identifier(
        package, object_id, v.SUBMISSION_SET_PATIENT_ID, patient_cx, "XDSSubmissionSet.patientId"
    )
    _external_identifier(
        package,
        object_id,
        v.SUBMISSION_SET_SOURCE_ID,
        submission.source_id,
        "XDSSubmissionSet.sourceId",
    )
    _external_identifier(
        package,
        object_id,
        v.SUBMISSION_SET_UNIQUE_ID,
        mapping.unique_id(submission.master_identifier),
        "XDSSubmissionSet.uniqueId",
    )
    return package


def folder_package(folder: FolderEntry, patient_cx: str) -> etree._Element:
    """The Folder ``folder`` (a ``RegistryPackage``) for a LeafClass answer."""
    object_id = entry_uuid(folder.id)
    package = _registry_object("RegistryPackage", folder.id, folder.status)
    package.set("objectType", v.REGISTRY_PACKAGE)
    _slot(package, "lastUpdateTime", [dtm(folder.last_update_time)])
    if folder.title:
        _name(package, folder.title)
    if folder.comments:
        description = etree.SubElement(package, v.rim("Description"))
        etree.SubElement(description, v.rim("LocalizedString")).set("value", folder.comments)
    _version(package)
    for code in folder.codes:
        _classification(package, object_id, v.FOLDER_CODE_LIST, code)
    _marker(package, object_id, v.FOLDER_CLASSIFICATION)
    _external_identifier(package, object_id, v.FOLDER_PATIENT_ID, patient_cx, "XDSFolder.patientId")
    _external_identifier(
        package, object_id, v.FOLDER_UNIQUE_ID, folder.unique_id, "XDSFolder.uniqueId"
    )
    return package


def association(entry: AssociationEntry) -> etree._Element:
    """An ``Association`` for a LeafClass answer."""
    element = _registry_object("Association", entry.id, entry.status)
    element.set("objectType", v.ASSOCIATION_OBJECT)
    element.set("associationType", entry.type)
    element.set("sourceObject", entry_uuid(entry.source))
    element.set("targetObject", entry_uuid(entry.target))
    if entry.submission_set_status:
        _slot(element, "SubmissionSetStatus", [entry.submission_set_status])
    return element


def confidentiality_codes(document: Document) -> list[Code]:
    """The HL7 confidentiality of ``document``, and the French DMP's masks where they apply."""
    codes = [
        Code(
            document.confidentiality.value,
            v.CONFIDENTIALITY_SCHEME,
            _CONFIDENTIALITY[document.confidentiality.value],
        )
    ]
    if document.masked_from_professionals:
        codes.append(Code(v.MASKED_FROM_PROFESSIONALS, v.DMP_CONFIDENTIALITY_SCHEME))
    if document.hidden_from_patient:
        codes.append(Code(v.HIDDEN_FROM_PATIENT, v.DMP_CONFIDENTIALITY_SCHEME))
    return codes


def type_code(document: Document) -> Code:
    """The document's type code; LOINC is named by its OID, as XDS affinity domains do."""
    try:
        display: str | None = (
            load_catalogue().by_code(document.type_system, document.type_code).display
        )
    except UnknownDocumentType:
        display = None
    return Code(document.type_code, mapping.coding_scheme(document.type_system), display)


def _registry_object(tag: str, object_id: uuid.UUID, status: str) -> etree._Element:
    element = etree.Element(v.rim(tag), nsmap={"rim": v.RIM})
    element.set("id", entry_uuid(object_id))
    element.set("lid", entry_uuid(object_id))
    element.set("status", status)
    return element


def _slot(parent: etree._Element, name: str, values: Iterable[str]) -> None:
    slot = etree.SubElement(parent, v.rim("Slot"))
    slot.set("name", name)
    listing = etree.SubElement(slot, v.rim("ValueList"))
    for value in values:
        etree.SubElement(listing, v.rim("Value")).text = value


def _name(parent: etree._Element, text: str) -> None:
    name = etree.SubElement(parent, v.rim("Name"))
    etree.SubElement(name, v.rim("LocalizedString")).set("value", text)


def _version(parent: etree._Element) -> None:
    # Carnet changes a document's metadata in place (ITI-57 is applied to the one version):
    # every object is at its first version.
    etree.SubElement(parent, v.rim("VersionInfo")).set("versionName", "1")


def _author(parent: etree._Element, object_id: str, document: Document, names: Directory) -> None:
    slots = _author_slots(document.author_professional_id, document.author_organisation_id, names)
    if document.authored_by_patient:
        slots.append(("authorRole", ["patient"]))
    if slots:
        _classification(parent, object_id, v.DOCUMENT_AUTHOR, None, slots=slots)


def _author_slots(
    professional_id: uuid.UUID | None, organisation_id: uuid.UUID | None, names: Directory
) -> list[tuple[str, list[str]]]:
    slots: list[tuple[str, list[str]]] = []
    person = names.person(professional_id) if professional_id else None
    if person is not None:
        slots.append(("authorPerson", [person[0]]))
    institution = names.institution(organisation_id) if organisation_id else None
    if institution is not None:
        slots.append(("authorInstitution", [institution]))
    if person is not None and person[1]:
        slots.append(("authorRole", [person[1]]))
    return slots


def _classification(
    parent: etree._Element,
    object_id: str,
    scheme: str,
    code: Code | None,
    *,
    slots: Sequence[tuple[str, Sequence[str]]] = (),
) -> None:
    element = etree.SubElement(parent, v.rim("Classification"))
    identity = f"{scheme}|{code.scheme}|{code.code}" if code else scheme
    element.set("id", entry_uuid(_derived("classification", object_id, identity)))
    element.set("objectType", v.CLASSIFICATION_OBJECT)
    element.set("classificationScheme", scheme)
    element.set("classifiedObject", object_id)
    # An author classification has no code: its node representation is empty (TF-3 4.2.3.1.4).
    element.set("nodeRepresentation", code.code if code else "")
    for name, values in slots:
        _slot(element, name, values)
    if code is not None:
        _slot(element, "codingScheme", [code.scheme])
        _name(element, code.display or code.code)


def _marker(parent: etree._Element, object_id: str, node: str) -> None:
    # A RegistryPackage is a submission set or a folder by this classification (TF-3 4.2.5.1).
    element = etree.SubElement(parent, v.rim("Classification"))
    element.set("id", entry_uuid(_derived("marker", object_id, node)))
    element.set("objectType", v.CLASSIFICATION_OBJECT)
    element.set("classifiedObject", object_id)
    element.set("classificationNode", node)


def _external_identifier(
    parent: etree._Element, object_id: str, scheme: str, value: str, name: str
) -> None:
    element = etree.SubElement(parent, v.rim("ExternalIdentifier"))
    element.set("id", entry_uuid(_derived("identifier", object_id, scheme)))
    element.set("objectType", v.EXTERNAL_IDENTIFIER_OBJECT)
    element.set("identificationScheme", scheme)
    element.set("registryObject", object_id)
    element.set("value", value)
    _name(element, name)


def _authority(system: str) -> str:
    # The assigning authority of an XCN or XON: ``&OID&ISO`` where the system has an OID.
    scheme = mapping.coding_scheme(system)
    return f"&{scheme}&ISO" if mapping.is_oid(scheme) else ""


def _derived(kind: str, *parts: object) -> uuid.UUID:
    return uuid.uuid5(_IDS, ":".join([kind, *map(str, parts)]))
