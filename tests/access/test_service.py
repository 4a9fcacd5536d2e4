"""Access services: the patient's controls and the professional's side, with their refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access import rules as access_rules
from carnet.access.actors import Actor, Assurance
from carnet.access.door import open_dossier
from carnet.access.errors import (
    AccessDenied,
    AccessRuleNotFound,
    InvalidAccessRule,
    StrongerAuthenticationRequired,
)
from carnet.access.models import (
    CareContactMethod,
    Grant,
    GrantLevel,
    RepresentationKind,
    TreatingDoctor,
)
from carnet.access.policy import DossierAccess
from carnet.clock import FrozenClock
from carnet.directory.models import Profession, Professional
from carnet.patients.models import Patient
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.directory import make_organisation, make_professional
from factories.patients import make_patient


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock)


@pytest.fixture
def me(patient: Patient) -> Actor:
    return patient_actor(patient)


@pytest.fixture
def gp(session: Session, clock: FrozenClock) -> Professional:
    return make_professional(session, clock)


def _access(session: Session, actor: Actor, patient: Patient, clock: FrozenClock) -> DossierAccess:
    return access_guard.dossier_access(session, actor, patient.id, now=clock.now())


class TestGrants:
    def test_grant_then_revoke_keeps_history(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        grant = access_rules.grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.EXTENDED,
            professional_id=gp.id,
        )
        assert (
            _access(session, professional_actor(gp), patient, clock).grant_level
            is GrantLevel.EXTENDED
        )
        clock.advance(dt.timedelta(hours=1))
        access_rules.revoke_grant(
            session,
            open_dossier(session, me, patient.id, purposes.REVOKE_ACCESS, clock=clock),
            grant.id,
        )
        assert _access(session, professional_actor(gp), patient, clock).grant_level is None
        stored = session.get(Grant, (patient.id, grant.id))
        assert stored is not None
        assert stored.revoked_at == clock.now()
        assert stored.revoked_by == me.subject
        with pytest.raises(AccessRuleNotFound):
            access_rules.revoke_grant(
                session,
                open_dossier(session, me, patient.id, purposes.REVOKE_ACCESS, clock=clock),
                grant.id,
            )

    def test_organisation_grant_needs_an_end_date(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        lab = make_organisation(session, clock)
        with pytest.raises(InvalidAccessRule) as caught:
            access_rules.grant_access(
                session,
                open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
                level=GrantLevel.NORMAL,
                organisation_id=lab.id,
            )
        assert caught.value.field == "ends_at"

    def test_grantee_must_be_one_professional_or_one_organisation(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        lab = make_organisation(session, clock)
        with pytest.raises(InvalidAccessRule) as caught:
            access_rules.grant_access(
                session,
                open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
                level=GrantLevel.NORMAL,
                professional_id=gp.id,
                organisation_id=lab.id,
            )
        assert caught.value.field == "grantee"

    def test_end_date_in_the_past(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        with pytest.raises(InvalidAccessRule):
            access_rules.grant_access(
                session,
                open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
                level=GrantLevel.NORMAL,
                professional_id=gp.id,
                ends_at=clock.now() - dt.timedelta(days=1),
            )

    def test_weak_patient_cannot_grant(
        self, session: Session, clock: FrozenClock, patient: Patient, gp: Professional
    ) -> None:
        weak = patient_actor(patient, assurance=Assurance.LOW)
        with pytest.raises(StrongerAuthenticationRequired):
            access_rules.grant_access(
                session,
                open_dossier(session, weak, patient.id, purposes.GRANT_ACCESS, clock=clock),
                level=GrantLevel.NORMAL,
                professional_id=gp.id,
            )
        assert session.scalar(select(func.count()).select_from(Grant)) == 0


class TestBlocksAndDesignations:
    def test_block_is_idempotent_and_can_be_lifted(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        first = access_rules.block_professional(
            session,
            open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
            gp.id,
        )
        assert (
            access_rules.block_professional(
                session,
                open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
                gp.id,
            ).id
            == first.id
        )
        assert _access(session, professional_actor(gp), patient, clock).blocked
        access_rules.lift_block(
            session, open_dossier(session, me, patient.id, purposes.LIFT_BLOCK, clock=clock), gp.id
        )
        assert not _access(session, professional_actor(gp), patient, clock).blocked
        with pytest.raises(AccessRuleNotFound):
            access_rules.lift_block(
                session,
                open_dossier(session, me, patient.id, purposes.LIFT_BLOCK, clock=clock),
                gp.id,
            )

    def test_new_treating_doctor_ends_the_previous(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        other = make_professional(session, clock, family="Other")
        access_rules.designate_treating_doctor(
            session,
            open_dossier(session, me, patient.id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock),
            gp.id,
        )
        access_rules.designate_treating_doctor(
            session,
            open_dossier(session, me, patient.id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock),
            other.id,
        )
        rows = list(session.scalars(select(TreatingDoctor).order_by(TreatingDoctor.designated_at)))
        assert [row.ended_at is None for row in rows] == [False, True]
        assert not _access(session, professional_actor(gp), patient, clock).treating_doctor

    def test_treating_doctor_must_be_a_doctor(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        nurse = make_professional(session, clock, profession=Profession.NURSE)
        with pytest.raises(InvalidAccessRule, match="general practitioner"):
            access_rules.designate_treating_doctor(
                session,
                open_dossier(
                    session, me, patient.id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock
                ),
                nurse.id,
            )


class TestCareContacts:
    def test_code_opens_a_window_once(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        code = access_care.issue_care_contact_code(
            session,
            open_dossier(session, me, patient.id, purposes.ISSUE_CARE_CONTACT_CODE, clock=clock),
        )
        contact = access_care.record_care_contact(
            session,
            open_dossier(
                session,
                professional_actor(gp),
                patient.id,
                purposes.RECORD_CARE_CONTACT,
                clock=clock,
            ),
            method=CareContactMethod.CODE,
            code=code,
        )
        assert contact.window_ends_at == clock.now() + dt.timedelta(days=90)
        with pytest.raises(InvalidAccessRule, match="wrong or expired"):
            access_care.record_care_contact(
                session,
                open_dossier(
                    session,
                    professional_actor(gp),
                    patient.id,
                    purposes.RECORD_CARE_CONTACT,
                    clock=clock,
                ),
                method=CareContactMethod.CODE,
                code=code,
            )

    def test_expired_or_wrong_code(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        code = access_care.issue_care_contact_code(
            session,
            open_dossier(session, me, patient.id, purposes.ISSUE_CARE_CONTACT_CODE, clock=clock),
        )
        with pytest.raises(InvalidAccessRule) as caught:
            access_care.record_care_contact(
                session,
                open_dossier(
                    session,
                    professional_actor(gp),
                    patient.id,
                    purposes.RECORD_CARE_CONTACT,
                    clock=clock,
                ),
                method=CareContactMethod.CODE,
                code="00000000" if code != "00000000" else "11111111",
            )
        assert caught.value.field == "code"
        clock.advance(dt.timedelta(minutes=16))
        with pytest.raises(InvalidAccessRule):
            access_care.record_care_contact(
                session,
                open_dossier(
                    session,
                    professional_actor(gp),
                    patient.id,
                    purposes.RECORD_CARE_CONTACT,
                    clock=clock,
                ),
                method=CareContactMethod.CODE,
                code=code,
            )

    def test_pharmacists_get_three_days_and_the_patient_may_change_it(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        pharmacist = professional_actor(
            make_professional(session, clock, profession=Profession.PHARMACIST)
        )
        contact = access_care.record_care_contact(
            session,
            open_dossier(
                session, pharmacist, patient.id, purposes.RECORD_CARE_CONTACT, clock=clock
            ),
            method=CareContactMethod.CARD,
        )
        assert contact.window_ends_at == clock.now() + dt.timedelta(days=3)
        access_rules.set_preferences(
            session,
            open_dossier(session, me, patient.id, purposes.SET_ACCESS_PREFERENCES, clock=clock),
            access_guard.Preferences(care_contact_days=365),
        )
        longer = access_care.record_care_contact(
            session,
            open_dossier(
                session, pharmacist, patient.id, purposes.RECORD_CARE_CONTACT, clock=clock
            ),
            method=CareContactMethod.CARD,
        )
        assert longer.window_ends_at == clock.now() + dt.timedelta(days=365)

    def test_patient_may_shorten_extend_or_end_a_window(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        doctor = professional_actor(gp)
        contact = access_care.record_care_contact(
            session,
            open_dossier(session, doctor, patient.id, purposes.RECORD_CARE_CONTACT, clock=clock),
            method=CareContactMethod.CARD,
        )
        longer = clock.now() + dt.timedelta(days=300)
        access_care.adjust_care_contact(
            session,
            open_dossier(session, me, patient.id, purposes.ADJUST_CARE_CONTACT, clock=clock),
            contact.id,
            ends_at=longer,
        )
        assert contact.window_ends_at == longer
        with pytest.raises(InvalidAccessRule) as caught:
            access_care.adjust_care_contact(
                session,
                open_dossier(session, me, patient.id, purposes.ADJUST_CARE_CONTACT, clock=clock),
                contact.id,
                ends_at=clock.now() + dt.timedelta(days=366),
            )
        assert caught.value.field == "ends_at"
        with pytest.raises(AccessDenied):
            access_care.adjust_care_contact(
                session,
                open_dossier(
                    session, doctor, patient.id, purposes.ADJUST_CARE_CONTACT, clock=clock
                ),
                contact.id,
                ends_at=longer,
            )
        access_care.adjust_care_contact(
            session,
            open_dossier(session, me, patient.id, purposes.ADJUST_CARE_CONTACT, clock=clock),
            contact.id,
            ends_at=clock.now(),
        )
        assert not _access(session, doctor, patient, clock).care_contact_open
        with pytest.raises(AccessRuleNotFound):
            access_care.adjust_care_contact(
                session,
                open_dossier(session, me, patient.id, purposes.ADJUST_CARE_CONTACT, clock=clock),
                contact.id,
                ends_at=longer,
            )

    def test_patient_may_switch_care_contacts_off(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        access_care.record_care_contact(
            session,
            open_dossier(
                session,
                professional_actor(gp),
                patient.id,
                purposes.RECORD_CARE_CONTACT,
                clock=clock,
            ),
            method=CareContactMethod.CARD,
        )
        access_rules.set_preferences(
            session,
            open_dossier(session, me, patient.id, purposes.SET_ACCESS_PREFERENCES, clock=clock),
            access_guard.Preferences(care_contacts_enabled=False),
        )
        assert not _access(session, professional_actor(gp), patient, clock).care_contact_open
        with pytest.raises(InvalidAccessRule, match="switched care-contact access off"):
            access_care.record_care_contact(
                session,
                open_dossier(
                    session,
                    professional_actor(gp),
                    patient.id,
                    purposes.RECORD_CARE_CONTACT,
                    clock=clock,
                ),
                method=CareContactMethod.CARD,
            )

    def test_card_contact_needs_a_card_sign_in(
        self, session: Session, clock: FrozenClock, patient: Patient, gp: Professional
    ) -> None:
        with pytest.raises(InvalidAccessRule, match="professional card"):
            access_care.record_care_contact(
                session,
                open_dossier(
                    session,
                    professional_actor(gp, assurance=Assurance.SUBSTANTIAL),
                    patient.id,
                    purposes.RECORD_CARE_CONTACT,
                    clock=clock,
                ),
                method=CareContactMethod.CARD,
            )

    @pytest.mark.parametrize(
        ("preferences", "field"),
        [
            (access_guard.Preferences(care_contact_days=366), "care_contact_days"),
            (access_guard.Preferences(care_contact_days=0), "care_contact_days"),
            (
                access_guard.Preferences(emergency_opposed=True, emergency_widened=True),
                "emergency_widened",
            ),
        ],
    )
    def test_invalid_preferences(
        self,
        session: Session,
        clock: FrozenClock,
        patient: Patient,
        me: Actor,
        preferences: access_guard.Preferences,
        field: str,
    ) -> None:
        with pytest.raises(InvalidAccessRule) as caught:
            access_rules.set_preferences(
                session,
                open_dossier(session, me, patient.id, purposes.SET_ACCESS_PREFERENCES, clock=clock),
                preferences,
            )
        assert caught.value.field == field
        assert access_rules.current_preferences(session, patient.id) == access_guard.Preferences()


class TestBreakGlass:
    def test_reason_is_required(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        doctor = professional_actor(
            make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        )
        with pytest.raises(InvalidAccessRule) as caught:
            access_care.break_glass(
                session,
                open_dossier(session, doctor, patient.id, purposes.BREAK_GLASS, clock=clock),
                reason=" urgent ",
            )
        assert caught.value.field == "reason"

    def test_lasts_a_bounded_time(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        doctor = professional_actor(
            make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        )
        opened = access_care.break_glass(
            session,
            open_dossier(session, doctor, patient.id, purposes.BREAK_GLASS, clock=clock),
            reason="Cardiac arrest in the street",
        )
        assert opened.expires_at == clock.now() + dt.timedelta(hours=24)
        assert _access(session, doctor, patient, clock).emergency_open
        clock.advance(dt.timedelta(hours=24))
        assert not _access(session, doctor, patient, clock).emergency_open

    def test_unknown_dossier_looks_like_a_refusal(
        self, session: Session, clock: FrozenClock
    ) -> None:
        import uuid

        doctor = professional_actor(
            make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        )
        with pytest.raises(AccessDenied, match="No such dossier or document"):
            access_care.break_glass(
                session,
                open_dossier(session, doctor, uuid.uuid4(), purposes.BREAK_GLASS, clock=clock),
                reason="Unconscious, no papers",
            )


class TestRepresentation:
    def test_parent_represents_a_minor_until_majority(
        self, session: Session, clock: FrozenClock
    ) -> None:
        child = make_patient(session, clock, given="Tom", birth_date=dt.date(2015, 3, 1))
        parent = make_patient(session, clock, given="Anne", birth_date=dt.date(1985, 1, 1))
        link = access_representation.record_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            parent.id,
            kind=RepresentationKind.PARENT,
        )
        assert link.ends_at == dt.datetime(2033, 3, 1, tzinfo=dt.UTC)
        assert access_representation.represented_patients(session, parent.id, now=clock.now()) == [
            child.id
        ]
        as_parent = patient_actor(parent, acting_for=child)
        assert _access(session, as_parent, child, clock).is_representative
        clock.advance(dt.timedelta(days=365 * 8))
        assert access_representation.represented_patients(session, parent.id, now=clock.now()) == []

    def test_adult_has_no_parent_representative(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        parent = make_patient(session, clock, given="Anne", birth_date=dt.date(1950, 1, 1))
        with pytest.raises(InvalidAccessRule, match="of age"):
            access_representation.record_representation(
                session,
                open_dossier(
                    session,
                    operator_actor(),
                    patient.id,
                    purposes.RECORD_REPRESENTATION,
                    clock=clock,
                ),
                parent.id,
                kind=RepresentationKind.PARENT,
            )

    def test_only_the_agency_records_representations(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        other = make_patient(session, clock, given="Eve")
        with pytest.raises(AccessDenied):
            access_representation.record_representation(
                session,
                open_dossier(session, me, other.id, purposes.RECORD_REPRESENTATION, clock=clock),
                patient.id,
                kind=RepresentationKind.GUARDIAN,
            )
        with pytest.raises(InvalidAccessRule):
            access_representation.record_representation(
                session,
                open_dossier(
                    session,
                    operator_actor(),
                    patient.id,
                    purposes.RECORD_REPRESENTATION,
                    clock=clock,
                ),
                patient.id,
                kind=RepresentationKind.GUARDIAN,
            )


class TestOverview:
    def test_lists_the_rules_in_force(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        revoked = access_rules.grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.NORMAL,
            professional_id=gp.id,
        )
        access_rules.revoke_grant(
            session,
            open_dossier(session, me, patient.id, purposes.REVOKE_ACCESS, clock=clock),
            revoked.id,
        )
        live = access_rules.grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.EXTENDED,
            professional_id=gp.id,
        )
        access_rules.designate_treating_doctor(
            session,
            open_dossier(session, me, patient.id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock),
            gp.id,
        )
        blocked = make_professional(session, clock, family="Blocked")
        access_rules.block_professional(
            session,
            open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
            blocked.id,
        )
        overview = access_rules.access_overview(
            session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
        )
        assert [grant.id for grant in overview.grants] == [live.id]
        assert overview.treating_doctor is not None
        assert overview.treating_doctor.professional_id == gp.id
        assert [block.professional_id for block in overview.blocks] == [blocked.id]
        assert overview.preferences == access_guard.Preferences()

    def test_professionals_cannot_see_it(
        self, session: Session, clock: FrozenClock, patient: Patient, gp: Professional
    ) -> None:
        with pytest.raises(AccessDenied):
            access_rules.access_overview(
                session,
                open_dossier(
                    session,
                    professional_actor(gp),
                    patient.id,
                    purposes.READ_ACCESS_RULES,
                    clock=clock,
                ),
            )
