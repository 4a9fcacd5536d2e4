"""Staff (France's CPE card) acting for a professional: that professional's access, never more.

The actor is the one a staff token becomes (``auth.tokens.actor_from_claims`` with ``act``):
the professional's, carrying the staff member; the audit trail names both.
"""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditEvent, AuditOutcome
from carnet.auth import staff
from carnet.auth.errors import InvalidRequest, StaffNotAllowed
from carnet.auth.tokens import Principal, actor_from_claims
from carnet.clock import FrozenClock
from carnet.directory.models import Profession, Professional
from carnet.patients.models import Patient
from factories.actors import patient_actor, professional_actor
from factories.directory import make_professional
from factories.patients import make_patient


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock)


@pytest.fixture
def secretary(session: Session, clock: FrozenClock) -> Professional:
    return make_professional(session, clock, profession=Profession.STAFF, family="Muller")


def _for(doctor: Professional, secretary: Professional) -> Actor:
    return dataclasses.replace(professional_actor(doctor), staff_id=secretary.id)


class TestStaffActingForADoctor:
    def test_staff_read_where_the_doctor_may_and_the_audit_names_both(
        self, session: Session, clock: FrozenClock, patient: Patient, secretary: Professional
    ) -> None:
        doctor = make_professional(session, clock)
        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=doctor.id,
        )
        access_identification.read_demographics(
            session, _for(doctor, secretary), patient.id, clock=clock
        )
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == patient.id,
                AuditEvent.agent_subject == f"Practitioner/{secretary.id}",
            )
        ).one()
        assert event.outcome is AuditOutcome.ALLOWED
        assert event.agent_professional_id == doctor.id
        assert event.agent_profession == "general-practitioner"

    def test_staff_are_refused_where_the_doctor_is(
        self, session: Session, clock: FrozenClock, patient: Patient, secretary: Professional
    ) -> None:
        doctor = make_professional(session, clock)
        with pytest.raises(AccessDenied):
            access_identification.read_demographics(
                session, _for(doctor, secretary), patient.id, clock=clock
            )
        with pytest.raises(AccessDenied):
            access_identification.read_demographics(
                session, professional_actor(doctor), patient.id, clock=clock
            )

    def test_staff_never_break_the_glass_even_for_an_emergency_physician(
        self, session: Session, clock: FrozenClock, patient: Patient, secretary: Professional
    ) -> None:
        physician = make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        reason = "Unconscious patient brought in"
        with pytest.raises(AccessDenied):
            access_care.break_glass(
                session,
                open_dossier(
                    session,
                    _for(physician, secretary),
                    patient.id,
                    purposes.BREAK_GLASS,
                    clock=clock,
                ),
                reason=reason,
            )
        # The physician themself may: the refusal is staff's alone.
        access_care.break_glass(
            session,
            open_dossier(
                session,
                professional_actor(physician),
                patient.id,
                purposes.BREAK_GLASS,
                clock=clock,
            ),
            reason=reason,
        )

    def test_staff_on_their_own_reach_nobody(
        self, session: Session, clock: FrozenClock, patient: Patient, secretary: Professional
    ) -> None:
        # Even granted by the patient, a staff entry acting as itself sees nothing.
        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.EXTENDED,
            professional_id=secretary.id,
        )
        with pytest.raises(AccessDenied):
            access_identification.read_demographics(
                session, professional_actor(secretary), patient.id, clock=clock
            )


class TestAllowances:
    def test_act_for_needs_an_allowance_and_ends_with_it(
        self, session: Session, clock: FrozenClock, secretary: Professional
    ) -> None:
        doctor = make_professional(session, clock)
        signed_in = Principal(
            kind=professional_actor(secretary).kind,
            subject=str(secretary.id),
            assurance=professional_actor(secretary).assurance,
            professional_id=secretary.id,
            profession=Profession.STAFF.value,
        )
        with pytest.raises(StaffNotAllowed):
            staff.act_for(session, signed_in, doctor.id)
        staff.allow(
            session,
            staff_id=secretary.id,
            professional_id=doctor.id,
            granted_by="operator:test",
            clock=clock,
        )
        acting = staff.act_for(session, signed_in, doctor.id)
        assert (acting.professional_id, acting.staff_id) == (doctor.id, secretary.id)
        assert acting.profession == "general-practitioner"
        staff.revoke(session, staff_id=secretary.id, professional_id=doctor.id, clock=clock)
        with pytest.raises(StaffNotAllowed):
            staff.act_for(session, signed_in, doctor.id)

    def test_only_staff_act_and_only_for_professionals(
        self, session: Session, clock: FrozenClock, secretary: Professional
    ) -> None:
        doctor = make_professional(session, clock)
        with pytest.raises(InvalidRequest):
            staff.allow(
                session,
                staff_id=doctor.id,
                professional_id=doctor.id,
                granted_by="operator:test",
                clock=clock,
            )
        with pytest.raises(InvalidRequest):
            staff.allow(
                session,
                staff_id=secretary.id,
                professional_id=secretary.id,
                granted_by="operator:test",
                clock=clock,
            )

    def test_the_token_s_act_claim_becomes_the_actor_s_staff(
        self, session: Session, clock: FrozenClock, secretary: Professional
    ) -> None:
        doctor = make_professional(session, clock)
        actor = actor_from_claims(
            {
                "carnet_kind": "professional",
                "sub": str(doctor.id),
                "carnet_profession": "general-practitioner",
                "acr": "urn:carnet:loa:high",
                "jti": "j",
                "act": {"sub": f"Practitioner/{secretary.id}"},
            }
        )
        assert actor.professional_id == doctor.id
        assert actor.staff_id == secretary.id
        assert actor.agent.subject == f"Practitioner/{secretary.id}"
        assert actor.agent.professional_id == doctor.id
