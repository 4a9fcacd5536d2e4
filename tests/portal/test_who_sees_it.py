"""The patient hides one document from named professionals, and shows it to them again.

Through ``access.masks`` at the door: the masked professional no longer finds the document, the
others still do, and each change is on the dossier's audit trail naming the document.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import DocumentMask, GrantLevel
from carnet.audit.models import AuditAction, AuditEvent
from carnet.clock import FrozenClock
from carnet.directory.models import Professional
from carnet.documents import reading
from carnet.documents.models import Document
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import PatientLogin, Served, make_patient_login
from factories.directory import make_professional
from factories.documents import make_document
from factories.portal import csrf_of, sign_in_patient


@dataclass
class Setting:
    web: Served
    session: Session
    clock: FrozenClock
    login: PatientLogin
    colleague: Professional
    doctor: Professional
    document: Document

    @property
    def page(self) -> str:
        return f"/portal/patient/documents/{self.document.id}/who-sees-it"

    def sees(self, professional: Professional) -> bool:
        found = reading.list_documents(
            self.session,
            open_dossier(
                self.session,
                professional_actor(professional),
                self.login.patient.id,
                purposes.FIND_DOCUMENTS,
                clock=self.clock,
            ),
            reading.DocumentFilter(),
        )
        return self.document.id in {d.id for d in found.documents}

    def post(self, path: str, **fields: str) -> str:
        page = self.web.client.get(self.page)
        answer = self.web.client.post(path, data={"csrf": csrf_of(page.text), **fields})
        assert answer.status_code == 200, answer.text
        return answer.text


def _grant(session: Session, clock: FrozenClock, patient: Actor, whom: Professional) -> None:
    assert patient.acting_for is not None
    access_rules.grant_access(
        session,
        open_dossier(session, patient, patient.acting_for, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=whom.id,
    )


@pytest.fixture
def setting(
    web: Served,
    session: Session,
    clock: FrozenClock,
    store: FilesystemDocumentStore,
    wrapper: MasterKeyWrapper,
) -> Setting:
    login = make_patient_login(session, clock, wrapper)
    colleague = make_professional(session, clock, family="Collègue")
    doctor = make_professional(session, clock, family="Docteur")
    author = make_professional(session, clock, family="Kieffer")
    patient = patient_actor(login.patient)
    for whom in (colleague, doctor):
        _grant(session, clock, patient, whom)
    document = make_document(
        session, store, clock, actor=professional_actor(author), patient_id=login.patient.id
    )
    sign_in_patient(web.client, login, clock)
    return Setting(web, session, clock, login, colleague, doctor, document)


class TestWhoSeesIt:
    def test_the_viewer_links_to_the_choice(self, setting: Setting) -> None:
        viewer = setting.web.client.get(f"/portal/patient/documents/{setting.document.id}")
        assert f'href="{setting.page}"' in viewer.text

    def test_the_page_lists_who_may_open_the_dossier_but_not_the_author(
        self, setting: Setting
    ) -> None:
        page = setting.web.client.get(setting.page)
        assert page.status_code == 200
        assert "Hide it from Marc Collègue" in page.text
        assert "Hide it from Marc Docteur" in page.text
        assert "Kieffer" not in page.text

    def test_hiding_from_one_keeps_it_for_the_other_and_showing_again_restores_it(
        self, setting: Setting
    ) -> None:
        page = setting.post(setting.page, professional=str(setting.colleague.id))
        assert "Marc Collègue no longer sees this document." in page
        assert "Show it to Marc Collègue again" in page
        assert "Hide it from Marc Collègue" not in page
        assert not setting.sees(setting.colleague)
        assert setting.sees(setting.doctor)
        # Twice is still one mask.
        setting.post(setting.page, professional=str(setting.colleague.id))
        [mask] = setting.session.scalars(
            select(DocumentMask).where(DocumentMask.document_id == setting.document.id)
        ).all()

        page = setting.post(f"{setting.page}/{mask.id}/lift")
        assert "Marc Collègue may see this document again." in page
        assert setting.sees(setting.colleague)
        events = setting.session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == setting.login.patient.id,
                AuditEvent.action == AuditAction.MASK,
            )
        ).all()
        assert len(events) == 2
        assert all(str(setting.document.id) in e.entity_ids for e in events)

    def test_an_unknown_professional_or_mask_is_said_and_nothing_changes(
        self, setting: Setting
    ) -> None:
        page = setting.post(setting.page, professional=str(uuid.uuid4()))
        assert "Hide it from Marc Collègue" in page
        page = setting.post(f"{setting.page}/{uuid.uuid4()}/lift")
        assert "No such mask in force in this dossier." in page
        assert setting.sees(setting.colleague)

    def test_a_document_of_another_dossier_is_not_found(self, setting: Setting) -> None:
        page = setting.web.client.get(f"/portal/patient/documents/{uuid.uuid4()}/who-sees-it")
        assert page.status_code == 404
