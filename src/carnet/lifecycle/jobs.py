"""Scheduled jobs: automatic opening, emergency-access expiry, daily digests, retention purge,
the sweep of unreferenced stored objects.

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
- the store sweep goes in slices: its ``job_runs`` row holds where the sweep stands and a lease,
  taken in a short transaction, so one node sweeps at a time without holding a lock while it
  lists the store (two at once would only do the same harmless work, see carnet.lifecycle.sweep);
- SQLite has one writer at a time, so there runs simply follow each other.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from carnet.access import care as access_care
from carnet.audit import service as audit_trail
from carnet.audit.checkpoints import CheckpointSchedule, publish_due_checkpoint
from carnet.audit.models import AuditAction
from carnet.audit.service import Agent
from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.documents import internal
from carnet.essentials import service as essentials
from carnet.lifecycle.models import JobRun
from carnet.lifecycle.service import open_due_dossiers
from carnet.lifecycle.sweep import SweepReport, sweep_store
from carnet.notifications import internal as notices
from carnet.notifications.mailer import Mailer
from carnet.patients.models import Dossier, DossierState
from carnet.storage import DocumentStore

if TYPE_CHECKING:
    from carnet.settings import Settings

JOB_PURGE = Agent(kind="job", subject="job:retention-purge")
DIGESTS = "digests"
EMERGENCY_EXPIRY = "emergency-expiry"
STORE_SWEEP = "store-sweep"
# How long a node's claim on the store sweep lasts: if it dies mid-slice, another node resumes
# from the last slice saved once this has passed.
SWEEP_LEASE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class SweepSchedule:
    """How the scheduled jobs sweep the store (from the CARNET_STORE_SWEEP_* settings)."""

    grace: dt.timedelta
    interval: dt.timedelta
    objects_per_run: int = 100_000

    @classmethod
    def from_settings(cls, settings: Settings) -> SweepSchedule:
        """The schedule the settings configure."""
        return cls(
            grace=dt.timedelta(seconds=settings.store_sweep_grace_seconds),
            interval=dt.timedelta(seconds=settings.store_sweep_interval_seconds),
            objects_per_run=settings.store_sweep_objects_per_run,
        )


@dataclass
class JobsReport:
    """What one run of the jobs did."""

    opened: int = 0
    emergency_accesses_ended: int = 0
    digests: int = 0
    purged_dossiers: int = 0
    purged_documents: int = 0
    purged_objects: int = 0
    swept_objects: int = 0
    swept_bytes: int = 0
    # Audit chain heads written to the checkpoint log (None: no checkpoint was due).
    checkpointed_heads: int | None = None

    def summary(self) -> str:
        """One line for the operator and the log."""
        return (
            f"Jobs: {self.opened} dossiers opened at their deadline, "
            f"{self.emergency_accesses_ended} emergency accesses ended, "
            f"{self.digests} digests made, {self.purged_dossiers} closed dossiers purged "
            f"({self.purged_documents} documents, {self.purged_objects} stored objects), "
            f"{self.swept_objects} unreferenced stored objects swept ({self.swept_bytes} bytes)."
        ) + (
            f" Audit checkpoint: {self.checkpointed_heads} chain heads."
            if self.checkpointed_heads is not None
            else ""
        )


def run_jobs(
    sessions: sessionmaker[Session],
    store: DocumentStore,
    *,
    clock: Clock,
    retention_years: int,
    batch_size: int = 500,
    sweep: SweepSchedule | None = None,
    audit_checkpoints: CheckpointSchedule | None = None,
) -> JobsReport:
    """Run every due job once, each batch in its own transaction; what they did.

    The store is swept only if ``sweep`` is given (its interval not zero); the audit chain heads
    are checkpointed only if ``audit_checkpoints`` is given and its interval has passed.
    """
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
    if sweep is not None and sweep.interval > dt.timedelta(0):
        swept = sweep_store_slice(sessions, store, clock=clock, schedule=sweep)
        if swept is not None:
            report.swept_objects, report.swept_bytes = swept.removed, swept.removed_bytes
    if audit_checkpoints is not None:
        # Last: the heads the jobs above advanced (the purge's records) are in this checkpoint.
        taken = publish_due_checkpoint(sessions, audit_checkpoints, clock=clock)
        report.checkpointed_heads = taken.heads if taken is not None else None
    return report


def sweep_store_slice(
    sessions: sessionmaker[Session], store: DocumentStore, *, clock: Clock, schedule: SweepSchedule
) -> SweepReport | None:
    """Sweep the next slice of the store if a sweep is due or under way; None if not.

    A full sweep starts ``schedule.interval`` after the previous one started and goes on, one
    slice of ``objects_per_run`` objects per run, until the listing ends. None also when
    another node holds the sweep (its lease has not run out).
    """
    now = clock.now()
    with unit_of_work(sessions) as session:
        run = _claim(session, STORE_SWEEP, first_since=now - schedule.interval)
        if run is None:
            return None
        state = json.loads(run.last_report or "{}")
        lease = state.get("lease_until")
        if lease is not None and dt.datetime.fromisoformat(lease) > now:
            return None
        start_after = state.get("resume_after")
        # A lease run out is a sweep whose node died: taken over, not waited for.
        if start_after is None and lease is None:
            if run.last_until + schedule.interval > now:
                return None  # the last full sweep is recent enough
            run.last_until = now  # a full sweep starts
        run.last_report = json.dumps(state | {"lease_until": (now + SWEEP_LEASE).isoformat()})
    swept = sweep_store(
        sessions,
        store,
        clock=clock,
        grace=schedule.grace,
        start_after=start_after,
        limit=schedule.objects_per_run,
    )
    with unit_of_work(sessions) as session:
        run = session.get(JobRun, STORE_SWEEP, with_for_update=True, populate_existing=True)
        if run is not None:
            run.last_report = json.dumps(
                {
                    "resume_after": swept.resume_after,
                    "lease_until": None,
                    "examined": swept.examined,
                    "removed": swept.removed,
                    "removed_bytes": swept.removed_bytes,
                }
            )
    return swept


def report_emergency_expiry(session: Session, *, clock: Clock) -> int:
    """How many emergency accesses ended since the previous run (they end by themselves)."""
    now = clock.now()
    run = _claim(session, EMERGENCY_EXPIRY, first_since=now - dt.timedelta(days=1))
    if run is None or run.last_until >= now:
        return 0
    ended = access_care.emergency_accesses_ended(session, since=run.last_until, until=now)
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
    counts = internal.new_document_counts(
        session, notices.patients_wanting_digest(session), since=since, until=midnight
    )
    made = notices.build_digests(session, counts=counts, since=since, until=midnight, clock=clock)
    _done(run, midnight, {"digests": made})
    return made


def purge_closed_dossiers(  # patient-data: a job's, no actor
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
        deleted, objects = internal.purge_documents(session, store, patient_id)
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


def deliver_notices(
    session: Session, mailer: Mailer, *, clock: Clock, limit: int = 100
) -> notices.DeliveryReport:
    """Send up to ``limit`` of the outbox's e-mails that are due, and record how each went.

    The outbox is read without an actor (``notifications.internal.deliver_pending``): the
    server's loop runs this every minute, and ``carnet notifications send`` by hand.
    """
    return notices.deliver_pending(session, mailer, clock=clock, limit=limit)
