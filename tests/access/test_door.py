"""The one door (issue 16): a dossier is opened once, for a purpose, and the opening is the
capability every service takes."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Assurance
from carnet.access.door import OpenedDossier, WrongPurpose, open_dossier
from carnet.access.errors import AccessDenied, InsufficientScope, StrongerAuthenticationRequired
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.audit.service import record_refusal
from carnet.clock import FrozenClock
from carnet.patients.errors import DossierNotActive, PatientNotFound
from carnet.patients.models import DossierState
from factories.actors import patient_actor, professional_actor
from factories.directory import make_professional
from factories.patients import make_patient


def test_a_weak_sign_in_is_refused_before_anything_is_read(
    session: Session, clock: FrozenClock
) -> None:
    patient = make_patient(session, clock)
    weak = patient_actor(patient, assurance=Assurance.LOW)
    statements: list[str] = []

    def count(*arguments: object) -> None:
        statements.append(str(arguments[2]))

    connection = session.connection()
    event.listen(connection, "before_cursor_execute", count)
    try:
        with pytest.raises(StrongerAuthenticationRequired) as refused:
            open_dossier(session, weak, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert statements == []
    assert refused.value.refusal is not None
    assert refused.value.refusal.reason == "weak authentication"
    assert refused.value.refusal.action is AuditAction.SEARCH


def test_a_missing_dossier_is_an_audited_refusal(session: Session, clock: FrozenClock) -> None:
    doctor = professional_actor(make_professional(session, clock))
    nobody = uuid.uuid4()
    with pytest.raises(AccessDenied) as refused:
        open_dossier(session, doctor, nobody, purposes.READ_DOCUMENTS, clock=clock)
    refusal = refused.value.refusal
    assert refusal is not None
    assert (refusal.reason, refusal.patient_id, refusal.action) == (
        "no such dossier",
        nobody,
        AuditAction.READ,
    )
    recorded = record_refusal(session, refusal, clock=clock)
    assert recorded.outcome is AuditOutcome.DENIED


def test_the_policy_refuses_at_the_door(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    other = patient_actor(make_patient(session, clock, given="Paul"))
    with pytest.raises(AccessDenied) as refused:
        open_dossier(session, other, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
    assert refused.value.refusal is not None
    assert refused.value.refusal.reason == "not this patient nor their representative"


def test_the_scope_is_checked_first(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    narrow = patient_actor(patient, scopes="patient/Patient.rs")
    with pytest.raises(InsufficientScope):
        open_dossier(session, narrow, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
    content_only = patient_actor(patient, scopes="patient/Binary.r")
    opened = open_dossier(
        session, content_only, patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock
    )
    assert opened.access.is_patient


def test_a_publishing_purpose_tells_the_state(session: Session, clock: FrozenClock) -> None:
    doctor = professional_actor(make_professional(session, clock))
    invited = make_patient(session, clock, state=DossierState.INVITED)
    with pytest.raises(DossierNotActive):
        open_dossier(session, doctor, invited.id, purposes.PUBLISH_DOCUMENTS, clock=clock)
    with pytest.raises(PatientNotFound):
        open_dossier(session, doctor, uuid.uuid4(), purposes.PUBLISH_DOCUMENTS, clock=clock)


def test_a_service_refuses_a_dossier_opened_for_another_purpose(
    session: Session, clock: FrozenClock
) -> None:
    patient = make_patient(session, clock)
    opened = open_dossier(
        session, patient_actor(patient), patient.id, purposes.READ_DOCUMENTS, clock=clock
    )
    opened.require(purposes.READ_DOCUMENTS, purposes.FIND_DOCUMENTS)
    with pytest.raises(WrongPurpose, match="publish documents"):
        opened.require(purposes.PUBLISH_DOCUMENTS)


def test_only_the_door_opens_a_dossier(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    opened = open_dossier(
        session, patient_actor(patient), patient.id, purposes.READ_DOCUMENTS, clock=clock
    )
    with pytest.raises(TypeError, match="open_dossier"):
        OpenedDossier(
            opened.actor,
            opened.patient_id,
            opened.access,
            opened.purpose,
            clock,
            key=object(),
        )


def test_record_writes_the_event(session: Session, clock: FrozenClock) -> None:
    patient = make_patient(session, clock)
    actor = patient_actor(patient)
    opened = open_dossier(session, actor, patient.id, purposes.READ_DOCUMENTS, clock=clock)
    document_id = uuid.uuid4()
    opened.record(session, AuditAction.READ, entity_ids=[document_id])
    opened.record(session, AuditAction.VISIBILITY_CHANGE, details={"disclosed": True})
    session.flush()
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.chain_id == patient.id, AuditEvent.agent_subject == actor.subject)
        .order_by(AuditEvent.seq)
    ).all()
    assert [(e.action, e.outcome) for e in events][-2:] == [
        (AuditAction.READ, AuditOutcome.ALLOWED),
        (AuditAction.VISIBILITY_CHANGE, AuditOutcome.ALLOWED),
    ]
    assert str(document_id) in str(events[-2].entity_ids)
