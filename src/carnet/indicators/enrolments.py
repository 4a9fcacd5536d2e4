"""Enrolment runs started by the agency from its portal, and the record of past runs.

A run is ``lifecycle.enrolment.enrol_registry`` over an uploaded registry file: each dossier it
creates or updates is already recorded on that dossier's audit chain. What no table keeps is
the run itself — which file, when, by whom, with what outcome — so ``run_enrolment`` records
one event for it on the operator's own chain (counts only: never a row of the file), and
``past_runs`` reads those events back.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent
from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.indicators.service import require_agency
from carnet.lifecycle.enrolment import DEFAULT_BATCH, EnrolmentReport, RowProblem, enrol_registry
from carnet.lifecycle.errors import InvalidRegistryFile

# The problems a page can usefully list; the count covers every one of them.
MAX_PROBLEMS_KEPT = 1000
_RUN_MARKER = "registry_run"
_COUNTS = ("created", "updated", "unchanged", "rejected")


@dataclass
class EnrolmentRun:
    """What one run did: the enrolment report and the problems of the file, by line."""

    file_name: str
    report: EnrolmentReport
    problems: list[RowProblem] = field(default_factory=list)
    problems_total: int = 0

    def keep(self, problem: RowProblem) -> None:
        """Count a problem, and keep it while there are not too many to show."""
        self.problems_total += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(problem)


@dataclass(frozen=True)
class PastRun:
    """A run as the audit trail recorded it."""

    recorded_at: dt.datetime
    by: str
    file_name: str
    created: int
    updated: int
    unchanged: int
    rejected: int


def run_enrolment(
    sessions: sessionmaker[Session],
    content: BinaryIO,
    *,
    actor: Actor,
    file_name: str,
    clock: Clock,
    opening_delay: dt.timedelta,
    batch_size: int = DEFAULT_BATCH,
) -> EnrolmentRun:
    """Enrol a registry file (UTF-8 CSV bytes, see ``lifecycle.enrolment``) and record the run.

    A way in of its own, like ``enrol_registry``: one transaction per batch, then one for the
    run's record. Only an operator enrols (``AccessDenied`` otherwise, before anything is
    read). A file that is not UTF-8 or not CSV raises ``InvalidRegistryFile``; the batches
    before the fault stay enrolled, as they would from the command line.
    """
    if actor.kind is not ActorKind.OPERATOR:
        raise access_guard.refuse(actor, AuditAction.LIFECYCLE, "only the agency enrols", None)
    run = EnrolmentRun(file_name=file_name[:200], report=EnrolmentReport())
    stream = io.TextIOWrapper(content, encoding="utf-8-sig", newline="")
    try:
        run.report = enrol_registry(
            sessions,
            stream,
            actor=actor,
            clock=clock,
            opening_delay=opening_delay,
            batch_size=batch_size,
            on_problem=run.keep,
        )
    except UnicodeDecodeError as error:
        raise InvalidRegistryFile(
            f"The registry file is not UTF-8 ({error.reason} at byte {error.start} of a block); "
            "the rows before it were enrolled.",
            field="file",
        ) from error
    except csv.Error as error:
        raise InvalidRegistryFile(f"The registry file is not valid CSV: {error}.") from error
    finally:
        stream.detach()  # the caller owns the upload and closes it
    # Rows refused by a batch are reported after the batch, behind later lines' parse errors.
    run.problems.sort(key=lambda problem: problem.line)
    with unit_of_work(sessions) as session:
        audit_trail.record(
            session,
            agent=actor.agent,
            action=AuditAction.LIFECYCLE,
            clock=clock,
            details={
                _RUN_MARKER: run.file_name,
                **{name: getattr(run.report, name) for name in _COUNTS},
                "problems": run.problems_total,
            },
        )
    return run


def past_runs(session: Session, actor: Actor, *, clock: Clock, limit: int = 20) -> list[PastRun]:
    """The latest enrolment runs started from the portal, newest first.

    For the agency only (``AccessDenied`` otherwise). Reading them reads the audit trail, so
    the reading is recorded too.
    """
    require_agency(actor, AuditAction.AUDIT_SEARCH)
    events = session.scalars(
        select(AuditEvent)
        .where(
            AuditEvent.action == AuditAction.LIFECYCLE,
            AuditEvent.patient_id.is_(None),
            AuditEvent.agent_kind == ActorKind.OPERATOR.value,
            AuditEvent.details.like(f'%"{_RUN_MARKER}"%'),
        )
        .order_by(AuditEvent.recorded_at.desc())
        .limit(limit)
    ).all()
    runs = []
    for event in events:
        details = json.loads(event.details)
        runs.append(
            PastRun(
                recorded_at=event.recorded_at,
                by=event.agent_subject,
                file_name=str(details.get(_RUN_MARKER, "")),
                **{name: int(details.get(name, 0)) for name in _COUNTS},
            )
        )
    audit_trail.record(
        session,
        agent=actor.agent,
        action=AuditAction.AUDIT_SEARCH,
        clock=clock,
        details={"enrolment_runs": len(runs)},
    )
    return runs
