"""Provide Document Bundles (ITI-65) as an EHR would send them, built for the tests."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

from carnet.patients import identifiers

SUBMISSION_SET_CODES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
SOURCE_ID = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"


def provide_bundle(
    subject: str,
    *,
    contents: list[bytes] | None = None,
    master_identifiers: list[str] | None = None,
    inline: bool = False,
    **document_changes: Any,
) -> dict[str, Any]:
    """A transaction Bundle: a SubmissionSet, DocumentReferences and their Binaries."""
    contents = contents or [b"Hemoglobin 14.2 g/dL"]
    masters = master_identifiers or [f"urn:uuid:{uuid.uuid4()}" for _ in contents]
    set_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": set_url,
            "resource": {
                "resourceType": "List",
                "extension": [{"url": SOURCE_ID, "valueIdentifier": {"value": "urn:oid:1.2.3.4"}}],
                "identifier": [
                    {
                        "use": "usual",
                        "system": "urn:ietf:rfc:3986",
                        "value": f"urn:uuid:{uuid.uuid4()}",
                    }
                ],
                "status": "current",
                "mode": "working",
                "code": {"coding": [{"system": SUBMISSION_SET_CODES, "code": "submissionset"}]},
                "subject": {"reference": subject},
                "date": "2026-05-31T10:00:00Z",
                "entry": [],
            },
            "request": {"method": "POST", "url": "List"},
        }
    ]
    for content, master in zip(contents, masters, strict=True):
        binary_url, reference_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        attachment: dict[str, Any] = {
            "contentType": "text/plain",
            "language": "fr",
            "size": len(content),
            "hash": base64.b64encode(hashlib.sha1(content).digest()).decode(),
            "title": "Bilan sanguin",
            "creation": "2026-05-30T08:00:00Z",
        }
        if inline:
            attachment["data"] = base64.b64encode(content).decode()
        else:
            attachment["url"] = binary_url
        reference = {
            "resourceType": "DocumentReference",
            "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": master},
            "status": "current",
            "type": {
                "coding": [
                    {
                        "system": "http://loinc.org",
                        "code": "11502-2",
                        "display": "Laboratory report",
                    }
                ]
            },
            "subject": {"reference": subject},
            "date": "2026-05-31T10:00:00Z",
            "content": [{"attachment": attachment}],
            **document_changes,
        }
        entries[0]["resource"]["entry"].append({"item": {"reference": reference_url}})
        entries.append(
            {
                "fullUrl": reference_url,
                "resource": reference,
                "request": {"method": "POST", "url": "DocumentReference"},
            }
        )
        if not inline:
            entries.append(
                {
                    "fullUrl": binary_url,
                    "resource": {
                        "resourceType": "Binary",
                        "contentType": "text/plain",
                        "data": base64.b64encode(content).decode(),
                    },
                    "request": {"method": "POST", "url": "Binary"},
                }
            )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def by_identifier(matricule: str) -> str:
    """The subject reference of a patient by Luxembourg matricule."""
    return f"Patient?identifier={identifiers.LU_MATRICULE}|{matricule}"
