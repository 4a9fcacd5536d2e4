"""Group commit: consultation events of many requests appended in one transaction, never lost."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from carnet import schema
from carnet.audit import service as audit
from carnet.audit.errors import AuditUnavailable
from carnet.audit.group_commit import GroupCommit, append_batch
from carnet.audit.models import AuditAction, AuditChainHead, AuditEvent
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.platform import build_platform
from carnet.settings import Settings
from conftest import throwaway_postgres

AGENT = audit.Agent(kind="professional", subject="Practitioner/gc", professional_id=uuid.uuid4())


@pytest.fixture(scope="module")
def postgres() -> Iterator[Engine]:
    """A committed PostgreSQL database of the module's own (the writer has its connection)."""
    with throwaway_postgres() as url:
        engine = make_engine(url)
        schema.upgrade(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def writer(postgres: Engine) -> Iterator[GroupCommit]:
    group_commit = GroupCommit(postgres)
    yield group_commit
    group_commit.close()


@pytest.fixture
def sessions(postgres: Engine, writer: GroupCommit) -> sessionmaker[Session]:
    served = session_factory(postgres)
    writer.serve(served)
    return served


def _pending(patient_id: uuid.UUID, clock: FrozenClock, n: int = 1) -> list[audit.PendingEvent]:
    events = []
    for _ in range(n):
        clock.advance(dt.timedelta(seconds=1))
        events.append(
            audit.PendingEvent(
                agent=AGENT,
                action=AuditAction.READ,
                patient_id=patient_id,
                recorded_at=clock.now(),
                entity_ids=f'["{uuid.uuid4()}"]',
                details='{"basis": "grant-normal"}',
            )
        )
    return events


def _consult(session: Session, patient_id: uuid.UUID, clock: FrozenClock) -> None:
    audit.record_consultation(
        session,
        agent=AGENT,
        action=AuditAction.RETRIEVE,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[uuid.uuid4()],
    )


def _events(engine: Engine, patient_id: uuid.UUID) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(AuditEvent).where(AuditEvent.chain_id == patient_id).order_by(AuditEvent.seq)
            )
        )


def _intact(engine: Engine, *chains: uuid.UUID) -> bool:
    with Session(engine) as session:
        return audit.verify(session, chain_ids=list(chains)).intact


class TestAppendBatch:
    def test_numbers_and_links_each_chain_after_its_head(
        self, postgres: Engine, clock: FrozenClock
    ) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        with unit_of_work(session_factory(postgres)) as session:
            earlier = audit.record(
                session, agent=AGENT, action=AuditAction.READ, clock=clock, patient_id=first
            )
        mixed = [*_pending(first, clock, 2), *_pending(second, clock, 3), *_pending(first, clock)]
        with postgres.begin() as connection:
            append_batch(connection, mixed)

        events = _events(postgres, first)
        assert [e.seq for e in events] == [1, 2, 3, 4]
        assert events[1].prev_hash == earlier.hash
        # Order within a chain is the order handed over.
        assert [e.recorded_at for e in events[1:]] == [
            p.recorded_at for p in mixed if p.patient_id == first
        ]
        assert [e.seq for e in _events(postgres, second)] == [1, 2, 3]
        assert _intact(postgres, first, second)
        with Session(postgres) as session:
            head = session.get(AuditChainHead, first)
            assert head is not None
            assert (head.last_seq, head.last_hash) == (4, events[-1].hash)
            assert head.updated_at == mixed[-1].recorded_at

    def test_in_transaction_records_continue_the_same_chain(
        self, postgres: Engine, clock: FrozenClock
    ) -> None:
        patient_id = uuid.uuid4()
        with postgres.begin() as connection:
            append_batch(connection, _pending(patient_id, clock, 2))
        with unit_of_work(session_factory(postgres)) as session:
            later = audit.record(
                session, agent=AGENT, action=AuditAction.PUBLISH, clock=clock, patient_id=patient_id
            )
        assert later.seq == 3
        assert _intact(postgres, patient_id)


class TestServedSessions:
    def test_a_consultation_is_written_when_its_transaction_commits(
        self, postgres: Engine, sessions: sessionmaker[Session], clock: FrozenClock
    ) -> None:
        patient_id = uuid.uuid4()
        with unit_of_work(sessions) as session:
            _consult(session, patient_id, clock)
            _consult(session, patient_id, clock)
            # Not in the request's transaction: the writer appends it after the commit.
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.chain_id == patient_id)
                )
                == 0
            )
        # The commit returned: the events are already committed, by the writer.
        events = _events(postgres, patient_id)
        assert [(e.seq, e.action) for e in events] == [
            (1, AuditAction.RETRIEVE),
            (2, AuditAction.RETRIEVE),
        ]
        assert events[0].agent_professional_id == AGENT.professional_id
        assert _intact(postgres, patient_id)

    def test_a_possible_first_consultation_is_appended_in_the_transaction(
        self, postgres: Engine, sessions: sessionmaker[Session], clock: FrozenClock
    ) -> None:
        patient_id = uuid.uuid4()
        with unit_of_work(sessions) as session:
            event = audit.record_consultation(
                session,
                agent=AGENT,
                action=AuditAction.READ,
                clock=clock,
                patient_id=patient_id,
                deferrable=False,
            )
            # Numbered under the head's lock, in this transaction: the caller can ask the trail.
            assert event is not None
            assert event.seq == 1
            assert audit.PENDING not in session.info
        assert [e.seq for e in _events(postgres, patient_id)] == [1]

    def test_a_rolled_back_transaction_records_nothing(
        self, postgres: Engine, sessions: sessionmaker[Session], clock: FrozenClock
    ) -> None:
        patient_id = uuid.uuid4()

        def failing_request() -> None:
            with unit_of_work(sessions) as session:
                _consult(session, patient_id, clock)
                raise RuntimeError("the request failed after its read")

        with pytest.raises(RuntimeError):
            failing_request()
        with unit_of_work(sessions) as session:
            session.execute(select(1))
        assert _events(postgres, patient_id) == []

    def test_the_commit_fails_when_the_trail_cannot_be_written(
        self, postgres: Engine, clock: FrozenClock
    ) -> None:
        unreachable = make_engine(
            postgres.url.set(database=f"carnet_missing_{uuid.uuid4().hex[:8]}").render_as_string(
                hide_password=False
            )
        )
        broken = GroupCommit(unreachable)
        served = session_factory(postgres)
        broken.serve(served)
        try:
            with pytest.raises(AuditUnavailable), unit_of_work(served) as session:
                _consult(session, uuid.uuid4(), clock)
        finally:
            broken.close()
            unreachable.dispose()

    def test_a_closed_writer_refuses_rather_than_drop(
        self, sessions: sessionmaker[Session], writer: GroupCommit, clock: FrozenClock
    ) -> None:
        writer.close()
        with pytest.raises(AuditUnavailable), unit_of_work(sessions) as session:
            _consult(session, uuid.uuid4(), clock)

    def test_requests_waiting_together_share_one_transaction(
        self, postgres: Engine, sessions: sessionmaker[Session], writer: GroupCommit
    ) -> None:
        busy, others = uuid.uuid4(), [uuid.uuid4() for _ in range(6)]
        clock = FrozenClock(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC))
        with unit_of_work(sessions) as session:  # batch 1; the busy dossier's head exists
            _consult(session, busy, clock)
        # A request's transaction holds the busy dossier's head: the writer's next batch waits.
        holder = postgres.connect()
        holding = holder.begin()
        holder.execute(
            select(AuditChainHead).where(AuditChainHead.chain_id == busy).with_for_update()
        )
        failures: list[BaseException] = []

        def consult(patient_id: uuid.UUID) -> None:
            try:
                with unit_of_work(sessions) as session:
                    _consult(session, patient_id, clock)
            except BaseException as error:  # reported by the assertion below
                failures.append(error)

        first = threading.Thread(target=consult, args=(busy,))
        first.start()
        _wait_until(lambda: _lock_waits(postgres) == 1)  # batch 2, blocked
        rest = [threading.Thread(target=consult, args=(other,)) for other in others]
        for thread in rest:
            thread.start()
        _wait_until(lambda: writer.queued() == len(others))
        holding.rollback()
        holder.close()
        for thread in [first, *rest]:
            thread.join(timeout=30)
        assert failures == []
        # The first batch, the blocked one, then the six requests that waited, together.
        assert writer.batches == 3
        assert writer.events == 2 + len(others)
        assert _intact(postgres, busy, *others)


class TestWhereThereIsNoWriter:
    def test_sqlite_records_in_the_transaction(self) -> None:
        sqlite = make_engine("sqlite://")
        with pytest.raises(ValueError, match="PostgreSQL"):
            GroupCommit(sqlite)
        sqlite.dispose()

    def test_build_platform_serves_postgresql_when_asked(
        self, postgres: Engine, tmp_path: Path
    ) -> None:
        var = tmp_path
        url = postgres.url.render_as_string(hide_password=False)
        on_postgres = build_platform(
            Settings(var_dir=var, database_url=url, audit_group_commit=True)
        )
        on_sqlite = build_platform(Settings(var_dir=var, audit_group_commit=True))
        by_default = build_platform(Settings(var_dir=var, database_url=url))
        try:
            assert on_postgres.audit_group_commit is not None
            assert on_sqlite.audit_group_commit is None
            assert by_default.audit_group_commit is None
        finally:
            for platform in (on_postgres, on_sqlite, by_default):
                platform.close()


def _lock_waits(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)
