"""Recording, verifying and counting audit events.

``record`` appends one event to its chain inside the caller's transaction: a write and its
record commit together; a read's record commits before the response leaves (the way in commits
first). A refusal is recorded by the way in, in a short transaction of its own, so that the
rollback of the refused request does not erase its trace.

Each event carries ``prev_hash`` (the hash of the chain's previous event) and ``hash`` (SHA-256
of ``prev_hash`` and its own canonical content); ``verify`` walks every chain and names the first
broken link. On PostgreSQL and SQLite the table refuses UPDATE and DELETE (triggers, see
migration 0004). Each chain's head is sealed with Carnet's audit key when the session holds it
(``signing.SEALER``, see ``carnet.audit.signing``): the signature is computed here and travels in
the statement that advances the head, so signing adds no round trip.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from carnet.audit.errors import AuditUnavailable
from carnet.audit.models import AuditAction, AuditChainHead, AuditEvent, AuditOutcome
from carnet.audit.signing import SEALER, AuditKey
from carnet.clock import Clock

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_ACTOR_CHAINS = uuid.UUID("5f0b6c1e-2a47-4c0e-8f7e-0d3c2b1a9e88")
# Keys of ``Session.info``: the sessions' group commit writer, when they have one
# (``group_commit.GroupCommit.serve``), and the consultation events waiting for the commit.
GROUP_COMMIT = "carnet.audit.group_commit"
PENDING = "carnet.audit.pending"


@dataclass(frozen=True)
class Agent:
    """Who acted, as the audit trail names them."""

    kind: str
    subject: str
    professional_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    profession: str | None = None
    on_behalf_of: uuid.UUID | None = None
    client_id: str | None = None
    network_address: str | None = None


@dataclass(frozen=True)
class Refusal:
    """A denied request, as the way in records it after rolling the request back."""

    agent: Agent
    action: AuditAction
    reason: str
    patient_id: uuid.UUID | None = None
    entity_ids: tuple[uuid.UUID, ...] = ()


def chain_of(agent: Agent, patient_id: uuid.UUID | None) -> uuid.UUID:
    """The chain an event belongs to: its dossier's, or its actor's."""
    return patient_id or uuid.uuid5(_ACTOR_CHAINS, f"{agent.kind}:{agent.subject}")


def record(
    session: Session,
    *,
    agent: Agent,
    action: AuditAction,
    clock: Clock,
    patient_id: uuid.UUID | None = None,
    outcome: AuditOutcome = AuditOutcome.ALLOWED,
    reason: str | None = None,
    entity_ids: Iterable[uuid.UUID] = (),
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to its chain, in the caller's transaction.

    Raises ``AuditUnavailable`` if the trail cannot be written; the caller must then fail.
    """
    chain_id = chain_of(agent, patient_id)
    now = clock.now()
    try:
        # What the caller wrote goes first, as the unit of work would have ordered it.
        session.flush()
        sealer: AuditKey | None = session.info.get(SEALER)
        seq, prev_hash = _advance_head(session, chain_id, now, sealer)
        event = chained(
            AuditEvent(
                chain_id=chain_id,
                seq=seq,
                patient_id=patient_id,
                recorded_at=now,
                action=action,
                outcome=outcome,
                reason=reason,
                entity_ids=json.dumps(sorted(str(entity) for entity in entity_ids)),
                details=json.dumps(details or {}, sort_keys=True, default=str),
            ),
            agent,
            prev_hash,
        )
        row = {f"event_{key}": getattr(event, key) for key in _EVENT_COLUMNS}
        seal = {"sealed_chain": chain_id, "sealed_hash": event.hash, "sealed_at": now}
        seal |= head_seal(sealer, chain_id, seq, event.hash)
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_APPEND_AND_SEAL, row | seal)
        else:
            session.execute(_APPEND, row)
            session.execute(_SEAL, seal)
    except SQLAlchemyError as error:
        raise AuditUnavailable() from error
    return event


@dataclass(frozen=True)
class PendingEvent:
    """An allowed event of a dossier's chain before it is numbered and linked.

    A consultation waiting for its transaction to commit (group commit), or the first event of
    a new dossier's chain (``start_chains``).
    """

    agent: Agent
    action: AuditAction
    patient_id: uuid.UUID
    recorded_at: dt.datetime
    entity_ids: str
    details: str

    @property
    def chain_id(self) -> uuid.UUID:
        """The dossier's chain."""
        return self.patient_id

    def as_event(self, seq: int) -> AuditEvent:
        """The event, numbered ``seq`` in its chain (not yet linked or hashed)."""
        return AuditEvent(
            chain_id=self.patient_id,
            seq=seq,
            patient_id=self.patient_id,
            recorded_at=self.recorded_at,
            action=self.action,
            outcome=AuditOutcome.ALLOWED,
            reason=None,
            entity_ids=self.entity_ids,
            details=self.details,
        )


def record_consultation(
    session: Session,
    *,
    agent: Agent,
    action: AuditAction,
    clock: Clock,
    patient_id: uuid.UUID,
    entity_ids: Iterable[uuid.UUID] = (),
    details: dict[str, Any] | None = None,
    deferrable: bool = True,
) -> AuditEvent | None:
    """Record an allowed consultation of a dossier; the event, or None if it was deferred.

    Where the sessions have a group commit writer (PostgreSQL, see ``group_commit``) and the
    caller needs nothing back (``deferrable``), the event waits in the session and is written
    with other requests' events once the transaction commits; the commit returns only after it
    is written, and raises ``AuditUnavailable`` if it cannot be. Otherwise it is appended in the
    transaction, as ``record`` does. A rolled-back transaction records nothing either way.
    """
    if not deferrable or GROUP_COMMIT not in session.info:
        return record(
            session,
            agent=agent,
            action=action,
            clock=clock,
            patient_id=patient_id,
            entity_ids=entity_ids,
            details=details,
        )
    pending = PendingEvent(
        agent=agent,
        action=action,
        patient_id=patient_id,
        recorded_at=clock.now(),
        entity_ids=json.dumps(sorted(str(entity) for entity in entity_ids)),
        details=json.dumps(details or {}, sort_keys=True, default=str),
    )
    session.info.setdefault(PENDING, []).append(pending)
    return None


def start_chains(
    session: Session,
    *,
    agent: Agent,
    action: AuditAction,
    clock: Clock,
    patient_ids: Sequence[uuid.UUID],
    details: dict[str, Any] | None = None,
) -> int:
    """Record the first event of many new dossiers' chains at once; returns how many.

    Only for dossiers created in the caller's transaction (a registry enrolment): their chains
    cannot exist yet, so no head needs locking and the rows go in two batched INSERTs instead
    of four statements per dossier. Should a chain exist after all, the INSERT fails
    (``AuditUnavailable``) rather than fork it.
    """
    now = clock.now()
    content = json.dumps(details or {}, sort_keys=True, default=str)
    events = [
        chained(
            PendingEvent(agent, action, patient_id, now, "[]", content).as_event(1), agent, GENESIS
        )
        for patient_id in patient_ids
    ]
    if not events:
        return 0
    columns = [column.key for column in AuditEvent.__table__.columns]
    sealer: AuditKey | None = session.info.get(SEALER)
    try:
        # Bulk INSERTs of plain rows: the unit of work would cost more than the events.
        session.execute(
            insert(AuditEvent), [{key: getattr(e, key) for key in columns} for e in events]
        )
        session.execute(
            insert(AuditChainHead),
            [
                {"chain_id": e.chain_id, "last_seq": 1, "last_hash": e.hash, "updated_at": now}
                | _head_columns(head_seal(sealer, e.chain_id, 1, e.hash))
                for e in events
            ],
        )
        session.flush()
    except SQLAlchemyError as error:
        raise AuditUnavailable() from error
    return len(events)


def head_seal(
    sealer: AuditKey | None, chain_id: uuid.UUID, seq: int, last_hash: str
) -> dict[str, str | None]:
    """The seal statement's signature parameters for a head at ``(seq, last_hash)``.

    Without a key (a session the Platform did not make) the head is left unsigned, and
    ``carnet audit verify`` says so.
    """
    if sealer is None:
        return {"sealed_signature": None, "sealed_key": None}
    return {
        "sealed_signature": sealer.seal_head(chain_id, seq, last_hash),
        "sealed_key": sealer.key_id,
    }


def _head_columns(seal: dict[str, str | None]) -> dict[str, str | None]:
    return {"signature": seal["sealed_signature"], "key_id": seal["sealed_key"]}


def chained(event: AuditEvent, agent: Agent, prev_hash: str) -> AuditEvent:
    """``event`` naming ``agent``, linked after ``prev_hash`` and sealed with its own hash."""
    event.agent_kind = agent.kind
    event.agent_subject = agent.subject
    event.agent_professional_id = agent.professional_id
    event.agent_organisation_id = agent.organisation_id
    event.agent_profession = agent.profession
    event.on_behalf_of = agent.on_behalf_of
    event.client_id = agent.client_id
    event.network_address = agent.network_address
    event.prev_hash = prev_hash
    event.hash = event_hash(event)
    return event


def record_refusal(session: Session, refusal: Refusal, *, clock: Clock) -> AuditEvent:
    """Record a denied request (in the way in's own short transaction)."""
    return record(
        session,
        agent=refusal.agent,
        action=refusal.action,
        clock=clock,
        patient_id=refusal.patient_id,
        outcome=AuditOutcome.DENIED,
        reason=refusal.reason,
        entity_ids=refusal.entity_ids,
    )


def has_accessed_before(
    session: Session, patient_id: uuid.UUID, professional_id: uuid.UUID, *, before_seq: int
) -> bool:
    """Whether the professional had an allowed event on this dossier before ``before_seq``."""
    return (
        session.scalar(
            select(AuditEvent.seq)
            .where(
                AuditEvent.chain_id == patient_id,
                AuditEvent.agent_professional_id == professional_id,
                AuditEvent.outcome == AuditOutcome.ALLOWED,
                AuditEvent.seq < before_seq,
            )
            .limit(1)
        )
        is not None
    )


def canonical(event: AuditEvent) -> bytes:
    """The bytes an event's hash covers: every field but the hash, in a fixed form."""
    content = {
        "chain_id": str(event.chain_id),
        "seq": event.seq,
        "patient_id": str(event.patient_id) if event.patient_id else None,
        "recorded_at": event.recorded_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "action": str(event.action),
        "outcome": str(event.outcome),
        "reason": event.reason,
        "agent": [
            event.agent_kind,
            event.agent_subject,
            str(event.agent_professional_id) if event.agent_professional_id else None,
            str(event.agent_organisation_id) if event.agent_organisation_id else None,
            event.agent_profession,
            str(event.on_behalf_of) if event.on_behalf_of else None,
            event.client_id,
            event.network_address,
        ],
        "entity_ids": event.entity_ids,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def event_hash(event: AuditEvent) -> str:
    """SHA-256 of the event's canonical content (which includes the previous hash)."""
    return hashlib.sha256(canonical(event)).hexdigest()


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain stops holding together, and how."""

    chain_id: uuid.UUID
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"chain {self.chain_id}, event {self.seq}: {self.problem}"


@dataclass
class Verification:
    """What ``verify`` found."""

    chains: int = 0
    events: int = 0
    broken: list[BrokenLink] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """Whether every chain holds."""
        return not self.broken


def verify(session: Session, *, chain_ids: Sequence[uuid.UUID] | None = None) -> Verification:
    """Walk every chain (or the given ones) and report the first broken link of each.

    Detects an altered event (its hash no longer matches its content), a deleted or inserted
    one (sequence gap, or ``prev_hash`` not the previous event's hash), reordered events, and a
    truncated tail (the chain's head names a later event than the last one found).
    """
    report = Verification()
    heads = {
        head.chain_id: head
        for head in session.scalars(
            select(AuditChainHead).where(AuditChainHead.chain_id.in_(chain_ids))
            if chain_ids is not None
            else select(AuditChainHead)
        )
    }
    found_chains = set(
        session.scalars(
            select(AuditEvent.chain_id).distinct().where(AuditEvent.chain_id.in_(chain_ids))
            if chain_ids is not None
            else select(AuditEvent.chain_id).distinct()
        )
    )
    for chain_id in sorted(found_chains | set(heads), key=str):
        report.chains += 1
        broken = _verify_chain(session, chain_id, heads.get(chain_id), report)
        if broken is not None:
            report.broken.append(broken)
    return report


def _verify_chain(
    session: Session, chain_id: uuid.UUID, head: AuditChainHead | None, report: Verification
) -> BrokenLink | None:
    expected_seq, previous = 1, GENESIS
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.chain_id == chain_id).order_by(AuditEvent.seq)
    ).yield_per(1000)
    for event in events:
        report.events += 1
        if event.seq != expected_seq:
            return BrokenLink(chain_id, expected_seq, f"missing (found {event.seq} next)")
        if event.prev_hash != previous:
            return BrokenLink(chain_id, event.seq, "does not follow the previous event")
        if event_hash(event) != event.hash:
            return BrokenLink(chain_id, event.seq, "content altered (hash mismatch)")
        previous, expected_seq = event.hash, expected_seq + 1
    if head is None:
        return BrokenLink(chain_id, expected_seq - 1, "chain has no head")
    if head.last_seq != expected_seq - 1 or head.last_hash != previous:
        return BrokenLink(chain_id, expected_seq, f"tail missing (head is at {head.last_seq})")
    return None


def consultations_per_day(
    session: Session, *, since: dt.datetime, until: dt.datetime
) -> list[tuple[dt.date, int]]:
    """Allowed searches, reads and retrievals per day, all dossiers: counts, never content."""
    day = func.date(AuditEvent.recorded_at)
    rows = session.execute(
        select(day, func.count())
        .where(
            AuditEvent.recorded_at >= since,
            AuditEvent.recorded_at < until,
            AuditEvent.outcome == AuditOutcome.ALLOWED,
            AuditEvent.action.in_([AuditAction.SEARCH, AuditAction.READ, AuditAction.RETRIEVE]),
        )
        .group_by(day)
        .order_by(day)
    )
    return [(_as_date(value), count) for value, count in rows]


def emergency_accesses(session: Session, *, since: dt.datetime, until: dt.datetime) -> int:
    """How many times the glass was broken in the period."""
    return (
        session.scalar(
            select(func.count()).where(
                AuditEvent.recorded_at >= since,
                AuditEvent.recorded_at < until,
                AuditEvent.action == AuditAction.BREAK_GLASS,
                AuditEvent.outcome == AuditOutcome.ALLOWED,
            )
        )
        or 0
    )


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


_EVENTS = cast(Table, AuditEvent.__table__)
_HEADS = cast(Table, AuditChainHead.__table__)
_EVENT_COLUMNS = tuple(column.key for column in _EVENTS.columns)
# The head row is the chain's lock: concurrent appends to one dossier queue on it, others do not
# (SQLite has one writer at a time anyway). Taking the next number locks it and returns the
# previous hash in one statement; the event and the head's new hash go in a second.
# Core statements on the tables, built once: this runs on every request.
_ADVANCE = (
    update(_HEADS)
    .where(_HEADS.c.chain_id == bindparam("chain"))
    .values(last_seq=_HEADS.c.last_seq + 1)
    .returning(_HEADS.c.last_seq, _HEADS.c.last_hash, _HEADS.c.signature, _HEADS.c.key_id)
)
# Parameters named apart from the head's columns: in the WITH below, an UPDATE would take a
# parameter named like one of its columns (chain_id) as a value to set.
_APPEND = insert(_EVENTS).values(
    {column: bindparam(f"event_{column.key}", type_=column.type) for column in _EVENTS.columns}
)
_SEAL = (
    update(_HEADS)
    .where(_HEADS.c.chain_id == bindparam("sealed_chain"))
    .values(
        last_hash=bindparam("sealed_hash", type_=_HEADS.c.last_hash.type),
        updated_at=bindparam("sealed_at", type_=_HEADS.c.updated_at.type),
        signature=bindparam("sealed_signature", type_=_HEADS.c.signature.type),
        key_id=bindparam("sealed_key", type_=_HEADS.c.key_id.type),
    )
)
# On PostgreSQL the two writes are one statement (a data-modifying WITH): one round trip less.
_APPEND_AND_SEAL = _APPEND.add_cte(_SEAL.cte("sealed"))


def _advance_head(
    session: Session, chain_id: uuid.UUID, now: dt.datetime, sealer: AuditKey | None
) -> tuple[int, str]:
    """Lock the chain's head and take its next number: ``(seq, previous hash)``.

    Raises ``AuditUnavailable`` when the head is unsigned or carries a signature Carnet did not
    make (``vouch_for_head``).
    """
    advanced = session.execute(_ADVANCE, {"chain": chain_id}).one_or_none()
    if advanced is None:
        dialect = session.get_bind().dialect.name
        insert_head = postgresql_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert_head(AuditChainHead)
            .values(chain_id=chain_id, last_seq=0, last_hash=GENESIS, updated_at=now)
            .on_conflict_do_nothing(index_elements=["chain_id"])
        )
        # Inserted just above, or by a concurrent writer whose row we now wait for.
        advanced = session.execute(_ADVANCE, {"chain": chain_id}).one()
    seq, previous = int(advanced.last_seq), str(advanced.last_hash)
    vouch_for_head(
        sealer,
        chain_id,
        seq=seq - 1,
        last_hash=previous,
        signature=advanced.signature,
        key_id=advanced.key_id,
    )
    return seq, previous


def vouch_for_head(
    sealer: AuditKey | None,
    chain_id: uuid.UUID,
    *,
    seq: int,
    last_hash: str,
    signature: str | None,
    key_id: str | None,
) -> None:
    """Refuse (``AuditUnavailable``) to extend a head Carnet cannot vouch for.

    Without this, an event rewritten after the last checkpoint, its chain re-hashed, would be
    laundered by Carnet's next append: the new head, signed, would vouch for the forged links.
    So a head is extended only if it carries Carnet's signature (or a retired key's) over its
    ``(seq, last_hash)``. An unsigned head is refused too: nothing tells one last written before
    signing began (revision 0009) from one whose signature was deleted to launder an edit;
    ``carnet audit seal-unsigned`` seals the former, once, after checking their links. The one
    exception is an empty chain's head (event 0, the genesis hash), inserted unsigned in the
    transaction that appends its first event: extending it vouches for nothing. Ed25519
    signatures are deterministic, so the head is re-signed and compared (as costly as signing;
    verifying would cost three times more). Without a key (a session the Platform did not make)
    nothing is checked and nothing is sealed.
    """
    if sealer is None or (seq == 0 and last_hash == GENESIS and signature is None):
        return
    if signature is None:
        log.error(
            "audit chain %s: its head (event %d) is unsigned; nothing appended — a head from "
            "before signing is sealed by `carnet audit seal-unsigned`, a signature removed is "
            "named by `carnet audit verify --checkpoints`",
            chain_id,
            seq,
        )
        raise AuditUnavailable()
    if sealer.vouches_for(chain_id, seq, last_hash, signature, key_id):
        return
    log.error(
        "audit chain %s: its head (event %d) carries a signature Carnet did not make; "
        "nothing appended — run `carnet audit verify --checkpoints`",
        chain_id,
        seq,
    )
    raise AuditUnavailable()
