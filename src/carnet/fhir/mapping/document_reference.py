"""A document as a FHIR R4 ``DocumentReference`` shaped after the IHE MHD profiles.

http://hl7.org/fhir/R4/documentreference.html and
https://profiles.ihe.net/ITI/MHD/StructureDefinition-IHE.MHD.Minimal.DocumentReference.html
"""

from __future__ import annotations

from typing import Any

from carnet.catalogue import CLASS_SYSTEM, UnknownDocumentType, load_catalogue
from carnet.documents.models import Document
from carnet.fhir.ids import document_resource_id

CONFIDENTIALITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_CONFIDENTIALITY_DISPLAY = {"N": "normal", "R": "restricted", "V": "very restricted"}


def document_reference(document: Document, *, base_url: str) -> dict[str, Any]:
    """The DocumentReference of ``document``; its content is served at ``Binary/<id>``."""
    resource_id = document_resource_id(document.patient_id, document.id)
    try:
        document_type = load_catalogue().by_code(document.type_system, document.type_code)
        type_display: str | None = document_type.display
    except UnknownDocumentType:
        type_display = None
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": resource_id,
        "meta": {"versionId": version_id(document), "lastUpdated": _instant(document.updated_at)},
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": document.master_identifier},
        # The XDS entryUUID (MHD's XDS mapping: DocumentReference.identifier, use "official"):
        # the document's id, so ITI-18/ITI-57 callers and MHD callers name the same entry.
        "identifier": [
            {"use": "official", "system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{document.id}"}
        ],
        "status": document.status.value,
        "type": {"coding": [_coding(document.type_system, document.type_code, type_display)]},
        "category": [{"coding": [{"system": CLASS_SYSTEM, "code": document.class_code}]}],
        "subject": {"reference": f"Patient/{document.patient_id}"},
        "date": _instant(document.submitted_at),
        "securityLabel": [
            {
                "coding": [
                    {
                        "system": CONFIDENTIALITY_SYSTEM,
                        "code": document.confidentiality.value,
                        "display": _CONFIDENTIALITY_DISPLAY[document.confidentiality.value],
                    }
                ]
            }
        ],
        "content": [
            {
                "attachment": {
                    "contentType": document.mime_type,
                    "url": f"{base_url}/Binary/{resource_id}",
                    "size": document.size,
                    "title": document.title,
                    "creation": _instant(document.created_at),
                    **({"language": document.language} if document.language else {}),
                },
                **(
                    {"format": {"system": "urn:carnet:format", "code": document.format_code}}
                    if document.format_code
                    else {}
                ),
            }
        ],
    }
    authors = []
    if document.author_professional_id:
        authors.append({"reference": f"Practitioner/{document.author_professional_id}"})
    if document.author_organisation_id:
        authors.append({"reference": f"Organization/{document.author_organisation_id}"})
    if document.authored_by_patient:
        authors.append({"reference": f"Patient/{document.patient_id}"})
    if authors:
        resource["author"] = authors
    if document.custodian_organisation_id:
        resource["custodian"] = {"reference": f"Organization/{document.custodian_organisation_id}"}
    if document.replaces_id:
        resource["relatesTo"] = [
            {
                "code": "replaces",
                "target": {
                    "reference": "DocumentReference/"
                    + document_resource_id(document.patient_id, document.replaces_id)
                },
            }
        ]
    context = _context(document)
    if context:
        resource["context"] = context
    return resource


def version_id(document: Document) -> str:
    """The version of a document's metadata: it changes when its status or visibility does."""
    return str(int(document.updated_at.timestamp() * 1_000_000))


def _context(document: Document) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if document.service_start or document.service_end:
        period = {}
        if document.service_start:
            period["start"] = _instant(document.service_start)
        if document.service_end:
            period["end"] = _instant(document.service_end)
        context["period"] = period
    if document.facility_type:
        context["facilityType"] = {"coding": [{"code": document.facility_type}]}
    if document.practice_setting:
        context["practiceSetting"] = {"coding": [{"code": document.practice_setting}]}
    return context


def _coding(system: str, code: str, display: str | None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _instant(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))
