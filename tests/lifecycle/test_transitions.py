"""The dossier's states: each transition, who may make it, and each refusal (issue 6)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor, Assurance
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, StrongerAuthenticationRequired
from carnet.access.models import RepresentationKind
from carnet.access.representation import record_representation
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.documents.errors import DossierNotActive
from carnet.documents.models import Document
from carnet.lifecycle import service
from carnet.lifecycle.errors import TransitionRefused
from carnet.lifecycle.models import DossierTransition
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.lifecycle import make_invited_patient
from factories.patients import make_patient

Transition = Callable[..., DossierTransition]


def _history(session: Session, patient: Patient) -> list[tuple[str, str, str]]:
    rows = session.scalars(
        select(DossierTransition)
        .where(DossierTransition.patient_id == patient.id)
        .order_by(DossierTransition.at, DossierTransition.id)
    )
    return [(row.from_state.value, row.to_state.value, row.by) for row in rows]


def _state(session: Session, patient: Patient) -> DossierState:
    session.refresh(patient.dossier)
    return patient.dossier.state


def _lifecycle_events(session: Session, patient: Patient) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_id == patient.id, AuditEvent.action == AuditAction.LIFECYCLE)
            .order_by(AuditEvent.seq)
        )
    )


class TestThePatientsTransitions:
    def test_activating_an_invited_dossier_opens_it(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        transition = service.activate(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.ACTIVE
        assert patient.dossier.opened_at == clock.now()
        assert patient.dossier.opening_deadline is None
        assert (transition.from_state, transition.to_state) == (
            DossierState.INVITED,
            DossierState.ACTIVE,
        )
        assert transition.at == clock.now()
        assert transition.by == f"Patient/{patient.id}"
        [event] = _lifecycle_events(session, patient)
        assert event.agent_subject == f"Patient/{patient.id}"
        assert json.loads(event.details)["from"] == "invited"
        assert json.loads(event.entity_ids) == [str(transition.id)]

    def test_objecting_to_an_invited_dossier_opposes_it(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        service.oppose(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.OPPOSED
        assert patient.dossier.opening_deadline is None  # it will not open by itself

    def test_closing_then_reopening_keeps_the_whole_history(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        me = patient_actor(patient)
        service.close(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )
        assert _state(session, patient) is DossierState.CLOSED
        assert patient.dossier.closed_at == clock.now()
        clock.advance(dt.timedelta(days=3))
        service.activate(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )
        assert _state(session, patient) is DossierState.ACTIVE
        assert patient.dossier.closed_at is None
        who = f"Patient/{patient.id}"
        assert _history(session, patient) == [
            ("active", "closed", who),
            ("closed", "active", who),
        ]
        assert [e.outcome for e in _lifecycle_events(session, patient)] == [
            AuditOutcome.ALLOWED,
            AuditOutcome.ALLOWED,
        ]

    def test_an_opposed_dossier_opens_again_on_request(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock, state=DossierState.OPPOSED)
        service.activate(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        assert _history(session, patient)[0][:2] == ("opposed", "active")

    def test_a_representative_acts_for_the_patient_and_is_named(
        self, session: Session, clock: FrozenClock
    ) -> None:
        parent = make_patient(session, clock)
        child = make_invited_patient(session, clock, birth_date=dt.date(2015, 3, 1))
        record_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            parent.id,
            kind=RepresentationKind.PARENT,
        )
        transition = service.oppose(
            session,
            open_dossier(
                session,
                patient_actor(parent, acting_for=child),
                child.id,
                purposes.MANAGE_DOSSIER,
                clock=clock,
            ),
        )
        assert transition.by == f"Patient/{parent.id}"
        assert transition.on_behalf_of == child.id
        assert transition.reason == "asked by the representative"

    def test_the_history_is_read_by_the_patient(self, session: Session, clock: FrozenClock) -> None:
        patient = make_invited_patient(session, clock)
        me = patient_actor(patient)
        service.oppose(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )
        history = service.dossier_history(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )
        assert [(h.from_state, h.to_state) for h in history] == [
            (DossierState.INVITED, DossierState.OPPOSED)
        ]


class TestRefusals:
    @pytest.mark.parametrize(
        ("state", "transition"),
        [
            (DossierState.ACTIVE, service.activate),
            (DossierState.ACTIVE, service.oppose),
            (DossierState.INVITED, service.close),
            (DossierState.OPPOSED, service.close),
            (DossierState.OPPOSED, service.oppose),
            (DossierState.CLOSED, service.close),
            (DossierState.CLOSED, service.oppose),
        ],
    )
    def test_a_transition_the_state_does_not_allow_is_refused_with_its_reason(
        self, session: Session, clock: FrozenClock, state: DossierState, transition: Transition
    ) -> None:
        patient = make_patient(session, clock, state=state)
        with pytest.raises(TransitionRefused) as refused:
            transition(
                session,
                open_dossier(
                    session,
                    patient_actor(patient),
                    patient.id,
                    purposes.MANAGE_DOSSIER,
                    clock=clock,
                ),
            )
        assert refused.value.state == state.value
        assert f"The dossier is {state.value}" in str(refused.value)
        session.refresh(patient.dossier)
        assert patient.dossier.state is state
        assert _history(session, patient) == []

    @pytest.mark.parametrize("transition", [service.activate, service.oppose, service.close])
    def test_nobody_but_the_patient_moves_the_dossier(
        self, session: Session, clock: FrozenClock, transition: Transition
    ) -> None:
        patient = make_invited_patient(session, clock)
        stranger = make_patient(session, clock)
        doctor = make_professional(session, clock)
        for actor in (
            patient_actor(stranger),
            professional_actor(doctor),
            operator_actor(),
        ):
            with pytest.raises(AccessDenied) as denied:
                transition(
                    session,
                    open_dossier(session, actor, patient.id, purposes.MANAGE_DOSSIER, clock=clock),
                )
            assert denied.value.refusal is not None
            assert denied.value.refusal.action is AuditAction.LIFECYCLE
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.INVITED

    def test_a_weak_sign_in_is_asked_to_step_up(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock)
        with pytest.raises(StrongerAuthenticationRequired):
            service.close(
                session,
                open_dossier(
                    session,
                    patient_actor(patient, assurance=Assurance.LOW),
                    patient.id,
                    purposes.MANAGE_DOSSIER,
                    clock=clock,
                ),
            )

    @pytest.mark.parametrize(
        "state", [DossierState.INVITED, DossierState.OPPOSED, DossierState.CLOSED]
    )
    def test_publishing_to_a_dossier_that_is_not_active_stores_nothing(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        state: DossierState,
    ) -> None:
        patient = make_patient(session, clock, state=state)
        author: Actor = professional_actor(make_professional(session, clock))
        with pytest.raises(DossierNotActive) as refused:
            make_document(session, store, clock, actor=author, patient_id=patient.id)
        assert f"The dossier is {state.value}" in str(refused.value)
        assert "Nothing was stored" in str(refused.value)
        assert (
            session.scalars(select(Document).where(Document.patient_id == patient.id)).all() == []
        )
        assert not (store.root / str(patient.id)).exists()
