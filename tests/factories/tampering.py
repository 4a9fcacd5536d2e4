"""A recorded audit history, and what a database owner can do to it, for the tamper tests."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.audit import service as audit
from carnet.audit.checkpoints import (
    read_log,
    take_checkpoint,
)
from carnet.audit.models import AuditAction, AuditChainHead, AuditEvent
from carnet.audit.signing import SEALER, AuditKey, KeyRing
from carnet.audit.verify import TrailReport, verify_trail
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.documents import reading
from carnet.storage import FilesystemDocumentStore
from factories.actors import professional_actor
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient


def sealed(engine: Engine, key: AuditKey) -> sessionmaker[Session]:
    """Sessions as the Platform makes them: they seal the heads they advance."""
    sessions = session_factory(engine)
    sessions.configure(info={SEALER: key})
    return sessions


@dataclass
class History:
    """A dossier with real events (publications, a read) and where its head stood."""

    patient: uuid.UUID
    other: uuid.UUID
    # (last_seq, last_hash, signature, key_id) after each committed step.
    heads: list[tuple[int, str, str | None, str | None]]
    # Who published, and the last document published, to read it again.
    author: Actor
    document: uuid.UUID


def _head(engine: Engine, chain: uuid.UUID) -> tuple[int, str, str | None, str | None]:
    with session_factory(engine)() as session:
        head = session.get(AuditChainHead, chain)
        if head is None:  # a new dossier's chain starts with its first event
            return 0, audit.GENESIS, None, None
        return head.last_seq, head.last_hash, head.signature, head.key_id


def _record_history(
    engine: Engine, key: AuditKey, store: FilesystemDocumentStore, clock: FrozenClock
) -> History:
    """Publish two documents to a dossier and read one back, each step its own transaction."""
    sessions = sealed(engine, key)
    with unit_of_work(sessions) as session:
        patient = make_patient(session, clock).id
        other = make_patient(session, clock).id
        lab = make_organisation(session, clock)
        author = professional_actor(make_professional(session, clock, organisation_id=lab.id))
    with unit_of_work(sessions) as session:
        make_document(session, store, clock, actor=author, patient_id=other)
    heads = [_head(engine, patient)]
    for _ in range(2):
        clock.advance(dt.timedelta(minutes=1))
        with unit_of_work(sessions) as session:
            document = make_document(session, store, clock, actor=author, patient_id=patient)
        heads.append(_head(engine, patient))
    clock.advance(dt.timedelta(minutes=1))
    with unit_of_work(sessions) as session:
        reading.read_content(
            session,
            open_dossier(session, author, patient, purposes.RETRIEVE_DOCUMENTS, clock=clock),
            document.id,
            store,
        )
    heads.append(_head(engine, patient))
    return History(patient, other, heads, author, document.id)


def _more_events(
    engine: Engine, key: AuditKey, chain: uuid.UUID, clock: FrozenClock, n: int
) -> None:
    agent = audit.Agent(kind="professional", subject="Practitioner/later")
    for _ in range(n):
        clock.advance(dt.timedelta(minutes=1))
        with unit_of_work(sealed(engine, key)) as session:
            audit.record(
                session,
                agent=agent,
                action=AuditAction.READ,
                clock=clock,
                patient_id=chain,
            )


def _tamper(engine: Engine, *statements: str, **values: Any) -> None:
    """What the database's superuser can do: switch the guard off, rewrite, switch it on."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS audit_events_no_delete"))
        for statement in statements:
            connection.execute(text(statement), values)
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))


def _rehash_from(engine: Engine, chain: uuid.UUID, first_seq: int) -> None:
    """Re-link and re-hash the chain from ``first_seq`` with the public algorithm; move the head.

    The head keeps its old signature: the tamperer does not hold Carnet's key.
    """
    with session_factory(engine)() as session:
        events = list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.chain_id == chain).order_by(AuditEvent.seq)
            )
        )
        session.expunge_all()
    previous = audit.GENESIS
    statements: list[str] = []
    values: dict[str, str] = {}
    for event in events:
        if event.seq >= first_seq:
            event.prev_hash = previous
            event.hash = audit.event_hash(event)
            n = event.seq
            statements.append(
                f"UPDATE audit_events SET prev_hash = :p{n}, hash = :h{n} "
                f"WHERE chain_id = :chain AND seq = {n}"
            )
            values |= {f"p{n}": event.prev_hash, f"h{n}": event.hash}
        previous = event.hash
    statements.append("UPDATE audit_chain_heads SET last_hash = :last WHERE chain_id = :chain")
    _tamper(engine, *statements, chain=_db(engine, chain), last=previous, **values)


def _rewrite_last_event(engine: Engine, history: History) -> int:
    """Edit the reason of the chain's last event and re-hash it, as a tamperer covering an
    action up would; returns that event's seq. The head keeps its (now wrong) signature."""
    last = history.heads[-1][0]
    _tamper(
        engine,
        "UPDATE audit_events SET reason = 'nothing to see' WHERE chain_id = :chain AND seq = :seq",
        chain=_db(engine, history.patient),
        seq=last,
    )
    _rehash_from(engine, history.patient, last)
    return last


def _strip_head_signature(engine: Engine, chain: uuid.UUID) -> None:
    """Remove the head's signature and key id, so that it looks like a head from before signing."""
    _tamper(
        engine,
        "UPDATE audit_chain_heads SET signature = NULL, key_id = NULL WHERE chain_id = :chain",
        chain=_db(engine, chain),
    )


def _db(engine: Engine, value: uuid.UUID) -> str:
    # SQLAlchemy stores UUIDs as 32 hex digits on SQLite, as native uuid on PostgreSQL.
    return str(value) if engine.dialect.name == "postgresql" else value.hex


def _event_count(engine: Engine) -> int:
    with session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _links_intact(engine: Engine) -> bool:
    with session_factory(engine)() as session:
        return audit.verify(session).intact


def _verify(engine: Engine, key: AuditKey, log: Path | None) -> TrailReport:
    ring = KeyRing.of([key.public])
    with session_factory(engine)() as session:
        return verify_trail(session, ring, checkpoints=read_log(log, ring) if log else None)


def _checkpoint(engine: Engine, key: AuditKey, log: Path, clock: FrozenClock) -> None:
    with unit_of_work(session_factory(engine)) as session:
        take_checkpoint(session, log, key=key, clock=clock)


def _found(report: TrailReport) -> list[tuple[str, uuid.UUID | None]]:
    return [(finding.kind, finding.chain_id) for finding in report.findings]
