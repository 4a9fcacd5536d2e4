"""The care contact in both portals: the patient gives a one-time code, the professional types it
and the dossier opens; the patient sees the window and shortens, lengthens or ends it.

Each step goes through ``access.care`` (the policy, then the audit trail); what a person typed
stays in the form when it is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier, Purpose, open_dossier
from carnet.access.models import CareContact, CareContactMethod
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import (
    PatientLogin,
    ProfessionalLogin,
    Served,
    make_patient_login,
    make_professional_login,
)
from factories.directory import make_professional
from factories.documents import make_document
from factories.portal import csrf_of, sign_in_patient, sign_in_professional

ACCESS = "/portal/patient/access"
_CODE = re.compile(r'<p class="care-code" aria-label="(\d{8})">')


@dataclass
class Visit:
    """A patient signed in on one browser, their GP (card sign-in) on another."""

    web: Served
    session: Session
    clock: FrozenClock
    store: FilesystemDocumentStore
    patient: PatientLogin
    gp: ProfessionalLogin
    patient_browser: TestClient

    @property
    def gp_browser(self) -> TestClient:
        return self.web.client

    @property
    def patient_page(self) -> str:
        return f"/portal/professional/patients/{self.patient.patient.id}"

    def code(self) -> str:
        """The patient asks for a code in their portal, as on the access page."""
        page = self.patient_browser.get(ACCESS)
        shown = self.patient_browser.post(
            "/portal/patient/access/care-contact-code", data={"csrf": csrf_of(page.text)}
        )
        assert shown.status_code == 200, shown.text
        found = _CODE.search(shown.text)
        assert found is not None, shown.text
        return found.group(1)

    def type_code(self, code: str, **fields: str) -> object:
        page = self.gp_browser.get(self.patient_page)
        return self.gp_browser.post(
            f"{self.patient_page}/care-contact",
            data={"csrf": csrf_of(page.text), "method": "code", "code": code, **fields},
            follow_redirects=False,
        )

    def opened(self, actor: Actor, purpose: Purpose) -> OpenedDossier:
        return open_dossier(self.session, actor, self.patient.patient.id, purpose, clock=self.clock)

    def contacts(self) -> list[CareContact]:
        return list(
            self.session.scalars(
                select(CareContact).where(CareContact.patient_id == self.patient.patient.id)
            )
        )

    def events(self, action: AuditAction) -> list[AuditEvent]:
        return list(
            self.session.scalars(
                select(AuditEvent)
                .where(AuditEvent.chain_id == self.patient.patient.id, AuditEvent.action == action)
                .order_by(AuditEvent.seq)
            )
        )


@pytest.fixture
def visit(
    web: Served,
    session: Session,
    clock: FrozenClock,
    store: FilesystemDocumentStore,
    wrapper: MasterKeyWrapper,
) -> Visit:
    patient = make_patient_login(session, clock, wrapper)
    gp = make_professional_login(session, clock, wrapper)
    sign_in_professional(web.client, gp, clock)
    patient_browser = TestClient(web.client.app)
    sign_in_patient(patient_browser, patient, clock)
    return Visit(web, session, clock, store, patient, gp, patient_browser)


class TestTheProfessionalWithThePatientPresent:
    def test_the_patients_code_opens_the_dossier_and_the_document_is_one_click_away(
        self, visit: Visit
    ) -> None:
        colleague = make_professional(visit.session, visit.clock, family="Kieffer")
        document = make_document(
            visit.session,
            visit.store,
            visit.clock,
            actor=professional_actor(colleague),
            patient_id=visit.patient.patient.id,
            title="Bilan sanguin",
        )
        no_access = visit.gp_browser.get(visit.patient_page)
        assert no_access.status_code == 403
        assert "The patient is with you" in no_access.text
        assert f'action="{visit.patient_page}/care-contact"' in no_access.text

        code = visit.code()
        answer = visit.type_code(f"{code[:4]} {code[4:]}")  # read out in two groups
        assert answer.status_code == 303  # type: ignore[attr-defined]
        assert answer.headers["location"] == visit.patient_page  # type: ignore[attr-defined]
        page = visit.gp_browser.get(visit.patient_page)
        assert page.status_code == 200
        assert "Care contact recorded: you may consult this dossier until" in page.text
        assert f"/documents/{document.id}" in page.text
        [contact] = visit.contacts()
        assert contact.method is CareContactMethod.CODE
        assert contact.professional_id == visit.gp.professional.id
        # A GP's window is the default 90 days.
        assert contact.window_ends_at - contact.recorded_at == dt.timedelta(days=90)
        [recorded] = visit.events(AuditAction.CARE_CONTACT)
        assert recorded.outcome is AuditOutcome.ALLOWED

    def test_a_wrong_code_is_said_on_the_page_with_what_was_typed_and_nothing_opens(
        self, visit: Visit
    ) -> None:
        visit.code()
        answer = visit.type_code("1234 5678")
        assert answer.status_code == 422  # type: ignore[attr-defined]
        text = answer.text  # type: ignore[attr-defined]
        assert "The patient&#39;s code is wrong or expired." in text
        assert 'value="1234 5678"' in text
        assert 'aria-invalid="true"' in text
        assert visit.contacts() == []
        assert visit.gp_browser.get(visit.patient_page).status_code == 403

    def test_an_empty_code_is_asked_for_again(self, visit: Visit) -> None:
        answer = visit.type_code("   ")
        assert answer.status_code == 422  # type: ignore[attr-defined]
        assert "Enter the code the patient shows you" in answer.text  # type: ignore[attr-defined]

    def test_a_code_works_once_and_not_after_fifteen_minutes(self, visit: Visit) -> None:
        code = visit.code()
        visit.clock.advance(dt.timedelta(minutes=16))
        assert visit.type_code(code).status_code == 422  # type: ignore[attr-defined]
        fresh = visit.code()
        assert visit.type_code(fresh).status_code == 303  # type: ignore[attr-defined]
        assert visit.type_code(fresh).status_code == 422  # type: ignore[attr-defined]
        assert len(visit.contacts()) == 1

    def test_a_blocked_professional_is_refused_without_the_reason_and_it_is_recorded(
        self, visit: Visit
    ) -> None:
        code = visit.code()
        access_rules.block_professional(
            visit.session,
            visit.opened(patient_actor(visit.patient.patient), purposes.BLOCK_PROFESSIONAL),
            visit.gp.professional.id,
        )
        answer = visit.type_code(code)
        assert answer.status_code == 403  # type: ignore[attr-defined]
        assert "The care contact was refused." in answer.text  # type: ignore[attr-defined]
        assert "blocked" not in answer.text.split("</h1>")[1].split("A patient may")[0]  # type: ignore[attr-defined]
        assert visit.contacts() == []
        denied = [
            event
            for event in visit.events(AuditAction.CARE_CONTACT)
            if event.outcome is AuditOutcome.DENIED
        ]
        assert len(denied) == 1

    def test_the_patients_card_counts_once_confirmed_from_a_card_sign_in(
        self, visit: Visit
    ) -> None:
        page = visit.gp_browser.get(visit.patient_page)
        assert "Record the care contact with the patient's card" in page.text
        unconfirmed = visit.gp_browser.post(
            f"{visit.patient_page}/care-contact",
            data={"csrf": csrf_of(page.text), "method": "card"},
            follow_redirects=False,
        )
        assert unconfirmed.status_code == 422
        assert "Confirm that you read the patient&#39;s card." in unconfirmed.text
        assert visit.contacts() == []
        confirmed = visit.gp_browser.post(
            f"{visit.patient_page}/care-contact",
            data={"csrf": csrf_of(page.text), "method": "card", "card_read": "yes"},
            follow_redirects=False,
        )
        assert confirmed.status_code == 303
        [contact] = visit.contacts()
        assert contact.method is CareContactMethod.CARD

    def test_in_french_the_page_and_the_refusal_are_in_french(self, visit: Visit) -> None:
        visit.gp_browser.cookies.set("carnet_lang", "fr")
        page = visit.gp_browser.get(visit.patient_page)
        assert "Le patient est avec vous" in page.text
        answer = visit.type_code("00000000")
        assert "Le code du patient est erroné ou expiré." in answer.text  # type: ignore[attr-defined]


class TestThePatientSeesAndAdjustsTheWindow:
    def _contact(self, visit: Visit) -> CareContact:
        code = access_care.issue_care_contact_code(
            visit.session,
            visit.opened(patient_actor(visit.patient.patient), purposes.ISSUE_CARE_CONTACT_CODE),
        )
        return access_care.record_care_contact(
            visit.session,
            visit.opened(professional_actor(visit.gp.professional), purposes.RECORD_CARE_CONTACT),
            method=CareContactMethod.CODE,
            code=code,
        )

    def test_the_code_is_shown_once_in_two_groups(self, visit: Visit) -> None:
        code = visit.code()
        assert len(code) == 8
        again = visit.patient_browser.get(ACCESS)
        assert code not in again.text
        assert [e.outcome for e in visit.events(AuditAction.CARE_CONTACT_CODE)] == [
            AuditOutcome.ALLOWED
        ]

    def test_the_window_is_listed_and_shortened_to_a_chosen_day(self, visit: Visit) -> None:
        contact = self._contact(visit)
        page = visit.patient_browser.get(ACCESS)
        assert "Change the care contact of Marc Schmit" in page.text
        answer = visit.patient_browser.post(
            f"/portal/patient/access/care-contacts/{contact.id}",
            data={"csrf": csrf_of(page.text), "until": "2026-06-10"},
        )
        assert answer.status_code == 200
        assert "The care contact now lasts until" in answer.text
        visit.session.refresh(contact)
        # Through the whole of 10 June in Luxembourg: until midnight local, 22:00 UTC.
        assert contact.window_ends_at == dt.datetime(2026, 6, 10, 22, tzinfo=dt.UTC)
        assert 'value="2026-06-10"' in answer.text

    def test_a_window_longer_than_a_year_is_refused_and_unchanged(self, visit: Visit) -> None:
        contact = self._contact(visit)
        before = contact.window_ends_at
        page = visit.patient_browser.get(ACCESS)
        answer = visit.patient_browser.post(
            f"/portal/patient/access/care-contacts/{contact.id}",
            data={"csrf": csrf_of(page.text), "until": "2028-01-01"},
        )
        assert "A care-contact window lasts at most 365 days." in answer.text
        visit.session.refresh(contact)
        assert contact.window_ends_at == before

    def test_ending_it_closes_the_dossier_to_the_professional(self, visit: Visit) -> None:
        contact = self._contact(visit)
        assert visit.gp_browser.get(visit.patient_page).status_code == 200
        page = visit.patient_browser.get(ACCESS)
        answer = visit.patient_browser.post(
            f"/portal/patient/access/care-contacts/{contact.id}",
            data={"csrf": csrf_of(page.text), "end": "1"},
        )
        assert "The care contact has ended." in answer.text
        assert "No care contact is open." in answer.text
        assert visit.gp_browser.get(visit.patient_page).status_code == 403
