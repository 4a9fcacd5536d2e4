"""FHIR documents for the clinical tests, made from the shared datasets, and their publication.

The Synthea bundles are transaction Bundles (a patient's whole record): a test turns one into
the FHIR document Bundle an EHR would publish (a Composition first, then the entries, no
``request``), and publishes it through ITI-65 as ``application/fhir+json``.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.access.rules import grant_access
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from conftest import DATASETS
from factories.actors import patient_actor, professional_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient

SYNTHEA = DATASETS / "synthea-fhir-r4"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
KINDS = (
    "Observation",
    "Immunization",
    "AllergyIntolerance",
    "Condition",
    "MedicationStatement",
    "MedicationRequest",
)


def synthea_files() -> list[Path]:
    """The 30 patient bundles (not the shared organisations and practitioners)."""
    return sorted(p for p in SYNTHEA.glob("*.json") if "Information" not in p.name)


def synthea_document(path: Path) -> dict[str, Any]:
    """The patient bundle at ``path`` as a FHIR document Bundle (type document)."""
    source = json.loads(path.read_text(encoding="utf-8"))
    entries = [
        {"fullUrl": entry["fullUrl"], "resource": entry["resource"]} for entry in source["entry"]
    ]
    patient = next(e for e in entries if e["resource"]["resourceType"] == "Patient")
    composition = {
        "resourceType": "Composition",
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
        "subject": {"reference": patient["fullUrl"]},
        "date": "2026-05-30T08:00:00Z",
        "author": [{"display": "Synthea"}],
        "title": "Patient record",
    }
    return {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "type": "document",
        "timestamp": "2026-05-30T08:00:00Z",
        "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": composition}, *entries],
    }


def kinds_in(document: dict[str, Any]) -> collections.Counter[str]:
    """How many entries of each kind of fact a FHIR document holds."""
    return collections.Counter(
        e["resource"]["resourceType"]
        for e in document["entry"]
        if e["resource"]["resourceType"] in KINDS
    )


def document_bundle(subject: str, document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An ITI-65 Provide Document Bundle carrying ``document`` as application/fhir+json."""
    content = json.dumps(document).encode()
    bundle = provide_bundle(
        subject,
        contents=[content],
        type={"coding": [{"system": "http://loinc.org", "code": "60591-5"}]},
        **changes,
    )
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Binary":
            resource["contentType"] = "application/fhir+json"
        if resource["resourceType"] == "DocumentReference":
            attachment = resource["content"][0]["attachment"]
            attachment["contentType"] = "application/fhir+json"
            attachment["hash"] = base64.b64encode(hashlib.sha1(content).digest()).decode()
    return bundle


PATIENT = "urn:uuid:2b90dd2b-2dab-4c75-9bb9-a355e07401e8"


def ips_facts() -> dict[str, Any]:
    """A FHIR document with the facts of the IPS example ``IPS-examples-Bundle-01``
    (shared datasets, hl7-fhir-ips/fsh/IPS-bundle-01.fsh), written out as JSON."""
    subject = {"reference": PATIENT}
    resources: list[dict[str, Any]] = [
        {"resourceType": "Patient", "name": [{"family": "DeLarosa", "given": ["Martha"]}]},
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationReference": {"reference": "urn:uuid:med-1"},
            "subject": subject,
            "effectivePeriod": {"start": "2015-03"},
            "dosage": [{"text": "1 tablet daily", "route": {"text": "Oral use"}}],
        },
        {
            "resourceType": "Medication",
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "108774000",
                        "display": "Product containing anastrozole",
                    }
                ]
            },
        },
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "type": "allergy",
            "category": ["medication"],
            "criticality": "high",
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "373270004",
                        "display": "Substance with penicillin structure",
                    }
                ]
            },
            "patient": subject,
            "onsetDateTime": "2010",
        },
        {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "code": {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "254837009",
                        "display": "Malignant neoplasm of breast",
                    }
                ]
            },
            "subject": subject,
            "onsetDateTime": "2015-10",
        },
    ]
    urls = [PATIENT, "urn:uuid:ms-1", "urn:uuid:med-1", "urn:uuid:al-1", "urn:uuid:co-1"]
    return {
        "resourceType": "Bundle",
        "type": "document",
        "timestamp": "2017-12-11T14:30:00+01:00",
        "entry": [
            {"fullUrl": url, "resource": resource}
            for url, resource in zip(urls, resources, strict=True)
        ],
    }


@dataclass
class Clinic:
    """A patient, the clinic's system that publishes for them, a doctor they granted access
    to, and the FHIR API."""

    served: Served
    session: Session
    clock: FrozenClock
    patient: Patient
    matricule: str
    clinic: Organisation
    system: Actor
    doctor: Actor
    me: Actor

    def publish(self, document: dict[str, Any], **changes: Any) -> Any:
        """Publish ``document`` through ITI-65; the response."""
        headers = {
            **FHIR_JSON,
            **bearer(
                self.served, self.session, self.system, self.clock, "system/DocumentReference.cru"
            ),
        }
        bundle = document_bundle(by_identifier(self.matricule), document, **changes)
        return self.served.client.post("/fhir", json=bundle, headers=headers)

    def get(self, actor: Actor, path: str, params: Any = None, scope: str = "user/*.rs") -> Any:
        headers = bearer(self.served, self.session, actor, self.clock, scope)
        return self.served.client.get(path, params=params, headers=headers)

    def search(self, actor: Actor, kind: str, scope: str = "user/*.rs", **params: str) -> Any:
        response = self.get(
            actor, f"/fhir/{kind}", {"patient": f"Patient/{self.patient.id}", **params}, scope
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def clinic(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Clinic]:
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    organisation = make_organisation(session, clock)
    system = system_actor(organisation, scopes="system/DocumentReference.cru")
    doctor = professional_actor(make_professional(session, clock, family="Weber"))
    me = patient_actor(patient)
    grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=doctor.professional_id,
    )
    with serve(session, store, clock, wrapper) as served:
        yield Clinic(served, session, clock, patient, matricule, organisation, system, doctor, me)
