"""Group commit of consultation records: many requests' audit events, one transaction.

Recording a read in the read's own transaction turns every read into a write: two more
statements on the request's path and a WAL flush per request. On PostgreSQL each worker
process runs one writer thread instead. A request's consultation events wait in its session
(``service.record_consultation``); when its transaction commits, they are handed to the writer
and the commit returns only once the batch holding them is committed — so a response never
leaves unrecorded, and nothing relies on ``synchronous_commit=off``. Under load a batch holds
the events of every request that committed while the previous batch was being written: one
transaction, four statements and one WAL flush for all of them.

What stays in the request's transaction: every write's record (it commits with the write), every
refusal (the way in's own short transaction), and a professional's possible first consultation
of a dossier (its notice to the patient must be sent exactly once, which the chain head's lock
in the request's transaction guarantees). SQLite has one writer at a time: a second
connection's transaction would wait on the request's, so there is no writer there.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import defaultdict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Final, cast

from sqlalchemy import Connection, Engine, Table, bindparam, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from carnet.audit.errors import AuditUnavailable
from carnet.audit.models import AuditChainHead, AuditEvent
from carnet.audit.service import (
    GENESIS,
    GROUP_COMMIT,
    PENDING,
    PendingEvent,
    chained,
    head_seal,
    vouch_for_head,
)
from carnet.audit.signing import AuditKey

log = logging.getLogger(__name__)

# Large enough that a busy worker's requests share a flush; small enough that one batch's
# statements stay short.
MAX_BATCH: Final = 512
# How long a request waits for its batch before it fails (503) rather than answer unrecorded.
WAIT_SECONDS: Final = 10.0
# A batch that met a deadlock (its heads locked in another order by a request's transaction)
# is written again; PostgreSQL rolled the whole batch back.
ATTEMPTS: Final = 3
_DEADLOCK: Final = "40P01"


@dataclass
class _Handoff:
    """One request's events and the future its commit waits on."""

    events: list[PendingEvent]
    written: Future[None] = field(default_factory=Future)


_STOP: Final = object()


class GroupCommit:
    """A worker's audit writer: appends handed-off events in batches, one transaction each."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = MAX_BATCH,
        wait_seconds: float = WAIT_SECONDS,
        sealer: AuditKey | None = None,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("group commit needs PostgreSQL; SQLite records in the transaction")
        self.engine = engine
        # The audit key that seals the heads this writer advances (``carnet.audit.signing``).
        self.sealer = sealer
        self.max_batch = max_batch
        self.wait_seconds = wait_seconds
        self.batches = 0
        self.events = 0
        self._queue: queue.SimpleQueue[_Handoff | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def serve(self, sessions: sessionmaker[Session]) -> None:
        """Make ``sessions`` hand their consultation events to this writer on commit."""
        # Added to what the factory's sessions already carry (the audit key, ``signing.SEALER``).
        sessions.configure(info={**sessions.kw.get("info", {}), GROUP_COMMIT: self})
        event.listen(sessions, "after_commit", _hand_off)
        event.listen(sessions, "after_rollback", _drop_pending)

    def write(self, events: list[PendingEvent]) -> None:
        """Append ``events`` (in order) and return once they are committed.

        Raises ``AuditUnavailable`` if they could not be written in time.
        """
        if not events:
            return
        handoff = _Handoff(events)
        self._start()
        self._queue.put(handoff)
        try:
            handoff.written.result(timeout=self.wait_seconds)
        except FutureTimeout as error:
            log.error("audit group commit: no answer in %.0f s", self.wait_seconds)
            raise AuditUnavailable() from error

    def queued(self) -> int:
        """How many requests' events wait for the next batch."""
        return self._queue.qsize()

    def close(self) -> None:
        """Write what was handed over, then stop the writer thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _start(self) -> None:
        # Started on first use, not at construction: a forked worker must own its thread.
        if self._thread is not None:
            return
        with self._lock:
            if self._closed:
                raise AuditUnavailable()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="carnet-audit-group-commit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [cast(_Handoff, first)]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(cast(_Handoff, item))
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Handoff]) -> None:
        events = [pending for handoff in batch for pending in handoff.events]
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    append_batch(connection, events, sealer=self.sealer)
            except DBAPIError as error:
                if _sqlstate(error) == _DEADLOCK and attempt < ATTEMPTS:
                    continue
                self._fail(batch, error)
                return
            except (SQLAlchemyError, ValueError, AuditUnavailable) as error:
                self._fail(batch, error)
                return
            break
        self.batches += 1
        self.events += len(events)
        for handoff in batch:
            handoff.written.set_result(None)

    @staticmethod
    def _fail(batch: list[_Handoff], error: Exception) -> None:
        # The error's text may quote the row: its class only, the rest is in the database's log.
        log.error("audit group commit: a batch failed (%s)", type(error).__name__)
        for handoff in batch:
            handoff.written.set_exception(AuditUnavailable())


def append_batch(
    connection: Connection, events: list[PendingEvent], *, sealer: AuditKey | None = None
) -> None:
    """Append ``events`` to their chains in the connection's transaction.

    The heads of every chain in the batch are locked in one statement, in chain order (so two
    workers' writers cannot deadlock each other); each chain's events are numbered and hashed
    after its head; the events go in as one multi-row INSERT and the heads are advanced (and
    sealed with ``sealer``, when given) in one pipelined UPDATE.
    """
    by_chain: dict[uuid.UUID, list[PendingEvent]] = defaultdict(list)
    for pending in events:
        by_chain[pending.chain_id].append(pending)
    chains = sorted(by_chain)
    heads = {row.chain_id: row for row in connection.execute(_LOCK_HEADS, {"chains": chains})}
    missing = [chain for chain in chains if chain not in heads]
    if missing:
        now = events[0].recorded_at
        connection.execute(
            _NEW_HEADS,
            [
                {"chain_id": chain, "last_seq": 0, "last_hash": GENESIS, "updated_at": now}
                for chain in missing
            ],
        )
        # Inserted just now, or by a concurrent writer whose row we now wait for.
        heads |= {row.chain_id: row for row in connection.execute(_LOCK_HEADS, {"chains": missing})}
    rows: list[dict[str, object]] = []
    sealed: list[dict[str, object]] = []
    for chain in chains:
        head = heads[chain]
        seq, previous = int(head.last_seq), str(head.last_hash)
        # A head Carnet did not seal fails the batch (AuditUnavailable) rather than be extended.
        vouch_for_head(
            sealer,
            chain,
            seq=seq,
            last_hash=previous,
            signature=head.signature,
            key_id=head.key_id,
        )
        last_at = head.updated_at
        for pending in by_chain[chain]:
            seq += 1
            appended = chained(pending.as_event(seq), pending.agent, previous)
            rows.append({key: getattr(appended, key) for key in _EVENT_COLUMNS})
            previous, last_at = appended.hash, max(last_at, pending.recorded_at)
        sealed.append(
            {
                "sealed_chain": chain,
                "sealed_seq": seq,
                "sealed_hash": previous,
                "sealed_at": last_at,
            }
            | head_seal(sealer, chain, seq, previous)
        )
    connection.execute(insert(_EVENTS), rows)
    connection.execute(_ADVANCE_HEADS, sealed)


def _hand_off(session: Session) -> None:
    """After a commit: write the session's pending consultation events before returning."""
    pending: list[PendingEvent] | None = session.info.pop(PENDING, None)
    if pending:
        writer: GroupCommit = session.info[GROUP_COMMIT]
        writer.write(pending)


def _drop_pending(session: Session) -> None:
    """After a rollback: what was not delivered was not consulted."""
    session.info.pop(PENDING, None)


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


_EVENTS = cast(Table, AuditEvent.__table__)
_HEADS = cast(Table, AuditChainHead.__table__)
_EVENT_COLUMNS = tuple(column.key for column in _EVENTS.columns)
_LOCK_HEADS = (
    select(
        _HEADS.c.chain_id,
        _HEADS.c.last_seq,
        _HEADS.c.last_hash,
        _HEADS.c.updated_at,
        _HEADS.c.signature,
        _HEADS.c.key_id,
    )
    .where(_HEADS.c.chain_id.in_(bindparam("chains", expanding=True)))
    .order_by(_HEADS.c.chain_id)
    .with_for_update()
)
_NEW_HEADS = postgresql_insert(_HEADS).on_conflict_do_nothing(index_elements=["chain_id"])
_ADVANCE_HEADS = (
    update(_HEADS)
    .where(_HEADS.c.chain_id == bindparam("sealed_chain"))
    .values(
        last_seq=bindparam("sealed_seq", type_=_HEADS.c.last_seq.type),
        last_hash=bindparam("sealed_hash", type_=_HEADS.c.last_hash.type),
        updated_at=bindparam("sealed_at", type_=_HEADS.c.updated_at.type),
        signature=bindparam("sealed_signature", type_=_HEADS.c.signature.type),
        key_id=bindparam("sealed_key", type_=_HEADS.c.key_id.type),
    )
)
