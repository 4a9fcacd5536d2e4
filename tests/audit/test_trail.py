"""The audit trail: hash-chained per dossier, append-only, and every tampering detected."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carnet.audit import service as audit
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work

AGENT = audit.Agent(kind="professional", subject="Practitioner/x", profession="nurse")


def _append(
    session: Session, clock: FrozenClock, patient_id: uuid.UUID, n: int
) -> list[AuditEvent]:
    events = []
    for _ in range(n):
        clock.advance(dt.timedelta(seconds=1))
        events.append(
            audit.record(
                session,
                agent=AGENT,
                action=AuditAction.READ,
                clock=clock,
                patient_id=patient_id,
                entity_ids=[uuid.uuid4()],
                details={"basis": "grant-normal"},
            )
        )
    return events


class TestRecord:
    def test_chains_events_per_dossier(self, session: Session, clock: FrozenClock) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        a = _append(session, clock, first, 3)
        b = _append(session, clock, second, 2)
        assert [e.seq for e in a] == [1, 2, 3]
        assert [e.seq for e in b] == [1, 2]
        assert a[0].prev_hash == audit.GENESIS
        assert a[1].prev_hash == a[0].hash
        assert a[2].prev_hash == a[1].hash
        assert audit.event_hash(a[2]) == a[2].hash
        assert audit.verify(session).intact

    def test_events_without_a_dossier_chain_by_actor(
        self, session: Session, clock: FrozenClock
    ) -> None:
        event = audit.record(session, agent=AGENT, action=AuditAction.SIGN_IN, clock=clock)
        assert event.patient_id is None
        assert event.chain_id == audit.chain_of(AGENT, None)
        again = audit.record(session, agent=AGENT, action=AuditAction.SIGN_IN, clock=clock)
        assert (again.chain_id, again.seq) == (event.chain_id, 2)

    def test_refusals_are_recorded_as_denied(self, session: Session, clock: FrozenClock) -> None:
        patient = uuid.uuid4()
        event = audit.record_refusal(
            session,
            audit.Refusal(AGENT, AuditAction.RETRIEVE, "masked", patient, (uuid.uuid4(),)),
            clock=clock,
        )
        assert event.outcome is AuditOutcome.DENIED
        assert event.reason == "masked"

    def test_first_access(self, session: Session, clock: FrozenClock) -> None:
        patient, professional = uuid.uuid4(), uuid.uuid4()
        agent = audit.Agent(kind="professional", subject="p", professional_id=professional)
        first = audit.record(
            session, agent=agent, action=AuditAction.SEARCH, clock=clock, patient_id=patient
        )
        assert not audit.has_accessed_before(session, patient, professional, before_seq=first.seq)
        second = audit.record(
            session, agent=agent, action=AuditAction.READ, clock=clock, patient_id=patient
        )
        assert audit.has_accessed_before(session, patient, professional, before_seq=second.seq)

    def test_counts_for_the_agency(self, session: Session, clock: FrozenClock) -> None:
        patient = uuid.uuid4()
        _append(session, clock, patient, 3)
        clock.advance(dt.timedelta(days=1))
        _append(session, clock, patient, 2)
        audit.record(
            session,
            agent=AGENT,
            action=AuditAction.BREAK_GLASS,
            clock=clock,
            patient_id=patient,
            reason="unconscious",
        )
        since = clock.now() - dt.timedelta(days=3)
        days = audit.consultations_per_day(
            session, since=since, until=clock.now() + dt.timedelta(days=1)
        )
        assert [count for _, count in days] == [3, 2]
        assert (
            audit.emergency_accesses(session, since=since, until=clock.now() + dt.timedelta(days=1))
            == 1
        )


class TestAppendOnly:
    @pytest.mark.parametrize(
        "statement", ["UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events"]
    )
    def test_database_refuses_changes(
        self, session: Session, clock: FrozenClock, statement: str
    ) -> None:
        _append(session, clock, uuid.uuid4(), 1)
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement))


def _tamper(engine: Engine, *statements: str) -> None:
    """What a DBA with the keys could do: switch the guard off, change history, switch it on."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_events_no_update"))
            connection.execute(text("DROP TRIGGER audit_events_no_delete"))
        for statement in statements:
            connection.execute(text(statement))


@pytest.fixture
def trail(committing_engine: Engine, clock: FrozenClock) -> tuple[Engine, uuid.UUID]:
    patient = uuid.uuid4()
    with unit_of_work(session_factory(committing_engine)) as session:
        _append(session, clock, patient, 5)
        _append(session, clock, uuid.uuid4(), 2)
    return committing_engine, patient


def _verify(engine: Engine) -> audit.Verification:
    with session_factory(engine)() as session:
        return audit.verify(session)


class TestTamperingIsDetected:
    def test_intact(self, trail: tuple[Engine, uuid.UUID]) -> None:
        report = _verify(trail[0])
        assert report.intact
        assert (report.chains, report.events) == (2, 7)

    def test_altered_content(self, trail: tuple[Engine, uuid.UUID]) -> None:
        engine, patient = trail
        _tamper(
            engine,
            "UPDATE audit_events SET agent_subject = 'someone else' "
            f"WHERE chain_id = '{_db(engine, patient)}' AND seq = 3",
        )
        (broken,) = _verify(engine).broken
        assert (broken.chain_id, broken.seq) == (patient, 3)
        assert "altered" in broken.problem

    def test_deleted_event(self, trail: tuple[Engine, uuid.UUID]) -> None:
        engine, patient = trail
        _tamper(
            engine,
            f"DELETE FROM audit_events WHERE chain_id = '{_db(engine, patient)}' AND seq = 2",
        )
        (broken,) = _verify(engine).broken
        assert (broken.chain_id, broken.seq) == (patient, 2)
        assert "missing" in broken.problem

    def test_reordered_events(self, trail: tuple[Engine, uuid.UUID]) -> None:
        engine, patient = trail
        chain = _db(engine, patient)
        _tamper(
            engine,
            f"UPDATE audit_events SET seq = 100 WHERE chain_id = '{chain}' AND seq = 2",
            f"UPDATE audit_events SET seq = 2 WHERE chain_id = '{chain}' AND seq = 3",
            f"UPDATE audit_events SET seq = 3 WHERE chain_id = '{chain}' AND seq = 100",
        )
        (broken,) = _verify(engine).broken
        assert (broken.chain_id, broken.seq) == (patient, 2)
        assert "does not follow" in broken.problem

    def test_truncated_tail(self, trail: tuple[Engine, uuid.UUID]) -> None:
        engine, patient = trail
        _tamper(
            engine,
            f"DELETE FROM audit_events WHERE chain_id = '{_db(engine, patient)}' AND seq = 5",
        )
        (broken,) = _verify(engine).broken
        assert broken.chain_id == patient
        assert "tail missing" in broken.problem

    def test_cli_names_the_broken_record(
        self, trail: tuple[Engine, uuid.UUID], tmp_path: Path
    ) -> None:
        engine, patient = trail
        url = engine.url.render_as_string(hide_password=False)
        env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": url}
        # The fixture's sessions hold no audit key, as Carnet before signing: seal those heads.
        sealed = CliRunner().invoke(app, ["audit", "seal-unsigned"], env=env)
        assert sealed.exit_code == 0, sealed.output
        assert "Sealed 2 unsigned chain heads" in sealed.output
        intact = CliRunner().invoke(app, ["audit", "verify"], env=env)
        assert intact.exit_code == 0, intact.output
        assert "intact: 7 events in 2 chains" in intact.output
        _tamper(
            engine,
            "UPDATE audit_events SET reason = 'nothing to see' "
            f"WHERE chain_id = '{_db(engine, patient)}' AND seq = 4",
        )
        broken = CliRunner().invoke(app, ["audit", "verify"], env=env)
        assert broken.exit_code == 1
        assert f"chain {patient}, event 4: content altered" in broken.output


def _db(engine: Engine, value: uuid.UUID) -> str:
    # SQLAlchemy stores UUIDs as 32 hex digits on SQLite, as native uuid on PostgreSQL.
    return str(value) if engine.dialect.name == "postgresql" else value.hex


def test_concurrent_appends_to_one_dossier_stay_chained(committing_engine: Engine) -> None:
    sessions = session_factory(committing_engine)
    patient = uuid.uuid4()
    clock = FrozenClock(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(10):
                with unit_of_work(sessions) as session:
                    audit.record(
                        session,
                        agent=AGENT,
                        action=AuditAction.READ,
                        clock=clock,
                        patient_id=patient,
                    )
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        report = audit.verify(session)
    assert report.intact
    assert report.events == 40
