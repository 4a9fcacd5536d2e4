"""Who looked at what: the audit trail as the patient (and the security officer) may read it.

A patient, or their representative, reads the events of their own dossier; a security officer
reads across dossiers; nobody else reads any. Reading the trail is itself recorded, after the
query, so an answer never lists its own reading.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.access.errors import InvalidAccessRule
from carnet.access.policy import Action
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent
from carnet.clock import Clock

MAX_PAGE = 500


@dataclass(frozen=True)
class HistoryQuery:
    """Which events to list; empty means any."""

    patient_id: uuid.UUID | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    agent_professional_id: uuid.UUID | None = None
    agent_subject: str | None = None
    actions: Collection[AuditAction] = ()
    limit: int = 100
    offset: int = 0


@dataclass(frozen=True)
class HistoryPage:
    """A page of events, oldest first, and how many match in all."""

    events: list[AuditEvent]
    total: int


def read_history(
    session: Session, actor: Actor, query: HistoryQuery, *, clock: Clock
) -> HistoryPage:
    """The audit events ``actor`` may read that match ``query``, in the order they happened.

    Raises ``AccessDenied`` (a patient asking for another dossier, a professional, an operator),
    ``StrongerAuthenticationRequired`` for a weak sign-in.
    """
    if not 0 < query.limit <= MAX_PAGE or query.offset < 0:
        raise InvalidAccessRule(f"The page size must be between 1 and {MAX_PAGE}.", field="_count")
    if actor.kind is ActorKind.SECURITY_OFFICER:
        pass  # reads across dossiers; recorded below like any reading
    elif actor.kind is ActorKind.PATIENT and query.patient_id is not None:
        access_guard.authorize(
            session,
            actor,
            query.patient_id,
            Action.READ_ACCESS,
            now=clock.now(),
            audit=AuditAction.AUDIT_SEARCH,
        )
    else:
        raise access_guard.refuse(
            actor, AuditAction.AUDIT_SEARCH, "reads no audit trail", query.patient_id
        )
    selection = _selection(query)
    total = session.scalar(select(func.count()).select_from(selection.subquery())) or 0
    events = list(
        session.scalars(
            selection.order_by(AuditEvent.recorded_at, AuditEvent.chain_id, AuditEvent.seq)
            .limit(query.limit)
            .offset(query.offset)
        )
    )
    audit_trail.record(
        session,
        agent=actor.agent,
        action=AuditAction.AUDIT_SEARCH,
        clock=clock,
        patient_id=query.patient_id,
        details={"returned": len(events), "total": total},
    )
    return HistoryPage(events=events, total=total)


def _selection(query: HistoryQuery) -> Select[AuditEvent]:
    selection = select(AuditEvent)
    if query.patient_id is not None:
        selection = selection.where(AuditEvent.chain_id == query.patient_id)
    if query.since is not None:
        selection = selection.where(AuditEvent.recorded_at >= query.since)
    if query.until is not None:
        selection = selection.where(AuditEvent.recorded_at < query.until)
    if query.agent_professional_id is not None:
        selection = selection.where(AuditEvent.agent_professional_id == query.agent_professional_id)
    if query.agent_subject is not None:
        selection = selection.where(AuditEvent.agent_subject == query.agent_subject)
    if query.actions:
        selection = selection.where(AuditEvent.action.in_(list(query.actions)))
    return selection
