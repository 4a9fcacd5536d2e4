"""The patient portal: who has access, the access history, the notifications."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, ProfessionalBlocked
from carnet.access.models import Block, Grant, GrantLevel
from carnet.audit.models import AuditAction, AuditEvent
from carnet.clock import FrozenClock
from carnet.directory.models import Profession, Professional
from carnet.documents import reading
from carnet.notifications import internal as notifications_internal
from carnet.notifications import service as notices
from carnet.notifications.models import NewDocuments
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import PatientLogin, Served, make_patient_login
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.portal import csrf_of, sign_in_patient

ACCESS = "/portal/patient/access"


def _signed_in(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> PatientLogin:
    login = make_patient_login(session, clock, wrapper)
    sign_in_patient(web.client, login, clock)
    return login


def _professional(
    session: Session,
    clock: FrozenClock,
    family: str,
    profession: Profession = Profession.GENERAL_PRACTITIONER,
) -> Professional:
    organisation = make_organisation(session, clock, name=f"Cabinet {family}")
    return make_professional(
        session,
        clock,
        organisation_id=organisation.id,
        family=family,
        profession=profession,
        specialty="cardiology" if profession is Profession.SPECIALIST else None,
    )


def _post(web: Served, path: str, page: str, **fields: str) -> str:
    """Submit a form of ``page`` and follow to where it leads; the page's text."""
    answer = web.client.post(path, data={"csrf": csrf_of(page), **fields})
    assert answer.status_code == 200, answer.text
    return answer.text


class TestWhoHasAccess:
    def test_a_granted_professional_appears_and_can_then_read_the_dossier(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Kieffer")
        found = web.client.get(ACCESS, params={"q": "kief"})
        assert found.status_code == 200
        assert "Grant access to Marc Kieffer" in found.text
        page = _post(
            web, "/portal/patient/access/grants", found.text,
            professional=str(doctor.id), level="extended", ends="2026-12-31",
        )  # fmt: skip
        assert "Access granted." in page
        granted = page.split('id="grants-heading"')[1].split("</section>")[0]
        assert "Marc Kieffer" in granted
        assert "Extended" in granted
        [grant] = session.scalars(select(Grant).where(Grant.patient_id == login.patient.id))
        assert grant.level is GrantLevel.EXTENDED
        # Access lasts through the whole of the end date, in the portal's time zone.
        assert grant.ends_at == dt.datetime(2026, 12, 31, 23, 0, tzinfo=dt.UTC)
        # The grant is a real one: the doctor now reads the dossier.
        reading.list_documents(
            session,
            open_dossier(
                session,
                professional_actor(doctor),
                login.patient.id,
                purposes.FIND_DOCUMENTS,
                clock=clock,
            ),
        )

    def test_finds_a_professional_by_their_identifier(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Hoffmann")
        found = web.client.get(ACCESS, params={"q": doctor.identifier_value})
        assert "Grant access to Marc Hoffmann" in found.text
        nobody = web.client.get(ACCESS, params={"q": "Zzyzx"})
        assert "Nobody in the directory matches" in nobody.text

    def test_revoking_a_grant_ends_the_professionals_access(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Kieffer")
        access_rules.grant_access(
            session,
            open_dossier(
                session,
                patient_actor(login.patient),
                login.patient.id,
                purposes.GRANT_ACCESS,
                clock=clock,
            ),
            level=GrantLevel.NORMAL,
            professional_id=doctor.id,
        )
        page = web.client.get(ACCESS)
        [grant] = session.scalars(select(Grant).where(Grant.patient_id == login.patient.id))
        after = _post(web, f"/portal/patient/access/grants/{grant.id}/revoke", page.text)
        assert "Access revoked." in after
        assert "You have granted access to nobody." in after
        session.refresh(grant)
        assert grant.revoked_at == clock.now()
        with pytest.raises(AccessDenied):
            access_identification.read_demographics(
                session, professional_actor(doctor), login.patient.id, clock=clock
            )

    def test_blocking_bars_a_professional_and_lifting_the_block_undoes_it(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Reuter")
        found = web.client.get(ACCESS, params={"q": "Reuter"})
        page = _post(web, "/portal/patient/access/blocks", found.text, professional=str(doctor.id))
        assert "The professional is blocked from your dossier." in page
        blocked = page.split('id="blocks-heading"')[1].split("</section>")[0]
        assert "Marc Reuter" in blocked
        [block] = session.scalars(select(Block).where(Block.patient_id == login.patient.id))
        assert block.lifted_at is None
        # While the block stands the patient cannot grant access (the portal asks to lift it).
        with pytest.raises(ProfessionalBlocked):
            access_rules.grant_access(
                session,
                open_dossier(
                    session,
                    patient_actor(login.patient),
                    login.patient.id,
                    purposes.GRANT_ACCESS,
                    clock=clock,
                ),
                level=GrantLevel.NORMAL,
                professional_id=doctor.id,
            )
        with pytest.raises(AccessDenied):
            access_identification.read_demographics(
                session, professional_actor(doctor), login.patient.id, clock=clock
            )
        lifted = _post(web, f"/portal/patient/access/blocks/{block.id}/lift", page)
        assert "The block is lifted." in lifted
        assert "You have blocked nobody." in lifted
        access_rules.grant_access(
            session,
            open_dossier(
                session,
                patient_actor(login.patient),
                login.patient.id,
                purposes.GRANT_ACCESS,
                clock=clock,
            ),
            level=GrantLevel.NORMAL,
            professional_id=doctor.id,
        )
        access_identification.read_demographics(
            session, professional_actor(doctor), login.patient.id, clock=clock
        )

    def test_granting_a_blocked_professional_asks_to_lift_the_block_first(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        pharmacist = _professional(session, clock, "Gonçalves", Profession.PHARMACIST)
        found = web.client.get(ACCESS, params={"q": "goncalves"})
        assert "Block Marc Gonçalves" in found.text
        page = _post(
            web, "/portal/patient/access/blocks", found.text, professional=str(pharmacist.id)
        )
        # A form from before the block: the grant is not made, the page asks.
        asked = web.client.post(
            "/portal/patient/access/grants",
            data={"csrf": csrf_of(page), "professional": str(pharmacist.id), "level": "normal"},
        )
        assert asked.status_code == 409
        assert "Marc Gonçalves is blocked from your dossier" in asked.text
        assert "Access granted." not in asked.text
        me = patient_actor(login.patient)
        assert (
            access_rules.access_overview(
                session,
                open_dossier(
                    session, me, login.patient.id, purposes.READ_ACCESS_RULES, clock=clock
                ),
            ).grants
            == []
        )
        granted = _post(
            web,
            "/portal/patient/access/grants",
            asked.text,
            professional=str(pharmacist.id),
            level="normal",
            lift_block="1",
        )
        assert "Access granted." in granted
        overview = access_rules.access_overview(
            session,
            open_dossier(session, me, login.patient.id, purposes.READ_ACCESS_RULES, clock=clock),
        )
        assert overview.blocks == []
        assert [g.professional_id for g in overview.grants] == [pharmacist.id]

    def test_granting_again_changes_the_grant_and_each_button_names_its_person(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Meyer")
        found = web.client.get(ACCESS, params={"q": "marc meyer"})
        page = _post(
            web, "/portal/patient/access/grants", found.text, professional=str(doctor.id),
            level="normal", q="marc meyer",
        )  # fmt: skip
        assert "Change the access of Marc Meyer" in page  # back on the search, now granted
        page = _post(
            web, "/portal/patient/access/grants", page, professional=str(doctor.id),
            level="extended",
        )  # fmt: skip
        me = patient_actor(login.patient)
        grants = access_rules.access_overview(
            session,
            open_dossier(session, me, login.patient.id, purposes.READ_ACCESS_RULES, clock=clock),
        ).grants
        assert [(g.professional_id, g.level) for g in grants] == [(doctor.id, GrantLevel.EXTENDED)]
        assert "Revoke the access of Marc Meyer" in page

    def test_designates_the_treating_doctor_and_ends_the_designation(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Wagner")
        found = web.client.get(ACCESS, params={"q": "Wagner"})
        page = _post(
            web, "/portal/patient/access/treating-doctor", found.text, professional=str(doctor.id)
        )
        assert "Your treating doctor is designated." in page
        overview = access_rules.access_overview(
            session,
            open_dossier(
                session,
                patient_actor(login.patient),
                login.patient.id,
                purposes.READ_ACCESS_RULES,
                clock=clock,
            ),
        )
        assert overview.treating_doctor is not None
        assert overview.treating_doctor.professional_id == doctor.id
        ended = _post(
            web, f"/portal/patient/access/treating-doctor/{overview.treating_doctor.id}/end", page
        )
        assert "You have not designated a treating doctor." in ended

    def test_a_refused_rule_is_said_on_the_page_and_nothing_changes(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        nurse = _professional(session, clock, "Lang", Profession.NURSE)
        found = web.client.get(ACCESS, params={"q": "Lang"})
        # Only doctors are offered; a forged form is refused by the service, with its reason.
        assert "Make my treating doctor" not in found.text
        page = _post(
            web, "/portal/patient/access/treating-doctor", found.text, professional=str(nurse.id)
        )
        assert "general practitioner or a specialist" in page
        overview = access_rules.access_overview(
            session,
            open_dossier(
                session,
                patient_actor(login.patient),
                login.patient.id,
                purposes.READ_ACCESS_RULES,
                clock=clock,
            ),
        )
        assert overview.treating_doctor is None

    def test_the_patient_opposes_emergency_access_then_withdraws_the_opposition(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        urgentist = _professional(session, clock, "Urgence", Profession.EMERGENCY_PHYSICIAN)
        page = web.client.get(ACCESS)
        opposed = _post(web, "/portal/patient/access/emergency", page.text, choice="oppose")
        assert "You oppose emergency access" in opposed
        assert access_rules.current_preferences(session, login.patient.id).emergency_opposed
        with pytest.raises(AccessDenied):
            access_care.break_glass(
                session,
                open_dossier(
                    session,
                    professional_actor(urgentist),
                    login.patient.id,
                    purposes.BREAK_GLASS,
                    clock=clock,
                ),
                reason="Unconscious after a road accident",
            )
        clock.advance(dt.timedelta(minutes=5))
        choice = access_rules.preferences_in_force(session, login.patient.id)
        assert choice is not None
        assert f'name="preferences" value="{choice.id}"' in opposed
        withdrawn = _post(
            web, "/portal/patient/access/emergency", opposed,
            choice="withdraw", preferences=str(choice.id),
        )  # fmt: skip
        assert "Your opposition is withdrawn" in withdrawn
        assert not access_rules.current_preferences(session, login.patient.id).emergency_opposed

    def test_an_open_emergency_access_is_shown_with_its_reason(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        urgentist = _professional(session, clock, "Urgence", Profession.EMERGENCY_PHYSICIAN)
        access_care.break_glass(
            session,
            open_dossier(
                session,
                professional_actor(urgentist),
                login.patient.id,
                purposes.BREAK_GLASS,
                clock=clock,
            ),
            reason="Unconscious after a road accident",
        )
        page = web.client.get(ACCESS)
        assert "Emergency access open" in page.text
        assert "Unconscious after a road accident" in page.text
        assert 'class="card emergency"' in page.text

    def test_a_grant_without_the_csrf_token_is_refused(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        doctor = _professional(session, clock, "Kieffer")
        answer = web.client.post(
            "/portal/patient/access/grants", data={"professional": str(doctor.id)}
        )
        assert answer.status_code == 403
        assert (
            session.scalars(select(Grant).where(Grant.patient_id == login.patient.id)).all() == []
        )


class TestHistory:
    def test_shows_who_consulted_the_dossier_newest_first(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        author = _professional(session, clock, "Schmit")
        reader = _professional(session, clock, "Kieffer", Profession.SPECIALIST)
        document = make_document(
            session, store, clock, actor=professional_actor(author), patient_id=login.patient.id
        )
        access_rules.grant_access(
            session,
            open_dossier(
                session,
                patient_actor(login.patient),
                login.patient.id,
                purposes.GRANT_ACCESS,
                clock=clock,
            ),
            level=GrantLevel.NORMAL,
            professional_id=reader.id,
        )
        clock.advance(dt.timedelta(minutes=10))
        reading.get_document(
            session,
            open_dossier(
                session,
                professional_actor(reader),
                login.patient.id,
                purposes.READ_DOCUMENTS,
                clock=clock,
            ),
            document.id,
        )
        page = web.client.get("/portal/patient/history")
        assert page.status_code == 200
        assert page.text.index("Marc Kieffer") < page.text.index("Marc Schmit")
        assert "Specialist · Cabinet Kieffer" in page.text
        assert "Read the description of a document" in page.text
        assert "Added a document" in page.text
        assert f'href="/portal/patient/documents/{document.id}"' in page.text
        # Reading the history is itself recorded, on the patient's own dossier.
        assert session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == login.patient.id,
                AuditEvent.action == AuditAction.AUDIT_SEARCH,
                AuditEvent.agent_subject == f"Patient/{login.patient.id}",
            )
        ).first()

    def test_an_emergency_access_stands_out(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        urgentist = _professional(session, clock, "Urgence", Profession.EMERGENCY_PHYSICIAN)
        access_care.break_glass(
            session,
            open_dossier(
                session,
                professional_actor(urgentist),
                login.patient.id,
                purposes.BREAK_GLASS,
                clock=clock,
            ),
            reason="Unconscious after a road accident",
        )
        page = web.client.get("/portal/patient/history")
        assert '<tr class="emergency">' in page.text
        assert 'class="badge badge-danger">Emergency access' in page.text
        assert "Reason given: Unconscious after a road accident" in page.text

    def test_pages_back_from_the_newest_events(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        author = professional_actor(_professional(session, clock, "Schmit"))
        for number in range(30):
            clock.advance(dt.timedelta(seconds=10))
            make_document(
                session, store, clock, actor=author, patient_id=login.patient.id,
                title=f"Bilan {number}",
            )  # fmt: skip
        newest = web.client.get("/portal/patient/history")
        assert newest.text.count("Added a document") == 25
        assert 'href="/portal/patient/history?page=2" rel="next">Older accesses' in newest.text
        assert "Newer accesses" not in newest.text
        older = web.client.get("/portal/patient/history", params={"page": "2"})
        assert older.text.count("Added a document") == 5
        assert 'href="/portal/patient/history" rel="prev">Newer accesses' in older.text
        assert "Older accesses" not in older.text

    def test_the_patients_own_consultations_are_shown_on_request(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        author = professional_actor(_professional(session, clock, "Schmit"))
        document = make_document(session, store, clock, actor=author, patient_id=login.patient.id)
        web.client.get(f"/portal/patient/documents/{document.id}")
        others = web.client.get("/portal/patient/history")
        assert "Marc Schmit" in others.text
        assert "Opened a document" not in others.text
        mine = web.client.get("/portal/patient/history", params={"mine": "1"})
        assert "Opened a document" in mine.text
        assert '<span class="muted">You</span>' in mine.text
        assert "Hide my own consultations" in mine.text


class TestNotifications:
    def test_an_emergency_notice_stands_out_and_is_marked_read(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        urgentist = _professional(session, clock, "Urgence", Profession.EMERGENCY_PHYSICIAN)
        access_care.break_glass(
            session,
            open_dossier(
                session,
                professional_actor(urgentist),
                login.patient.id,
                purposes.BREAK_GLASS,
                clock=clock,
            ),
            reason="Unconscious after a road accident",
        )
        home = web.client.get("/portal/patient")
        assert "1 unread notification" in home.text
        page = web.client.get("/portal/patient/notifications")
        assert '<li class="card emergency">' in page.text
        assert "Unconscious after a road accident" in page.text
        [notice] = notifications_internal.inbox(session, patient_id=login.patient.id)
        after = _post(web, f"/portal/patient/notifications/{notice.id}/read", page.text)
        assert "Marked as read." in after
        assert "Mark as read" not in after
        session.refresh(notice)
        assert notice.read_at == clock.now()
        assert "No unread notification." in web.client.get("/portal/patient").text

    def test_the_patient_chooses_how_they_are_told(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        page = web.client.get("/portal/patient/notifications")
        assert "No notification yet." in page.text
        saved = _post(
            web, "/portal/patient/notifications/preferences", page.text, new_documents="digest"
        )
        assert "Your preferences are saved." in saved
        chosen = notifications_internal.preferences(session, login.patient.id)
        assert chosen.new_documents is NewDocuments.DIGEST
        assert chosen.email is False
        refused = _post(
            web, "/portal/patient/notifications/preferences", saved, new_documents="hourly"
        )
        assert "Choose immediate, digest or off" in refused
        assert (
            notifications_internal.preferences(session, login.patient.id).new_documents
            is NewDocuments.DIGEST
        )

    def test_another_patients_notice_cannot_be_marked(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        other = make_patient_login(session, clock, wrapper).patient
        theirs = notices.notify_first_access(
            session, patient_id=other.id, professional_name="Marc Schmit", clock=clock
        )
        page = web.client.get("/portal/patient/notifications")
        answer = web.client.post(
            f"/portal/patient/notifications/{theirs.id}/read", data={"csrf": csrf_of(page.text)}
        )
        assert answer.status_code == 404
        session.refresh(theirs)
        assert theirs.read_at is None
