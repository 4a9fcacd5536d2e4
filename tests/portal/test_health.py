"""The health data pages of both portals: treatments, vaccinations, results and their chart."""

from __future__ import annotations

import html
import json
import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditEvent
from carnet.clinical import extraction
from carnet.clock import FrozenClock
from carnet.documents.models import Document
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from clinical.sources import synthea_document, synthea_files
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, make_patient_login, make_professional_login
from factories.directory import make_professional
from factories.documents import make_document
from factories.portal import sign_in_patient, sign_in_professional

ALVA = next(p for p in synthea_files() if p.name.startswith("Alva958"))
HEALTH = "/portal/patient/health"


def _record_of_alva(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, patient: Patient
) -> Document:
    """Alva's Synthea record published by a doctor as a FHIR document, its facts kept."""
    author = professional_actor(make_professional(session, clock, family="Schmit"))
    content = json.dumps(synthea_document(ALVA)).encode()
    document = make_document(
        session,
        store,
        clock,
        actor=author,
        patient_id=patient.id,
        content=content,
        mime_type="application/fhir+json",
        title="Patient record",
    )
    extraction.record_facts(
        session,
        open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        [(document, content)],
    )
    return document


class TestThePatientsHealthData:
    def test_one_click_from_any_page_and_a_result_chart_one_more(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        record = _record_of_alva(session, store, clock, login.patient)
        sign_in_patient(web.client, login, clock)
        home = web.client.get("/portal/patient").text
        assert f'href="{HEALTH}"' in home

        page = web.client.get(HEALTH)
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert page.headers["cache-control"] == "no-store"
        assert "Influenza, seasonal, injectable, preservative free" in text
        assert "Tetanus, diphtheria, pertussis" in text
        assert "Programme national de vaccination (Luxembourg)" in text
        assert "PULSE" in text

        link = re.search(r'href="(/portal/patient/health/result\?[^"]+)">PULSE<', page.text)
        assert link is not None
        chart = web.client.get(html.unescape(link.group(1)))
        assert chart.status_code == 200
        assert "<svg" in chart.text
        svg = chart.text[chart.text.index("<svg") : chart.text.index("</svg>")]
        assert "<script" not in svg  # pygal's own scripts and styles are taken out (the CSP)
        assert "<style" not in svg
        assert 'aria-labelledby="result-caption"' in chart.text
        assert f"/portal/patient/documents/{record.id}" in chart.text
        # Every value in the table (a header row and the two pulses), oldest first.
        assert chart.text.count("<tr>") == 3

    def test_one_look_at_the_page_is_one_entry_in_the_history(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        """The three lists are read in one search: one entry for them in the patient's history
        (beside the read of the demographics the schedule is chosen by)."""
        login = make_patient_login(session, clock, wrapper)
        _record_of_alva(session, store, clock, login.patient)
        sign_in_patient(web.client, login, clock)

        def searches() -> list[dict[str, object]]:
            rows = session.scalars(
                select(AuditEvent.details).where(AuditEvent.patient_id == login.patient.id)
            )
            return [d for d in map(json.loads, rows) if d.get("resource", "Patient") != "Patient"]

        before = len(searches())
        assert web.client.get(HEALTH).status_code == 200
        looks = searches()[before:]
        assert len(looks) == 1
        resources = str(looks[0]["resource"]).split(",")
        assert {"Immunization", "Observation", "MedicationStatement"} <= set(resources)

    def test_an_unknown_result_says_so(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        page = web.client.get(f"{HEALTH}/result", params={"code": "0000-0"})
        assert page.status_code == 200
        assert "No value of this result is recorded" in page.text
        empty = web.client.get(HEALTH).text
        assert "No vaccination is recorded in the documents you can see." in empty


class TestTheProfessionalsHealthData:
    def test_a_granted_doctor_sees_it_with_the_patient_header_a_stranger_does_not(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        patient_login = make_patient_login(session, clock, wrapper)
        patient = patient_login.patient
        _record_of_alva(session, store, clock, patient)
        doctor = make_professional_login(session, clock, wrapper)
        base = f"/portal/professional/patients/{patient.id}"
        sign_in_professional(web.client, doctor, clock)
        refused = web.client.get(f"{base}/health")
        assert refused.status_code == 403
        assert "Influenza" not in refused.text

        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=doctor.professional.id,
        )
        patient_page = web.client.get(base).text
        assert f'href="{base}/health"' in patient_page
        page = web.client.get(f"{base}/health")
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert f"{patient.given} {patient.family}" in text
        assert "Influenza, seasonal, injectable, preservative free" in text
        link = re.search(rf'href="({base}/health/result\?[^"]+)">PULSE<', page.text)
        assert link is not None
        chart = web.client.get(html.unescape(link.group(1)))
        assert chart.status_code == 200
        assert "<svg" in chart.text
        assert f"{patient.given} {patient.family}" in html.unescape(chart.text)
