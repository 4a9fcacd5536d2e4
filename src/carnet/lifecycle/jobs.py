"""Scheduled jobs: automatic opening, emergency-access expiry, daily digests, retention purge.

``run_jobs`` runs each due job once. ``carnet jobs run`` calls it, and every server worker does
every ``CARNET_JOBS_INTERVAL_SECONDS``. It is a way in of its own: each batch of work is one
transaction, so a national opening day is written in bounded pieces.

Safe to run twice, or on several nodes at once:

- opening and purge take their dossiers with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (runs
  take different ones) and change them with conditional UPDATEs (``WHERE state = ...``), so a
  dossier is never opened or purged twice;
- the periodic jobs (digests, the emergency report) lock their row in ``job_runs`` and move its
  ``last_until`` forward: a second run finds nothing left to do for that period, and digests are
  keyed by their period besides;
- SQLite has one writer at a time, so there runs simply follow each other.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from carnet.access import service as access_service
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Agent
from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.documents import service as documents
from carnet.essentials import service as essentials
from carnet.lifecycle.models import JobRun
from carnet.lifecycle.service import open_due_dossiers
from carnet.notifications import service as notices
from carnet.patients.models import Dossier, DossierState
from carnet.storage import DocumentStore

JOB_PURGE = Agent(kind="job", subject="job:retention-purge")
DIGESTS = "digests"
EMERGENCY_EXPIRY = "emergency-expiry"


@dataclass
class JobsReport:
    """What one run of the jobs did."""

    opened: int = 0
    emergency_accesses_ended: int = 0
    digests: int = 0
    purged_dossiers: int = 0
    purged_documents: int = 0
    purged_objects: int = 0

    def summary(self) -> str:
        """One line for the operator and the log."""
        return (
            f"Jobs: {self.opened} dossiers opened at their deadline, "
            f"{self.emergency_accesses_ended} emergency accesses ended, "
            f"{self.digests} digests made, {self.purged_dossiers} closed dossiers purged "
            f"({self.purged_documents} documents, {self.purged_objects} stored objects)."
        )


def run_jobs(
    sessions: sessionmaker[Session],
    store: DocumentStore,
    *,
    clock: Clock,
    retention_years: int,
    batch_size: int = 500,
) -> JobsReport:
    """Run every due job once, each batch in its own transaction; what they did."""
    report = JobsReport()
    while True:
        with unit_of_work(sessions) as session:
            opened = open_due_dossiers(session, clock=clock, limit=batch_size)
        report.opened += len(opened)
        if len(opened) < batch_size:
            break
    with unit_of_work(sessions) as session:
        report.emergency_accesses_ended = report_emergency_expiry(session, clock=clock)
    with unit_of_work(sessions) as session:
        report.digests = make_digests(session, clock=clock)
    while True:
        with unit_of_work(sessions) as session:
            purged = purge_closed_dossiers(
                session, store, clock=clock, retention_years=retention_years, limit=batch_size
            )
        report.purged_dossiers += len(purged)
        report.purged_documents += sum(documents_ for documents_, _ in purged.values())
        report.purged_objects += sum(objects for _, objects in purged.values())
        if len(purged) < batch_size:
            break
    return report


def report_emergency_expiry(session: Session, *, clock: Clock) -> int:
    """How many emergency accesses ended since the previous run (they end by themselves)."""
    now = clock.now()
    run = _claim(session, EMERGENCY_EXPIRY, first_since=now - dt.timedelta(days=1))
    if run is None or run.last_until >= now:
        return 0
    ended = access_service.emergency_accesses_ended(session, since=run.last_until, until=now)
    _done(run, now, {"ended": ended})
    return ended


def make_digests(session: Session, *, clock: Clock) -> int:
    """The daily digests of new documents, for the days since the last run; how many made.

    A day is a UTC day; the period ends at the last midnight. Patients who chose digests get
    one notice per period with the count of each document type others published.
    """
    midnight = clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
    run = _claim(session, DIGESTS, first_since=midnight - dt.timedelta(days=1))
    if run is None or run.last_until >= midnight:
        return 0
    since = run.last_until
    counts = documents.new_document_counts(
        session, notices.patients_wanting_digest(session), since=since, until=midnight
    )
    made = notices.build_digests(session, counts=counts, since=since, until=midnight, clock=clock)
    _done(run, midnight, {"digests": made})
    return made


def purge_closed_dossiers(
    session: Session,
    store: DocumentStore,
    *,
    clock: Clock,
    retention_years: int,
    limit: int = 100,
) -> dict[uuid.UUID, tuple[int, int]]:
    """Purge up to ``limit`` dossiers closed longer than the retention period.

    Their documents (rows and stored content) and essential data are deleted; the dossier, its
    history, its access rules and its audit trail stay, and the purge is recorded on that trail.
    Returns, per dossier purged, the documents and stored objects deleted.
    """
    now = clock.now()
    cutoff = _years_before(now, retention_years)
    due = list(
        session.scalars(
            select(Dossier.patient_id)
            .where(
                Dossier.state == DossierState.CLOSED,
                Dossier.closed_at <= cutoff,
                Dossier.purged_at.is_(None),
            )
            .order_by(Dossier.closed_at, Dossier.patient_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    purged = {}
    for patient_id in due:
        deleted, objects = documents.purge_documents(session, store, patient_id)
        facts = essentials.purge_facts(session, patient_id)
        session.execute(
            update(Dossier)
            .where(Dossier.patient_id == patient_id, Dossier.state == DossierState.CLOSED)
            .values(purged_at=now)
            .execution_options(synchronize_session=False)
        )
        audit_trail.record(
            session,
            agent=JOB_PURGE,
            action=AuditAction.LIFECYCLE,
            clock=clock,
            patient_id=patient_id,
            details={
                "reason": f"closed more than {retention_years} years ago",
                "purged_documents": deleted,
                "purged_objects": objects,
                "purged_essential_facts": facts,
            },
        )
        purged[patient_id] = (deleted, objects)
    return purged


def _claim(session: Session, name: str, *, first_since: dt.datetime) -> JobRun | None:
    """The job's row, locked until the transaction ends; None while another node holds it."""
    query = (
        select(JobRun)
        .where(JobRun.name == name)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    run = session.scalar(query)
    if run is not None:
        return run
    try:
        with session.begin_nested():
            session.add(JobRun(name=name, last_until=first_since, last_report="{}"))
    except IntegrityError:
        pass  # another node made it first; it holds it now, or has finished with it
    return session.scalar(query)


def _done(run: JobRun, until: dt.datetime, report: dict[str, int]) -> None:
    period = {"since": run.last_until.isoformat(), "until": until.isoformat()}
    run.last_report = json.dumps(period | report)
    run.last_until = until


def _years_before(instant: dt.datetime, years: int) -> dt.datetime:
    try:
        return instant.replace(year=instant.year - years)
    except ValueError:  # 29 February
        return instant.replace(year=instant.year - years, day=28)
