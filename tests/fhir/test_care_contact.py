"""The care contact over FHIR: ``$care-contact-code`` (the patient), ``$care-contact`` (the
professional, with the patient's code or card) and ``$adjust-window`` (the patient).

http://hl7.org/fhir/R4/operations.html — each takes and answers a ``Parameters``. Everything
goes through the door (``access.care``): a professional the patient blocked, or anyone asking
for another patient's code, meets 404 as for a dossier that does not exist, recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.parameters import Parameters
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor, Assurance
from carnet.access.door import open_dossier
from carnet.access.models import CareContact, CareContactMethod
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Practice:
    served: Served
    session: Session
    clock: FrozenClock
    patient_id: uuid.UUID
    patient: Actor
    gp: Actor

    def post(self, path: str, who: Actor, scope: str, body: Any = None) -> Any:
        return self.served.client.post(
            path,
            content=json.dumps(body) if body is not None else b"",
            headers={
                **FHIR_JSON,
                **bearer(self.served, self.session, who, self.clock, scope),
            },
        )

    def code(self) -> str:
        answer = self.post(
            f"/fhir/Patient/{self.patient_id}/$care-contact-code", self.patient, "patient/*.cruds"
        )
        assert answer.status_code == 200, answer.text
        Parameters.model_validate(answer.json())
        assert answer.headers["cache-control"] == "no-store"
        [code] = [p["valueString"] for p in answer.json()["parameter"] if p["name"] == "code"]
        return str(code)

    def record(self, body: dict[str, Any], who: Actor | None = None) -> Any:
        return self.post(
            f"/fhir/Patient/{self.patient_id}/$care-contact",
            who or self.gp,
            "user/Consent.c user/DocumentReference.rs",
            body,
        )

    def documents_seen(self) -> int:
        response = self.served.client.get(
            "/fhir/DocumentReference",
            params={"patient": f"Patient/{self.patient_id}"},
            headers=bearer(self.served, self.session, self.gp, self.clock, "user/*.rs"),
        )
        total: int = response.json()["total"]
        return total

    def contacts(self) -> list[CareContact]:
        return list(
            self.session.scalars(
                select(CareContact).where(CareContact.patient_id == self.patient_id)
            )
        )

    def events(self, action: AuditAction) -> list[AuditEvent]:
        return list(
            self.session.scalars(
                select(AuditEvent)
                .where(AuditEvent.chain_id == self.patient_id, AuditEvent.action == action)
                .order_by(AuditEvent.seq)
            )
        )


def code_parameters(code: str) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "code", "valueString": code}]}


@pytest.fixture
def practice(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[Practice]:
    patient = make_patient(session, clock)
    colleague = professional_actor(make_professional(session, clock, family="Kieffer"))
    make_document(session, store, clock, actor=colleague, patient_id=patient.id)
    gp = professional_actor(make_professional(session, clock, family="Generalist"))
    with serve(session, store, clock, wrapper) as served:
        yield Practice(served, session, clock, patient.id, patient_actor(patient), gp)


class TestCareContactOperation:
    def test_the_patients_code_opens_the_window_and_the_documents(self, practice: Practice) -> None:
        assert practice.documents_seen() == 0
        answer = practice.record(code_parameters(practice.code()))
        assert answer.status_code == 200, answer.text
        Parameters.model_validate(answer.json())
        parts = {p["name"]: p for p in answer.json()["parameter"]}
        consent = parts["consent"]["resource"]
        FhirConsent.model_validate(consent)
        [contact] = practice.contacts()
        assert contact.method is CareContactMethod.CODE
        assert parts["windowEnd"]["valueDateTime"] == "2026-08-30T12:00:00Z"  # 90 days
        assert answer.headers["content-location"].endswith(f"/Consent/{consent['id']}")
        assert practice.documents_seen() == 1
        [event] = practice.events(AuditAction.CARE_CONTACT)
        assert event.outcome is AuditOutcome.ALLOWED

    def test_a_wrong_code_is_422_naming_the_parameter_and_opens_nothing(
        self, practice: Practice
    ) -> None:
        practice.code()
        answer = practice.record(code_parameters("00000000"))
        assert answer.status_code == 422
        [issue] = answer.json()["issue"]
        assert issue["code"] == "invalid"
        assert issue["expression"] == ["Parameters.parameter[code]"]
        assert practice.contacts() == []

    def test_no_code_is_422(self, practice: Practice) -> None:
        answer = practice.record({"resourceType": "Parameters", "parameter": []})
        assert answer.status_code == 422
        assert answer.json()["issue"][0]["expression"] == ["Parameters.parameter[code]"]

    def test_a_body_that_is_not_parameters_is_refused(self, practice: Practice) -> None:
        answer = practice.record({"resourceType": "Patient"})
        assert answer.status_code == 422
        assert answer.json()["issue"][0]["expression"] == ["Parameters.resourceType"]

    def test_the_card_counts_only_from_a_card_sign_in(self, practice: Practice) -> None:
        card = {
            "resourceType": "Parameters",
            "parameter": [{"name": "method", "valueCode": "card"}],
        }
        weaker = practice.record(
            card, Actor(**{**practice.gp.__dict__, "assurance": Assurance.SUBSTANTIAL})
        )
        assert weaker.status_code == 422
        assert weaker.json()["issue"][0]["expression"] == ["Parameters.parameter[method]"]
        assert practice.record(card).status_code == 200
        [contact] = practice.contacts()
        assert contact.method is CareContactMethod.CARD

    def test_a_blocked_professional_meets_404_recorded(self, practice: Practice) -> None:
        code = practice.code()
        access_rules.block_professional(
            practice.session,
            open_dossier(
                practice.session,
                practice.patient,
                practice.patient_id,
                purposes.BLOCK_PROFESSIONAL,
                clock=practice.clock,
            ),
            practice.gp.professional_id,  # type: ignore[arg-type]
        )
        answer = practice.record(code_parameters(code))
        assert answer.status_code == 404
        assert practice.contacts() == []
        assert [e.outcome for e in practice.events(AuditAction.CARE_CONTACT)] == [
            AuditOutcome.DENIED
        ]

    def test_without_consent_scope_it_is_403(self, practice: Practice) -> None:
        answer = practice.post(
            f"/fhir/Patient/{practice.patient_id}/$care-contact",
            practice.gp,
            "user/DocumentReference.rs",
            code_parameters(practice.code()),
        )
        assert answer.status_code == 403
        assert practice.contacts() == []

    def test_a_professional_cannot_issue_the_patients_code(self, practice: Practice) -> None:
        answer = practice.post(
            f"/fhir/Patient/{practice.patient_id}/$care-contact-code", practice.gp, "user/*.cruds"
        )
        assert answer.status_code == 404
        assert [e.outcome for e in practice.events(AuditAction.CARE_CONTACT_CODE)] == [
            AuditOutcome.DENIED
        ]


class TestAdjustWindow:
    def _opened(self, practice: Practice) -> str:
        answer = practice.record(code_parameters(practice.code()))
        consent_id: str = answer.json()["parameter"][0]["resource"]["id"]
        return consent_id

    def _adjust(
        self, practice: Practice, consent_id: str, end: str, who: Actor | None = None
    ) -> Any:
        return practice.post(
            f"/fhir/Consent/{consent_id}/$adjust-window",
            who or practice.patient,
            "patient/*.cruds" if who is None else "user/*.cruds",
            {"resourceType": "Parameters", "parameter": [{"name": "end", "valueDateTime": end}]},
        )

    def test_the_patient_shortens_then_ends_the_window(self, practice: Practice) -> None:
        consent_id = self._opened(practice)
        shorter = self._adjust(practice, consent_id, "2026-06-10T22:00:00Z")
        assert shorter.status_code == 200, shorter.text
        [contact] = practice.contacts()
        assert contact.window_ends_at == dt.datetime(2026, 6, 10, 22, tzinfo=dt.UTC)
        ended = self._adjust(practice, consent_id, "2026-01-01T00:00:00Z")
        assert {p["name"]: p for p in ended.json()["parameter"]}["ended"]["valueBoolean"] is True
        assert practice.documents_seen() == 0

    def test_beyond_a_year_is_422(self, practice: Practice) -> None:
        consent_id = self._opened(practice)
        answer = self._adjust(practice, consent_id, "2028-01-01T00:00:00Z")
        assert answer.status_code == 422
        assert answer.json()["issue"][0]["expression"] == ["Parameters.parameter[end]"]

    def test_an_end_without_a_time_zone_is_422(self, practice: Practice) -> None:
        consent_id = self._opened(practice)
        answer = self._adjust(practice, consent_id, "2026-06-10T22:00:00")
        assert answer.status_code == 422

    def test_the_professional_cannot_lengthen_their_own_window(self, practice: Practice) -> None:
        consent_id = self._opened(practice)
        answer = self._adjust(practice, consent_id, "2027-01-01T00:00:00Z", who=practice.gp)
        assert answer.status_code == 404

    def test_only_a_care_contact_is_adjusted(self, practice: Practice) -> None:
        answer = self._adjust(
            practice, f"g{practice.patient_id}.{uuid.uuid4()}", "2026-07-01T00:00:00Z"
        )
        assert answer.status_code == 404
