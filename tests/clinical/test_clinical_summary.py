"""``Patient/$summary``: an IPS document built from what the caller sees, valid R4 and held to
the IPS profiles' rules (http://hl7.org/fhir/uv/ips)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.documents import visibility
from carnet.documents.models import Document
from carnet.fhir.mapping.ips import summary_problems
from clinical.sources import Clinic, ips_facts, synthea_document, synthea_files

ALVA = next(p for p in synthea_files() if p.name.startswith("Alva958"))


def _summary(clinic: Clinic, actor: Any) -> dict[str, Any]:
    response = clinic.get(actor, f"/fhir/Patient/{clinic.patient.id}/$summary")
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    Bundle.model_validate(bundle)
    assert summary_problems(bundle) == []
    return bundle


def _section(bundle: dict[str, Any], code: str) -> dict[str, Any] | None:
    for section in bundle["entry"][0]["resource"]["section"]:
        if section["code"]["coding"][0]["code"] == code:
            return section  # type: ignore[no-any-return]
    return None


def test_summary_of_a_dossier_with_every_section(clinic: Clinic) -> None:
    assert clinic.publish(synthea_document(ALVA)).status_code == 200
    assert clinic.publish(ips_facts()).status_code == 200
    bundle = _summary(clinic, clinic.doctor)
    assert bundle["type"] == "document"
    assert len(_section(bundle, "11369-6")["entry"]) == 52  # type: ignore[index]
    medication = _section(bundle, "10160-0")
    assert medication is not None
    assert len(medication["entry"]) == 1
    statement = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "MedicationStatement"
    )
    assert statement["medicationCodeableConcept"]["coding"][0]["code"] == "108774000"
    assert len(_section(bundle, "48765-2")["entry"]) == 1  # type: ignore[index]
    assert len(_section(bundle, "11450-4")["entry"]) == 2  # type: ignore[index]


def test_an_empty_dossier_says_why_each_required_section_is_empty(clinic: Clinic) -> None:
    bundle = _summary(clinic, clinic.me)
    for code in ("48765-2", "10160-0", "11450-4"):
        section = _section(bundle, code)
        assert section is not None
        assert "entry" not in section
        assert section["emptyReason"]["coding"][0]["code"] == "unavailable"
    assert _section(bundle, "11369-6") is None


def test_a_masked_document_brings_no_entry_to_the_doctor_but_to_the_patient(
    clinic: Clinic,
) -> None:
    assert clinic.publish(ips_facts()).status_code == 200
    document_id = clinic.session.scalars(select(Document.id)).one()
    visibility.set_visibility(
        clinic.session,
        open_dossier(
            clinic.session,
            clinic.me,
            clinic.patient.id,
            purposes.SET_DOCUMENT_VISIBILITY,
            clock=clinic.clock,
        ),
        document_id,
        masked_from_professionals=True,
    )
    doctor = _summary(clinic, clinic.doctor)
    assert "entry" not in _section(doctor, "48765-2")  # type: ignore[operator]
    mine = _summary(clinic, clinic.me)
    assert len(_section(mine, "48765-2")["entry"]) == 1  # type: ignore[index]
