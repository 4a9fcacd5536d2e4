"""Who is told to a patient as having consulted their dossier, and how the trail records it.

A professional with no basis on a dossier who searches it is answered as if it were empty: that
is not a consultation, so the patient hears nothing and the trail records a denied attempt. A
professional with a basis, or one shown what they wrote themself, did consult it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.documents import reading
from carnet.notifications import internal as notifications_internal
from carnet.notifications.models import NotificationKind
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.actors import patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient

Search = Callable[[Session, Actor, Patient, FrozenClock], object]


def _find_documents(session: Session, actor: Actor, patient: Patient, clock: FrozenClock) -> object:
    return reading.list_documents(
        session, open_dossier(session, actor, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
    )  # ITI-67


def _find_submission_sets(
    session: Session, actor: Actor, patient: Patient, clock: FrozenClock
) -> object:
    return reading.list_submission_sets(
        session,
        open_dossier(session, actor, patient.id, purposes.FIND_SUBMISSION_SETS, clock=clock),
    )  # ITI-66


def _first_access_notices(session: Session, patient: Patient) -> int:
    return sum(
        notice.kind is NotificationKind.FIRST_ACCESS
        for notice in notifications_internal.inbox(session, patient_id=patient.id)
    )


def _events_of(session: Session, patient: Patient, actor: Actor) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == patient.id,
                AuditEvent.agent_professional_id == actor.professional_id,
            )
        )
    )


@pytest.fixture
def dossier(session: Session, store: FilesystemDocumentStore, clock: FrozenClock) -> Patient:
    """An active dossier holding a document by a colleague of nobody in these tests."""
    patient = make_patient(session, clock)
    author = professional_actor(make_professional(session, clock, family="Kieffer"))
    make_document(session, store, clock, actor=author, patient_id=patient.id)
    return patient


@pytest.mark.parametrize("search", [_find_documents, _find_submission_sets])
class TestAStrangersSearch:
    def test_tells_the_patient_nothing(
        self, session: Session, clock: FrozenClock, dossier: Patient, search: Search
    ) -> None:
        stranger = professional_actor(make_professional(session, clock, family="Inconnu"))

        search(session, stranger, dossier, clock)
        search(session, stranger, dossier, clock)

        assert _first_access_notices(session, dossier) == 0

    def test_is_recorded_as_a_denied_attempt_not_a_consultation(
        self, session: Session, clock: FrozenClock, dossier: Patient, search: Search
    ) -> None:
        stranger = professional_actor(make_professional(session, clock, family="Inconnu"))

        search(session, stranger, dossier, clock)

        [event] = _events_of(session, dossier, stranger)
        assert (event.action, event.outcome) == (AuditAction.SEARCH, AuditOutcome.DENIED)
        assert event.reason == access_guard.NOTHING_SHOWN
        assert event.entity_ids == "[]"

    def test_a_later_real_consultation_is_still_told_as_the_first(
        self, session: Session, clock: FrozenClock, dossier: Patient, search: Search
    ) -> None:
        gp = make_professional(session, clock, family="Generalist")
        doctor = professional_actor(gp)
        search(session, doctor, dossier, clock)
        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(dossier), dossier.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=gp.id,
        )

        search(session, doctor, dossier, clock)

        assert _first_access_notices(session, dossier) == 1


def test_a_professional_shown_what_they_wrote_did_consult_the_dossier(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Patient
) -> None:
    author = professional_actor(make_professional(session, clock, family="Auteur"))
    mine = make_document(session, store, clock, actor=author, patient_id=dossier.id)

    page = reading.list_documents(
        session, open_dossier(session, author, dossier.id, purposes.FIND_DOCUMENTS, clock=clock)
    )

    assert [document.id for document in page.documents] == [mine.id]
    searches = [e for e in _events_of(session, dossier, author) if e.action is AuditAction.SEARCH]
    assert [e.outcome for e in searches] == [AuditOutcome.ALLOWED]
