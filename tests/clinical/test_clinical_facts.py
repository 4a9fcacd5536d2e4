"""Facts taken from FHIR documents published through ITI-65 (issue 20), and the policy on them.

Synthea's patient bundles (shared datasets), turned into FHIR document Bundles, are published;
every Observation, Immunization and Condition becomes a fact naming its document, seen exactly
when that document is seen.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.clinical import facts as clinical
from carnet.clinical.models import ClinicalFact, FactKind
from carnet.documents import visibility
from carnet.documents.models import Confidentiality, Document
from clinical.sources import Clinic, kinds_in, synthea_document, synthea_files

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
# Alva958 Dickinson688: 156 observations, 52 immunizations, 1 condition.
ALVA = next(p for p in synthea_files() if p.name.startswith("Alva958"))


def _published(clinic: Clinic, document: dict[str, Any], **changes: Any) -> Document:
    response = clinic.publish(document, **changes)
    assert response.status_code == 200, response.text
    return clinic.session.scalars(
        select(Document)
        .where(Document.patient_id == clinic.patient.id)
        .order_by(Document.submitted_at.desc())
    ).first()  # type: ignore[return-value]


def _counts(clinic: Clinic) -> dict[FactKind, int]:
    rows = clinic.session.execute(
        select(ClinicalFact.kind, func.count())
        .where(ClinicalFact.patient_id == clinic.patient.id)
        .group_by(ClinicalFact.kind)
    )
    return {row[0]: row[1] for row in rows.all()}


class TestExtraction:
    @pytest.mark.parametrize("path", synthea_files()[:3], ids=lambda p: p.name.split("_")[0])
    def test_every_fact_of_a_synthea_record_is_kept_with_its_document(
        self, clinic: Clinic, path: Any
    ) -> None:
        document = synthea_document(path)
        published = _published(clinic, document)
        expected = kinds_in(document)
        assert {kind.value: n for kind, n in _counts(clinic).items()} == dict(expected)
        sources = clinic.session.scalars(
            select(ClinicalFact.document_id).where(ClinicalFact.patient_id == clinic.patient.id)
        )
        assert set(sources) == {published.id}

    def test_values_are_read_as_the_source_gave_them(self, clinic: Clinic) -> None:
        _published(clinic, synthea_document(ALVA))
        assert _counts(clinic) == {
            FactKind.OBSERVATION: 156,
            FactKind.IMMUNIZATION: 52,
            FactKind.CONDITION: 1,
        }
        source = json.loads(ALVA.read_text(encoding="utf-8"))
        first = next(
            e["resource"]
            for e in source["entry"]
            if e["resource"]["resourceType"] == "Observation" and "valueQuantity" in e["resource"]
        )
        code = first["code"]["coding"][0]["code"]
        bundle = clinic.search(clinic.me, "Observation", code=f"http://loinc.org|{code}")
        values = [e["resource"]["valueQuantity"]["value"] for e in bundle["entry"]]
        assert first["valueQuantity"]["value"] in values
        resource = bundle["entry"][0]["resource"]
        assert resource["subject"] == {"reference": f"Patient/{clinic.patient.id}"}
        assert "encounter" not in resource  # references into the document are cut
        assert resource["meta"]["source"].startswith("http")

    def test_an_invalid_entry_refuses_the_whole_publication(self, clinic: Clinic) -> None:
        document = synthea_document(ALVA)
        index = next(
            i
            for i, e in enumerate(document["entry"])
            if e["resource"]["resourceType"] == "Condition"
        )
        document["entry"][index]["resource"]["onsetDateTime"] = "yesterday"
        response = clinic.publish(document)
        assert response.status_code in (400, 422), response.text
        expression = response.json()["issue"][0]["expression"][0]
        assert expression.startswith(f"Bundle.entry[{index}].resource.onset")
        assert _counts(clinic) == {}
        assert clinic.session.scalar(select(func.count()).select_from(Document)) == 0

    def test_other_content_brings_no_fact(self, clinic: Clinic) -> None:
        headers_document = {"resourceType": "Bundle", "type": "searchset", "entry": []}
        _published(clinic, headers_document)
        assert _counts(clinic) == {}


class TestFhirSearch:
    def test_search_by_code_category_date_and_sort(self, clinic: Clinic) -> None:
        _published(clinic, synthea_document(ALVA))
        everything = clinic.search(clinic.me, "Observation", _count="1000")
        assert everything["total"] == 156
        dates = [e["resource"].get("effectiveDateTime", "") for e in everything["entry"]]
        assert dates == sorted(dates, reverse=True)
        oldest = clinic.search(clinic.me, "Observation", _sort="date", _count="5")
        assert [e["resource"]["effectiveDateTime"] for e in oldest["entry"]] == sorted(dates)[:5]
        assert any(link["relation"] == "next" for link in oldest["link"])
        exams = clinic.search(clinic.me, "Observation", category="exam")
        assert exams["total"] == 2
        assert all(
            e["resource"]["category"][0]["coding"][0]["code"] == "exam" for e in exams["entry"]
        )
        recent = clinic.search(clinic.me, "Observation", date="ge2017-01-01", _count="1000")
        assert recent["total"] == 79
        assert all(e["resource"]["effectiveDateTime"] >= "2017" for e in recent["entry"])
        immunizations = clinic.search(clinic.me, "Immunization", _count="100")
        assert immunizations["total"] == 52
        flu = clinic.search(clinic.me, "Immunization", **{"vaccine-code": "140"})
        assert 0 < flu["total"] < 52
        conditions = clinic.search(clinic.me, "Condition")
        assert conditions["total"] == 1

    def test_read_answers_the_fact_and_404_for_others(self, clinic: Clinic) -> None:
        _published(clinic, synthea_document(ALVA))
        found = clinic.search(clinic.doctor, "Condition")["entry"][0]["resource"]
        read = clinic.get(clinic.doctor, f"/fhir/Condition/{found['id']}")
        assert read.status_code == 200, read.text
        assert read.json() == found
        assert clinic.get(clinic.doctor, f"/fhir/Observation/{found['id']}").status_code == 404
        assert clinic.get(clinic.doctor, "/fhir/Condition/nope").status_code == 404

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"foo": "bar"}, "foo"),
            ({"date": "someday"}, "date"),
            ({"_sort": "code"}, "_sort"),
            ({"_count": "0"}, "_count"),
        ],
    )
    def test_bad_parameters_answer_an_outcome_naming_them(
        self, clinic: Clinic, params: dict[str, str], field: str
    ) -> None:
        response = clinic.get(
            clinic.me, "/fhir/Observation", {"patient": f"Patient/{clinic.patient.id}", **params}
        )
        assert response.status_code in (400, 422)
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["expression"] == [field]

    def test_a_missing_patient_is_refused_and_a_scope_is_needed(self, clinic: Clinic) -> None:
        assert clinic.get(clinic.me, "/fhir/Observation").status_code in (400, 422)
        response = clinic.get(
            clinic.me,
            "/fhir/Observation",
            {"patient": f"Patient/{clinic.patient.id}"},
            scope="patient/Immunization.rs",
        )
        assert response.status_code == 403
        assert response.json()["issue"][0]["code"] == "forbidden"

    def test_the_capability_statement_names_the_clinical_resources(self, clinic: Clinic) -> None:
        statement = clinic.served.client.get("/fhir/metadata").json()
        types = {r["type"]: r for r in statement["rest"][0]["resource"]}
        for kind in ("Observation", "Immunization", "AllergyIntolerance", "Condition"):
            assert {"read", "search-type"} <= {i["code"] for i in types[kind]["interaction"]}
        params = {p["name"] for p in types["Observation"]["searchParam"]}
        assert {"patient", "code", "category", "date", "_sort"} <= params


class TestPolicy:
    """A masked, secret, withdrawn or replaced document brings no fact to a professional who
    may not see it, while the patient sees theirs (except withdrawn and replaced, for all)."""

    def _doctor_and_patient_totals(self, clinic: Clinic) -> tuple[int, int]:
        doctor = clinic.search(clinic.doctor, "Immunization", _count="100")
        mine = clinic.search(clinic.me, "Immunization", _count="100")
        return doctor["total"], mine["total"]

    def test_a_visible_document_shows_its_facts_to_both(self, clinic: Clinic) -> None:
        _published(clinic, synthea_document(ALVA))
        assert self._doctor_and_patient_totals(clinic) == (52, 52)

    def test_masked_from_professionals(self, clinic: Clinic) -> None:
        document = _published(clinic, synthea_document(ALVA))
        dossier = open_dossier(
            clinic.session,
            clinic.me,
            clinic.patient.id,
            purposes.SET_DOCUMENT_VISIBILITY,
            clock=clinic.clock,
        )
        visibility.set_visibility(
            clinic.session,
            dossier,
            document.id,
            confidentiality=None,
            masked_from_professionals=True,
        )
        assert self._doctor_and_patient_totals(clinic) == (0, 52)
        outcome = clinic.search(clinic.doctor, "Immunization")["entry"][-1]
        assert outcome["search"]["mode"] == "outcome"

    def test_secret(self, clinic: Clinic) -> None:
        secret = {"securityLabel": [{"coding": [{"system": CONFIDENTIALITY, "code": "V"}]}]}
        document = _published(clinic, synthea_document(ALVA), **secret)
        assert document.confidentiality is Confidentiality.VERY_RESTRICTED
        assert self._doctor_and_patient_totals(clinic) == (0, 52)

    def test_withdrawn(self, clinic: Clinic) -> None:
        document = _published(clinic, synthea_document(ALVA))
        dossier = open_dossier(
            clinic.session,
            clinic.system,
            clinic.patient.id,
            purposes.MANAGE_DOCUMENT,
            clock=clinic.clock,
        )
        visibility.mark_entered_in_error(clinic.session, dossier, document.id)
        assert self._doctor_and_patient_totals(clinic) == (0, 0)

    def test_replaced_gives_way_to_its_replacement(self, clinic: Clinic) -> None:
        first = _published(clinic, synthea_document(ALVA))
        smaller = synthea_document(ALVA)
        kept = [e for e in smaller["entry"] if e["resource"]["resourceType"] != "Immunization"]
        smaller["entry"] = [
            *kept,
            *[
                e
                for e in synthea_document(ALVA)["entry"]
                if e["resource"]["resourceType"] == "Immunization"
            ][:3],
        ]
        clinic.clock.advance(dt.timedelta(minutes=1))
        replaces = {
            "relatesTo": [
                {
                    "code": "replaces",
                    "target": {"reference": f"DocumentReference/{_resource_id(first)}"},
                }
            ]
        }
        _published(clinic, smaller, **replaces)
        assert self._doctor_and_patient_totals(clinic) == (3, 3)

    def test_the_service_filters_what_a_professional_may_not_see(self, clinic: Clinic) -> None:
        _published(clinic, synthea_document(ALVA))
        stranger = clinic.doctor
        dossier = open_dossier(
            clinic.session,
            stranger,
            clinic.patient.id,
            purposes.FIND_CLINICAL_FACTS,
            clock=clinic.clock,
        )
        page = clinical.find_facts(clinic.session, dossier, (FactKind.CONDITION,))
        assert [fact.kind for fact in page.facts] == [FactKind.CONDITION]


def _resource_id(document: Document) -> str:
    from carnet.fhir.ids import document_resource_id

    return document_resource_id(document.patient_id, document.id)
