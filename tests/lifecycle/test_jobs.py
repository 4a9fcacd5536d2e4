"""Scheduled jobs: opening at the deadline (twice at once), emergency expiry, digests, purge."""

from __future__ import annotations

import datetime as dt
import json
import threading

from sqlalchemy import Engine, Select, func, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.care import break_glass
from carnet.access.door import open_dossier
from carnet.audit.models import AuditAction, AuditEvent
from carnet.audit.service import verify
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.directory.models import Profession
from carnet.documents.models import Document
from carnet.essentials import service as essentials
from carnet.essentials.models import EssentialFact
from carnet.lifecycle import jobs, service
from carnet.lifecycle.models import DossierTransition
from carnet.notifications import internal as notifications_internal
from carnet.notifications.models import NewDocuments, Notification, NotificationKind
from carnet.patients.models import Dossier, DossierState
from carnet.storage import FilesystemDocumentStore
from factories.actors import patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.lifecycle import OPENING_DELAY, make_invited_patient
from factories.patients import make_patient

RETENTION = 10


def _count(session: Session, query: Select[int]) -> int:
    return session.scalar(query) or 0


class TestAutomaticOpening:
    def test_dossiers_past_their_deadline_open_and_their_patients_are_told(
        self, session: Session, clock: FrozenClock
    ) -> None:
        due = make_invited_patient(session, clock)
        later = make_invited_patient(session, clock, deadline=clock.now() + OPENING_DELAY * 2)
        clock.advance(OPENING_DELAY)
        assert service.open_due_dossiers(session, clock=clock) == [due.id]
        session.refresh(due.dossier)
        session.refresh(later.dossier)
        assert due.dossier.state is DossierState.ACTIVE
        assert later.dossier.state is DossierState.INVITED
        [transition] = session.scalars(
            select(DossierTransition).where(DossierTransition.patient_id == due.id)
        ).all()
        assert (transition.by, transition.reason) == (
            "job:automatic-opening",
            "the opening deadline passed",
        )
        [notice] = notifications_internal.inbox(session, patient_id=due.id)
        assert notice.kind is NotificationKind.DOSSIER_OPENED
        assert service.open_due_dossiers(session, clock=clock) == []

    def test_a_dossier_the_patient_opposed_stays_opposed(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        service.oppose(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        clock.advance(OPENING_DELAY * 2)
        assert service.open_due_dossiers(session, clock=clock) == []

    def test_two_runs_at_once_open_each_dossier_exactly_once(
        self, committing_engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        sessions = session_factory(committing_engine)
        with unit_of_work(sessions) as session:
            ids = [make_invited_patient(session, clock).id for _ in range(24)]
        clock.advance(OPENING_DELAY)
        start = threading.Barrier(2)
        reports: list[jobs.JobsReport] = []
        failures: list[BaseException] = []

        def run() -> None:
            try:
                start.wait()
                reports.append(
                    jobs.run_jobs(
                        sessions, store, clock=clock, retention_years=RETENTION, batch_size=5
                    )
                )
            except BaseException as error:  # handed to the test's thread below
                failures.append(error)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        assert sum(report.opened for report in reports) == len(ids)
        with sessions() as session:
            assert _count(
                session, select(func.count()).where(Dossier.state == DossierState.ACTIVE)
            ) == len(ids)
            assert _count(session, select(func.count()).select_from(DossierTransition)) == len(ids)
            assert _count(
                session,
                select(func.count()).where(Notification.kind == NotificationKind.DOSSIER_OPENED),
            ) == len(ids)
            assert verify(session).intact

    def test_of_two_racing_transitions_only_one_happens(
        self, committing_engine: Engine, clock: FrozenClock
    ) -> None:
        sessions = session_factory(committing_engine)
        with unit_of_work(sessions) as session:
            patient_id = make_invited_patient(session, clock).id
        second: list[DossierTransition | None] = []

        def race() -> None:
            with unit_of_work(sessions) as other:
                # Reads "invited" (PostgreSQL) or waits for the writer (SQLite), then updates.
                second.append(
                    service.transition_dossier(
                        other,
                        patient_id,
                        DossierState.ACTIVE,
                        agent=service.JOB_OPENING,
                        reason="racing",
                        clock=clock,
                    )
                )

        with unit_of_work(sessions) as session:
            first = service.transition_dossier(
                session,
                patient_id,
                DossierState.ACTIVE,
                agent=service.JOB_OPENING,
                reason="first",
                clock=clock,
            )
            racer = threading.Thread(target=race)
            racer.start()
            racer.join(timeout=0.3)  # it is now blocked behind this transaction's row lock
        racer.join(timeout=30)
        assert first is not None
        assert second == [None]
        with sessions() as session:
            assert _count(session, select(func.count()).select_from(DossierTransition)) == 1


class TestPeriodicJobs:
    def test_ended_emergency_accesses_are_reported_once(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        doctor = make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        jobs.report_emergency_expiry(session, clock=clock)
        break_glass(
            session,
            open_dossier(
                session, professional_actor(doctor), patient.id, purposes.BREAK_GLASS, clock=clock
            ),
            reason="unconscious, brought in by ambulance",
        )
        clock.advance(dt.timedelta(hours=25))
        assert jobs.report_emergency_expiry(session, clock=clock) == 1
        assert jobs.report_emergency_expiry(session, clock=clock) == 0

    def test_a_digest_per_day_for_patients_who_chose_it(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        quiet = make_patient(session, clock)
        for someone in (patient, quiet):
            notifications_internal.set_preferences(
                session,
                patient_id=someone.id,
                new_documents=NewDocuments.DIGEST,
                email=False,
                clock=clock,
            )
        author = professional_actor(make_professional(session, clock))
        make_document(session, store, clock, actor=author, patient_id=patient.id)
        make_document(session, store, clock, actor=author, patient_id=patient.id)
        make_document(session, store, clock, actor=patient_actor(patient), patient_id=patient.id)
        clock.advance(dt.timedelta(days=1))
        assert jobs.make_digests(session, clock=clock) == 1
        assert jobs.make_digests(session, clock=clock) == 0
        [digest] = notifications_internal.inbox(session, patient_id=patient.id)
        assert digest.kind is NotificationKind.DOCUMENT_DIGEST
        assert json.loads(digest.data)["counts"] == {"lab-report": 2}
        assert notifications_internal.inbox(session, patient_id=quiet.id) == []


class TestRetention:
    def test_a_closed_dossier_is_purged_after_the_retention_period(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        author = professional_actor(make_professional(session, clock))
        document = make_document(session, store, clock, actor=author, patient_id=patient.id)
        essentials.record_fact(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.RECORD_ESSENTIALS, clock=clock
            ),
            category="blood-group",
            text="O+",
            details={"group": "O+"},
        )
        service.close(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        clock.advance(dt.timedelta(days=365 * RETENTION))
        assert jobs.purge_closed_dossiers(session, store, clock=clock, retention_years=10) == {}
        clock.advance(dt.timedelta(days=3))
        purged = jobs.purge_closed_dossiers(session, store, clock=clock, retention_years=10)
        assert purged == {patient.id: (1, 1)}
        assert session.get(Document, (patient.id, document.id)) is None
        assert not store.exists(document.content_key)
        session.refresh(patient.dossier)
        assert patient.dossier.purged_at == clock.now()
        assert patient.dossier.state is DossierState.CLOSED
        last = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_id == patient.id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).one()
        assert (last.action, last.agent_subject) == (AuditAction.LIFECYCLE, "job:retention-purge")
        assert json.loads(last.details)["purged_documents"] == 1
        assert json.loads(last.details)["purged_essential_facts"] == 1
        assert (
            session.scalars(
                select(EssentialFact).where(EssentialFact.patient_id == patient.id)
            ).all()
            == []
        )
        assert verify(session, chain_ids=[patient.id]).intact  # the trail outlives the purge
        assert jobs.purge_closed_dossiers(session, store, clock=clock, retention_years=10) == {}

    def test_an_active_dossier_is_never_purged(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        make_document(
            session,
            store,
            clock,
            actor=professional_actor(make_professional(session, clock)),
            patient_id=patient.id,
        )
        clock.advance(dt.timedelta(days=365 * 30))
        assert jobs.purge_closed_dossiers(session, store, clock=clock, retention_years=10) == {}

    def test_the_run_reports_what_it_purged(
        self, committing_engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        sessions = session_factory(committing_engine)
        with unit_of_work(sessions) as session:
            patient = make_patient(session, clock)
            author = professional_actor(make_professional(session, clock))
            for _ in range(2):
                make_document(session, store, clock, actor=author, patient_id=patient.id)
            service.close(
                session,
                open_dossier(
                    session,
                    patient_actor(patient),
                    patient.id,
                    purposes.MANAGE_DOSSIER,
                    clock=clock,
                ),
            )
        clock.advance(dt.timedelta(days=365 * 11))
        report = jobs.run_jobs(sessions, store, clock=clock, retention_years=RETENTION)
        assert (report.purged_dossiers, report.purged_documents, report.purged_objects) == (1, 2, 2)
        assert "1 closed dossiers purged (2 documents, 2 stored objects)" in report.summary()
