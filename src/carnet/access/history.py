"""Who looked at what: the audit trail as the patient (and the security officer) may read it.

A patient, or their representative, reads the events of their own dossier, opened at the door
(``read_dossier_trail``); a security officer reads across dossiers on their own authority
(``read_trail_across``); nobody else reads any. Reading the trail is itself recorded, after the
query, so an answer never lists its own reading.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass, replace

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind
from carnet.access.door import OpenedDossier
from carnet.access.errors import InvalidAccessRule
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


def read_dossier_trail(
    session: Session, dossier: OpenedDossier, query: HistoryQuery
) -> HistoryPage:
    """The events of the patient's own dossier (opened for ``purposes.READ_AUDIT_TRAIL``: the
    patient or their representative) that match ``query``, in the order they happened.

    ``query.patient_id`` is the opened dossier's, whatever the query said.
    """
    dossier.require(purposes.READ_AUDIT_TRAIL)
    page = _read(session, replace(query, patient_id=dossier.patient_id))
    dossier.record(
        session,
        AuditAction.AUDIT_SEARCH,
        details={"returned": len(page.events), "total": page.total},
    )
    return page


def read_trail_across(
    session: Session, officer: Actor, query: HistoryQuery, *, clock: Clock
) -> HistoryPage:
    """The events across dossiers that match ``query``: a security officer reads them on their
    own authority (no dossier is opened); anyone else is refused (``AccessDenied``).
    """
    if officer.kind is not ActorKind.SECURITY_OFFICER:
        raise access_guard.refuse(
            officer, AuditAction.AUDIT_SEARCH, "reads no audit trail", query.patient_id
        )
    page = _read(session, query)
    audit_trail.record(
        session,
        agent=officer.agent,
        action=AuditAction.AUDIT_SEARCH,
        clock=clock,
        patient_id=query.patient_id,
        details={"returned": len(page.events), "total": page.total},
    )
    return page


def _read(session: Session, query: HistoryQuery) -> HistoryPage:
    # Reading the trail is recorded by the callers after the query, so an answer never lists
    # its own reading.
    if not 0 < query.limit <= MAX_PAGE or query.offset < 0:
        raise InvalidAccessRule(f"The page size must be between 1 and {MAX_PAGE}.", field="_count")
    selection = _selection(query)
    total = session.scalar(select(func.count()).select_from(selection.subquery())) or 0
    events = list(
        session.scalars(
            selection.order_by(AuditEvent.recorded_at, AuditEvent.chain_id, AuditEvent.seq)
            .limit(query.limit)
            .offset(query.offset)
        )
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
