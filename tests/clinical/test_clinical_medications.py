"""The medication list: treatments assembled from prescriptions and statements (issue 20)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.clinical.medications import medication_list
from clinical.sources import Clinic, ips_facts

ATC = "http://www.whocc.no/atc"


def _prescription(code: str, start: str, end: str | None, status: str) -> dict[str, Any]:
    bounds = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "MedicationRequest",
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code}], "text": code},
        "subject": {"reference": "urn:uuid:p"},
        "authoredOn": start,
        "requester": {"reference": "Practitioner/x", "display": "Dr. Weber"},
        "dosageInstruction": [
            {"text": "1 tablet twice a day", "timing": {"repeat": {"boundsPeriod": bounds}}}
        ],
    }


def test_treatments_from_prescriptions_and_statements(clinic: Clinic) -> None:
    assert clinic.publish(ips_facts()).status_code == 200
    prescriptions = {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {"fullUrl": f"urn:uuid:{i}", "resource": resource}
            for i, resource in enumerate(
                [
                    _prescription("C10AA05", "2024-01-10", "2024-04-10", "completed"),
                    _prescription("C10AA05", "2024-04-10", "2024-07-10", "completed"),
                    _prescription("A10BA02", "2026-01-05", None, "active"),
                ]
            )
        ],
    }
    assert clinic.publish(prescriptions).status_code == 200
    dossier = open_dossier(
        clinic.session,
        clinic.doctor,
        clinic.patient.id,
        purposes.READ_CLINICAL_FACTS,
        clock=clinic.clock,
    )
    treatments = medication_list(clinic.session, dossier)
    by_code = {t.code: t for t in treatments}
    assert set(by_code) == {"A10BA02", "C10AA05", "108774000"}
    metformin, statin = by_code["A10BA02"], by_code["C10AA05"]
    assert metformin.current
    assert metformin.stopped_at is None
    assert metformin.prescriber == "Dr. Weber"
    assert metformin.dose == "1 tablet twice a day"
    assert not statin.current
    assert statin.started_at == dt.datetime(2024, 1, 10, tzinfo=dt.UTC)
    assert statin.stopped_at == dt.datetime(2024, 7, 10, tzinfo=dt.UTC)
    anastrozole = by_code["108774000"]
    assert anastrozole.current
    assert anastrozole.dose == "1 tablet daily"
    assert [t.current for t in treatments] == [True, True, False]
