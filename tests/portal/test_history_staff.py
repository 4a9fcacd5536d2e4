"""A secretary's access in the patient's history names both: "X (secretary) for Dr Y"."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.orm import Session

from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import FrozenClock
from carnet.directory.models import Profession
from carnet.storage import MasterKeyWrapper
from factories.actors import professional_actor
from factories.auth import Served, make_patient_login
from factories.directory import make_professional
from factories.portal import sign_in_patient


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "Marc Muller (secretary) for Marc Weber"),
        ("fr", "Marc Muller (secrétariat) pour Marc Weber"),
        ("de", "Marc Muller (Praxispersonal) für Marc Weber"),
    ],
)
def test_a_staff_member_s_access_names_them_and_the_doctor_they_acted_for(
    web: Served,
    session: Session,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    language: str,
    expected: str,
) -> None:
    login = make_patient_login(session, clock, wrapper)
    sign_in_patient(web.client, login, clock)
    doctor = make_professional(session, clock, family="Weber")
    secretary = make_professional(session, clock, family="Muller", profession=Profession.STAFF)
    # As ``auth.staff.act_for`` makes it: the doctor's access, the secretary acting.
    acting = dataclasses.replace(professional_actor(doctor), staff_id=secretary.id)
    audit_trail.record(
        session,
        agent=acting.agent,
        action=AuditAction.READ,
        clock=clock,
        patient_id=login.patient.id,
    )
    web.client.cookies.set("carnet_lang", language)

    page = web.client.get("/portal/patient/history")

    assert page.status_code == 200
    assert expected in page.text
