"""ebRIM 3.0 ``SubmitObjectsRequest`` read into XDS metadata, and that into Carnet's.

IHE ITI TF-3 4.2 (metadata) and 4.2.3 (the ebRIM representation): a submission is a
``RegistryObjectList`` of ``ExtrinsicObject``s (DocumentEntries), ``RegistryPackage``s (one
SubmissionSet, any Folders: told apart by their ``Classification`` node), ``Association``s
(``HasMember``, ``RPLC``, ``APND``, ``XFRM``, ``XFRM_RPLC``, ``signs``) and ``Classification``s,
with slots and external identifiers carrying the attributes. ``document_metadata`` builds the very
``DocumentMetadata`` the ITI-65 path builds, so both ways in store the same thing.

Every fault is an ``XdsRefusal`` naming the IHE code and the offending object's id.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from carnet.catalogue import CLASS_SYSTEM
from carnet.documents.metadata import DocumentMetadata, SubmissionSetMetadata
from carnet.documents.models import Confidentiality
from carnet.xds import mapping
from carnet.xds.errors import (
    LCM,
    PATIENT_ID_DOES_NOT_MATCH,
    REGISTRY_METADATA_ERROR,
    RIM,
    XdsRefusal,
)

# ITI TF-3 4.2.5 (the metadata's UUIDs): classification schemes, external identifiers, nodes.
DOCUMENT_ENTRY_STABLE = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
DOCUMENT_ENTRY_ON_DEMAND = "urn:uuid:34268e47-fdf5-41a6-ba33-82133c465248"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
FOLDER_NODE = "urn:uuid:d9d542f3-6cc4-48b6-8870-ea235fbc94c2"
CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
CONFIDENTIALITY_CODE = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
EVENT_CODE = "urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4"
FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
FACILITY_TYPE_CODE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
PRACTICE_SETTING_CODE = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DOCUMENT_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DOCUMENT_LIMITED = "urn:uuid:ab9b591b-83ab-4d03-8f5d-f93b1fb92e85"
DOCUMENT_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DOCUMENT_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SUBMISSION_SET_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
CONTENT_TYPE_CODE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SUBMISSION_SET_LIMITED = "urn:uuid:5003a9db-8d8d-49e6-bf0c-990e34ac7707"
SUBMISSION_SET_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SUBMISSION_SET_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SUBMISSION_SET_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
FOLDER_CODE_LIST = "urn:uuid:1ba97051-7806-41a8-a48b-8fce7af683c5"
FOLDER_PATIENT_ID = "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a"
FOLDER_UNIQUE_ID = "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
_IHE_ASSOCIATION = "urn:ihe:iti:2007:AssociationType:"
# The association kinds Carnet records, by their short name (the stored one).
ASSOCIATION_TYPES = {
    HAS_MEMBER: "HasMember",
    **{
        f"{_IHE_ASSOCIATION}{kind}": kind for kind in ("RPLC", "APND", "XFRM", "XFRM_RPLC", "signs")
    },
}
_CONFIDENTIALITY_SCHEME = "2.16.840.1.113883.5.25"


@dataclass(frozen=True)
class Code:
    """A coded value: ``nodeRepresentation`` in ``codingScheme``, with its display name."""

    code: str
    scheme: str
    display: str | None = None


@dataclass
class DocumentEntry:
    """An XDS DocumentEntry as submitted (ITI TF-3 table 4.3.1-3)."""

    entry_id: str
    mime_type: str
    title: str | None
    unique_id: str | None
    patient_id: str | None
    slots: dict[str, list[str]]
    codes: dict[str, list[Code]]
    limited: bool = False

    def slot(self, name: str) -> str | None:
        """The first value of a slot, or None."""
        values = self.slots.get(name)
        return values[0] if values else None


@dataclass
class SubmissionSetEntry:
    """The submission's SubmissionSet."""

    entry_id: str
    unique_id: str | None
    source_id: str | None
    patient_id: str | None
    title: str | None
    submission_time: str | None
    codes: dict[str, list[Code]]


@dataclass
class FolderEntry:
    """An XDS Folder as submitted: its title, its codes, its patient."""

    entry_id: str
    unique_id: str | None
    patient_id: str | None
    title: str | None
    comments: str | None
    codes: list[Code]


@dataclass
class AssociationEntry:
    """An association between two objects (of the submission or of the registry)."""

    entry_id: str
    kind: str
    source: str
    target: str
    submission_set_status: str | None = None


@dataclass
class Submission:
    """What a SubmitObjectsRequest holds."""

    submission_set: SubmissionSetEntry
    documents: list[DocumentEntry] = field(default_factory=list)
    folders: list[FolderEntry] = field(default_factory=list)
    associations: list[AssociationEntry] = field(default_factory=list)


def read_submission(request: etree._Element) -> Submission:
    """Read an ``lcm:SubmitObjectsRequest`` (checking each object's required metadata)."""
    if request.tag != f"{{{LCM}}}SubmitObjectsRequest":
        raise XdsRefusal(REGISTRY_METADATA_ERROR, "The request holds no lcm:SubmitObjectsRequest.")
    objects = request.find(f"{{{RIM}}}RegistryObjectList")
    if objects is None:
        raise XdsRefusal(REGISTRY_METADATA_ERROR, "The request holds no rim:RegistryObjectList.")
    loose_nodes = _loose_nodes(objects)
    submission_sets: list[SubmissionSetEntry] = []
    documents: list[DocumentEntry] = []
    folders: list[FolderEntry] = []
    associations: list[AssociationEntry] = []
    seen: set[str] = set()
    for element in objects:
        if not isinstance(element.tag, str):
            continue  # a comment or processing instruction
        local = etree.QName(element).localname
        entry_id = _object_id(element, local, len(associations))
        if local in ("ExtrinsicObject", "RegistryPackage", "Association"):
            _check_id(local, entry_id, seen)
        if local == "ExtrinsicObject":
            documents.append(_document_entry(element, entry_id))
        elif local == "RegistryPackage":
            package = _package(element, entry_id, loose_nodes.get(entry_id, set()))
            if isinstance(package, SubmissionSetEntry):
                submission_sets.append(package)
            else:
                folders.append(package)
        elif local == "Association":
            associations.append(_association(element, entry_id))
    if len(submission_sets) != 1:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR,
            f"A submission holds exactly one SubmissionSet; this one holds {len(submission_sets)}.",
        )
    submission = Submission(submission_sets[0], documents, folders, associations)
    _check_patients(submission)
    return submission


def _loose_nodes(objects: etree._Element) -> dict[str, set[str]]:
    """Classification nodes beside the object they classify (the SubmissionSet's, usually)."""
    found: dict[str, set[str]] = {}
    for classification in objects.iterfind(f"{{{RIM}}}Classification"):
        node = classification.get("classificationNode")
        if node:
            found.setdefault(classification.get("classifiedObject", ""), set()).add(node)
    return found


def _object_id(element: etree._Element, local: str, associations: int) -> str:
    entry_id = (element.get("id") or "").strip()
    if local == "Association" and not entry_id:
        # Nothing refers to an association by its id within a submission: one sent without
        # an id gets a symbolic one, which the registry replaces as any other.
        return f"association-{associations + 1}"
    return entry_id


def _check_id(kind: str, entry_id: str, seen: set[str]) -> None:
    if not entry_id:
        raise XdsRefusal(REGISTRY_METADATA_ERROR, f"A rim:{kind} has no id.")
    if entry_id in seen:
        raise XdsRefusal(REGISTRY_METADATA_ERROR, f"The id {entry_id} is used twice.", entry_id)
    seen.add(entry_id)


def _package(
    element: etree._Element, entry_id: str, loose_nodes: set[str]
) -> SubmissionSetEntry | FolderEntry:
    """A RegistryPackage: a SubmissionSet or a Folder, told apart by its classification node."""
    nodes = loose_nodes | {
        c.get("classificationNode", "") for c in element.iterfind(f"{{{RIM}}}Classification")
    }
    if SUBMISSION_SET_NODE in nodes:
        return _submission_set(element, entry_id)
    if FOLDER_NODE in nodes:
        return _folder(element, entry_id)
    raise XdsRefusal(
        REGISTRY_METADATA_ERROR,
        "A RegistryPackage is classified neither as a SubmissionSet nor a Folder.",
        entry_id,
    )


def _document_entry(element: etree._Element, entry_id: str) -> DocumentEntry:
    slots = _slots(element)
    codes = _classifications(element)
    identifiers = _external_identifiers(element)
    limited = DOCUMENT_LIMITED in {
        c.get("classificationNode") for c in element.iterfind(f"{{{RIM}}}Classification")
    }
    entry = DocumentEntry(
        entry_id=entry_id,
        mime_type=(element.get("mimeType") or "").strip(),
        title=_localized(element, "Name"),
        unique_id=identifiers.get(DOCUMENT_UNIQUE_ID),
        patient_id=identifiers.get(DOCUMENT_PATIENT_ID),
        slots=slots,
        codes=codes,
        limited=limited,
    )
    object_type = element.get("objectType")
    if object_type not in (DOCUMENT_ENTRY_STABLE, None):
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR,
            f"Only stable DocumentEntries are accepted, not objectType {object_type}.",
            entry_id,
        )
    if limited:
        # Limited metadata is for XDR and XDM (ITI TF-3 4.1.1): a national record files every
        # document in a dossier and needs the full metadata.
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR,
            "Limited metadata is not accepted by an XDS registry: send the full metadata.",
            entry_id,
        )
    required = {
        "patientId": entry.patient_id,
        "uniqueId": entry.unique_id,
        "mimeType": entry.mime_type,
        "creationTime": entry.slot("creationTime"),
        "languageCode": entry.slot("languageCode"),
        "sourcePatientId": entry.slot("sourcePatientId"),
        "classCode": codes.get(CLASS_CODE),
        "typeCode": codes.get(TYPE_CODE),
        "formatCode": codes.get(FORMAT_CODE),
        "confidentialityCode": codes.get(CONFIDENTIALITY_CODE),
        "healthcareFacilityTypeCode": codes.get(FACILITY_TYPE_CODE),
        "practiceSettingCode": codes.get(PRACTICE_SETTING_CODE),
    }
    _require(required, f"DocumentEntry {entry_id}", entry_id)
    return entry


def _submission_set(element: etree._Element, entry_id: str) -> SubmissionSetEntry:
    identifiers = _external_identifiers(element)
    codes = _classifications(element)
    entry = SubmissionSetEntry(
        entry_id=entry_id,
        unique_id=identifiers.get(SUBMISSION_SET_UNIQUE_ID),
        source_id=identifiers.get(SUBMISSION_SET_SOURCE_ID),
        patient_id=identifiers.get(SUBMISSION_SET_PATIENT_ID),
        title=_localized(element, "Name"),
        submission_time=next(iter(_slots(element).get("submissionTime", [])), None),
        codes=codes,
    )
    _require(
        {
            "patientId": entry.patient_id,
            "uniqueId": entry.unique_id,
            "sourceId": entry.source_id,
            "submissionTime": entry.submission_time,
            "contentTypeCode": codes.get(CONTENT_TYPE_CODE),
        },
        f"SubmissionSet {entry_id}",
        entry_id,
    )
    return entry


def _folder(element: etree._Element, entry_id: str) -> FolderEntry:
    identifiers = _external_identifiers(element)
    codes = _classifications(element).get(FOLDER_CODE_LIST, [])
    entry = FolderEntry(
        entry_id=entry_id,
        unique_id=identifiers.get(FOLDER_UNIQUE_ID),
        patient_id=identifiers.get(FOLDER_PATIENT_ID),
        title=_localized(element, "Name"),
        comments=_localized(element, "Description"),
        codes=codes,
    )
    _require(
        {"patientId": entry.patient_id, "uniqueId": entry.unique_id, "codeList": codes},
        f"Folder {entry_id}",
        entry_id,
    )
    return entry


def _association(element: etree._Element, entry_id: str) -> AssociationEntry:
    kind = ASSOCIATION_TYPES.get((element.get("associationType") or "").strip())
    if kind is None:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR,
            f"Association type {element.get('associationType')!r} is not one XDS defines.",
            entry_id,
        )
    source, target = element.get("sourceObject"), element.get("targetObject")
    if not source or not target:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR, "An association needs a source and a target.", entry_id
        )
    status = next(iter(_slots(element).get("SubmissionSetStatus", [])), None)
    return AssociationEntry(entry_id, kind, source.strip(), target.strip(), status)


def _check_patients(submission: Submission) -> None:
    """ITI TF-3 4.2.2.2.3: every object of a submission is about the SubmissionSet's patient."""
    expected = submission.submission_set.patient_id
    others: list[tuple[str, str | None]] = [
        (d.entry_id, d.patient_id) for d in submission.documents
    ]
    others += [(f.entry_id, f.patient_id) for f in submission.folders]
    for entry_id, patient_id in others:
        if (patient_id or "").strip() != (expected or "").strip():
            raise XdsRefusal(
                PATIENT_ID_DOES_NOT_MATCH,
                f"The patientId of {entry_id} ({patient_id}) is not the SubmissionSet's "
                f"({expected}).",
                entry_id,
            )


def document_metadata(entry: DocumentEntry, *, replaces_id: uuid.UUID | None) -> DocumentMetadata:
    """The ``DocumentMetadata`` of a DocumentEntry, as ITI-65 builds it from a DocumentReference.

    ``replaces_id`` is the RPLC (or XFRM_RPLC) target, which the caller resolved.
    """
    type_code = entry.codes[TYPE_CODE][0]
    created = _time(entry.slot("creationTime"), "creationTime", entry.entry_id)
    return DocumentMetadata(
        type_system=mapping.code_system(type_code.scheme),
        type_code=type_code.code,
        title=entry.title or type_code.display or "Document",
        mime_type=entry.mime_type,
        created_at=created,
        master_identifier=mapping.master_identifier(entry.unique_id or ""),
        class_code=_class_code(entry),
        format_code=entry.codes[FORMAT_CODE][0].code,
        language=entry.slot("languageCode"),
        service_start=_optional_time(entry.slot("serviceStartTime"), "serviceStartTime", entry),
        service_end=_optional_time(entry.slot("serviceStopTime"), "serviceStopTime", entry),
        facility_type=entry.codes[FACILITY_TYPE_CODE][0].code,
        practice_setting=entry.codes[PRACTICE_SETTING_CODE][0].code,
        confidentiality=_confidentiality(entry),
        expected_size=_size(entry),
        entry_id=mapping.parse_entry_uuid(entry.entry_id),
        replaces_id=replaces_id,
    )


def submission_set_metadata(entry: SubmissionSetEntry) -> SubmissionSetMetadata:
    """The ``SubmissionSetMetadata`` of the SubmissionSet."""
    return SubmissionSetMetadata(
        source_id=mapping.master_identifier(entry.source_id or ""),
        master_identifier=mapping.master_identifier(entry.unique_id or ""),
        title=entry.title,
        entry_id=mapping.parse_entry_uuid(entry.entry_id),
    )


def declared_sha1(entry: DocumentEntry) -> str | None:
    """The ``hash`` slot (hex SHA-1, ITI TF-3 4.2.3.2.10), lower-cased, if given."""
    value = entry.slot("hash")
    return value.strip().lower() if value else None


def _class_code(entry: DocumentEntry) -> str | None:
    # As on the FHIR path, only a class coded in Carnet's own class system is checked against
    # the type; another scheme's class (the sender's affinity domain's) is derived from the type.
    code = entry.codes[CLASS_CODE][0]
    return code.code if mapping.code_system(code.scheme) == CLASS_SYSTEM else None


def _confidentiality(entry: DocumentEntry) -> Confidentiality:
    for code in entry.codes[CONFIDENTIALITY_CODE]:
        if code.scheme == _CONFIDENTIALITY_SCHEME:
            try:
                return Confidentiality(code.code)
            except ValueError:
                raise XdsRefusal(
                    REGISTRY_METADATA_ERROR,
                    f"confidentialityCode {code.code!r} is not N, R or V.",
                    entry.entry_id,
                ) from None
    return Confidentiality.NORMAL


def _size(entry: DocumentEntry) -> int | None:
    value = entry.slot("size")
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR, f"size {value!r} is not an integer.", entry.entry_id
        ) from None


def _time(value: str | None, name: str, entry_id: str) -> dt.datetime:
    parsed = mapping.parse_time(value or "")
    if parsed is None:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR,
            f"{name} {value!r} is not an XDS time (YYYY[MM[DD[hh[mm[ss]]]]]).",
            entry_id,
        )
    return parsed


def _optional_time(value: str | None, name: str, entry: DocumentEntry) -> dt.datetime | None:
    return None if value is None else _time(value, name, entry.entry_id)


def _require(values: Mapping[str, object], what: str, entry_id: str) -> None:
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR, f"{what} lacks {', '.join(missing)} (required).", entry_id
        )


def _slots(element: etree._Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for slot in element.iterfind(f"{{{RIM}}}Slot"):
        values = [
            (v.text or "").strip() for v in slot.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")
        ]
        found.setdefault(slot.get("name", ""), []).extend(v for v in values if v)
    return found


def _classifications(element: etree._Element) -> dict[str, list[Code]]:
    found: dict[str, list[Code]] = {}
    for classification in element.iterfind(f"{{{RIM}}}Classification"):
        scheme = classification.get("classificationScheme")
        if not scheme:
            continue
        schemes = _slots(classification).get("codingScheme") or [""]
        node = (classification.get("nodeRepresentation") or "").strip()
        if scheme in (DOCUMENT_AUTHOR, SUBMISSION_SET_AUTHOR):
            node = node or "author"
        found.setdefault(scheme, []).append(
            Code(node, schemes[0], _localized(classification, "Name"))
        )
    return found


def _external_identifiers(element: etree._Element) -> dict[str, str]:
    return {
        identifier.get("identificationScheme", ""): (identifier.get("value") or "").strip()
        for identifier in element.iterfind(f"{{{RIM}}}ExternalIdentifier")
    }


def _localized(element: etree._Element, name: str) -> str | None:
    found = element.find(f"{{{RIM}}}{name}/{{{RIM}}}LocalizedString")
    value = found.get("value") if found is not None else None
    return value.strip() if value and value.strip() else None
