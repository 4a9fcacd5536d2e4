"""The patient's rules cannot contradict themselves: one grant per grantee, none under a block.

Issue 21: a pharmacist ended up four times granted and once blocked, and granting a blocked
professional said "access granted" while giving nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.errors import ProfessionalBlocked
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.directory.models import Profession
from factories.actors import patient_actor
from factories.directory import make_organisation, make_professional
from factories.patients import make_patient


def test_granting_twice_changes_the_one_grant(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    me = patient_actor(patient)
    pharmacist = make_professional(session, clock, profession=Profession.PHARMACIST)
    first = access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=pharmacist.id,
    )
    clock.advance(dt.timedelta(minutes=5))
    until = clock.now() + dt.timedelta(days=30)
    second = access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.EXTENDED,
        professional_id=pharmacist.id,
        ends_at=until,
    )
    grants = access_rules.access_overview(
        session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
    ).grants
    assert second.id == first.id
    assert [(g.id, g.level, g.ends_at) for g in grants] == [(first.id, GrantLevel.EXTENDED, until)]


def test_an_organisation_is_granted_once_too(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    me = patient_actor(patient)
    lab = make_organisation(session, clock)
    for days in (10, 20):
        access_rules.grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.NORMAL,
            organisation_id=lab.id,
            ends_at=clock.now() + dt.timedelta(days=days),
        )
    grants = access_rules.access_overview(
        session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
    ).grants
    assert len(grants) == 1
    assert grants[0].ends_at == clock.now() + dt.timedelta(days=20)


def test_a_blocked_professional_is_not_granted_until_the_block_is_lifted(
    session: Session, clock: FrozenClock
) -> None:
    patient = make_patient(session, clock)
    me = patient_actor(patient)
    pharmacist = make_professional(session, clock, profession=Profession.PHARMACIST)
    access_rules.block_professional(
        session,
        open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
        pharmacist.id,
    )
    with pytest.raises(ProfessionalBlocked) as refused:
        access_rules.grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.NORMAL,
            professional_id=pharmacist.id,
        )
    assert refused.value.field == "professional"
    assert refused.value.professional_id == pharmacist.id
    assert (
        access_rules.access_overview(
            session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
        ).grants
        == []
    )
    access_rules.lift_block(
        session,
        open_dossier(session, me, patient.id, purposes.LIFT_BLOCK, clock=clock),
        pharmacist.id,
    )
    access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=pharmacist.id,
    )
    overview = access_rules.access_overview(
        session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
    )
    assert [g.professional_id for g in overview.grants] == [pharmacist.id]
    assert overview.blocks == []


def test_blocking_ends_the_professionals_grant(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    me = patient_actor(patient)
    pharmacist = make_professional(session, clock, profession=Profession.PHARMACIST)
    grant = access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=pharmacist.id,
    )
    access_rules.block_professional(
        session,
        open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
        pharmacist.id,
    )
    overview = access_rules.access_overview(
        session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
    )
    assert overview.grants == []
    assert [b.professional_id for b in overview.blocks] == [pharmacist.id]
    assert grant.revoked_at == clock.now()
    # Lifting the block brings back no forgotten access.
    access_rules.lift_block(
        session,
        open_dossier(session, me, patient.id, purposes.LIFT_BLOCK, clock=clock),
        pharmacist.id,
    )
    assert (
        access_rules.access_overview(
            session, open_dossier(session, me, patient.id, purposes.READ_ACCESS_RULES, clock=clock)
        ).grants
        == []
    )
