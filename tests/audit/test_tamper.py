"""The audit trail against its database owner: signed heads, checkpoints, a least-privilege role.

What a superuser of the database can do to the trail — switch the triggers off, delete a
dossier's chain with its head, truncate a tail and put back an earlier (genuinely signed) head,
edit an event and re-hash the chain with the public algorithm — leaves every chain internally
consistent, so ``service.verify`` alone says intact (each test shows it). Each is detected by
``verify_trail`` against the last checkpoint, naming the chain (issue 15).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from carnet.access.actors import Actor
from carnet.audit import service as audit
from carnet.audit.checkpoints import (
    CheckpointSchedule,
    publish_due_checkpoint,
    read_log,
    take_checkpoint,
)
from carnet.audit.errors import AuditUnavailable
from carnet.audit.group_commit import append_batch
from carnet.audit.models import AuditAction, AuditChainHead, AuditEvent
from carnet.audit.signing import SEALER, AuditKey, KeyRing, head_message, load_public_key
from carnet.audit.unsigned_heads import unsigned_heads_remain
from carnet.audit.verify import TrailReport, verify_trail
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.documents import reading
from carnet.lifecycle.jobs import run_jobs
from carnet.migrations.privileges import grant_runtime
from carnet.schema import metadata
from carnet.storage import FilesystemDocumentStore
from factories.actors import professional_actor
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient


@pytest.fixture(scope="module")
def key() -> AuditKey:
    """Carnet's audit key for the module (the database never sees it)."""
    return AuditKey.generate()


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
        reading.read_content(session, store, author, patient, document.id, clock=clock)
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


@pytest.fixture
def trail(
    committing_engine: Engine,
    key: AuditKey,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    tmp_path: Path,
) -> tuple[Engine, History, Path]:
    """Real events, a checkpoint, then two more events on the dossier's chain."""
    history = _record_history(committing_engine, key, store, clock)
    log = tmp_path / "checkpoints.jsonl"
    clock.advance(dt.timedelta(minutes=1))
    _checkpoint(committing_engine, key, log, clock)
    _more_events(committing_engine, key, history.patient, clock, 2)
    history.heads.append(_head(committing_engine, history.patient))
    return committing_engine, history, log


class TestTamperingByTheDatabaseOwner:
    def test_untouched_trail_is_intact_and_signed(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, _, log = trail
        report = _verify(engine, key, log)
        assert report.intact, [str(f) for f in report.findings]
        assert report.signed_heads == 2
        # Every head sealed as its first event was appended: none left unsigned, even briefly.
        with session_factory(engine)() as session:
            assert session.scalar(select(func.count()).select_from(AuditChainHead)) == 2
            assert not unsigned_heads_remain(session)
        assert report.checkpointed_chains == 2

    def test_deleted_chain_with_its_head(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        _tamper(
            engine,
            "DELETE FROM audit_events WHERE chain_id = :chain",
            "DELETE FROM audit_chain_heads WHERE chain_id = :chain",
            chain=_db(engine, history.patient),
        )
        assert _links_intact(engine)
        assert _found(_verify(engine, key, log)) == [("deleted chain", history.patient)]

    def test_truncated_tail_and_an_earlier_signed_head_put_back(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        # The head as it stood after the first publication, signature and all (read earlier).
        seq, last_hash, signature, key_id = history.heads[1]
        _tamper(
            engine,
            "DELETE FROM audit_events WHERE chain_id = :chain AND seq > :seq",
            "UPDATE audit_chain_heads SET last_seq = :seq, last_hash = :hash, "
            "signature = :signature, key_id = :key WHERE chain_id = :chain",
            chain=_db(engine, history.patient),
            seq=seq,
            hash=last_hash,
            signature=signature,
            key=key_id,
        )
        assert _links_intact(engine)
        found = _found(_verify(engine, key, log))
        assert ("truncated tail", history.patient) in found
        assert ("moved head", history.patient) in found
        assert {chain for _, chain in found} == {history.patient}

    def test_edit_before_the_checkpoint_rehashed(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        _tamper(
            engine,
            "UPDATE audit_events SET agent_subject = 'Practitioner/nobody' "
            "WHERE chain_id = :chain AND seq = 2",
            chain=_db(engine, history.patient),
        )
        _rehash_from(engine, history.patient, 2)
        assert _links_intact(engine)
        found = _found(_verify(engine, key, log))
        assert ("re-hashed edit", history.patient) in found
        assert ("head signature does not verify", history.patient) in found

    def test_edit_after_the_checkpoint_rehashed(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        _rewrite_last_event(engine, history)
        assert _links_intact(engine)
        # The checkpoint still holds (the edit came later): the head's signature gives it away.
        assert _found(_verify(engine, key, log)) == [
            ("head signature does not verify", history.patient)
        ]

    def test_carnet_refuses_to_extend_a_rewritten_chain(
        self, trail: tuple[Engine, History, Path], key: AuditKey, clock: FrozenClock
    ) -> None:
        engine, history, log = trail
        last = _rewrite_last_event(engine, history)
        # Its next append would sign the forged head and launder the rewrite: refused.
        with pytest.raises(AuditUnavailable):
            _more_events(engine, key, history.patient, clock, 1)
        assert _head(engine, history.patient)[0] == last
        # A later checkpoint that saw the rewritten head does not hide the rewrite either.
        clock.advance(dt.timedelta(hours=1))
        with unit_of_work(session_factory(engine)) as session:
            take_checkpoint(session, log, key=key, clock=clock, full=True)
        assert _found(_verify(engine, key, log)) == [
            ("head signature does not verify", history.patient)
        ]

    def test_rewrite_seen_by_a_later_checkpoint_is_given_away_by_an_earlier(
        self, trail: tuple[Engine, History, Path], key: AuditKey, clock: FrozenClock
    ) -> None:
        engine, history, log = trail
        _tamper(
            engine,
            "UPDATE audit_events SET agent_subject = 'Practitioner/nobody' "
            "WHERE chain_id = :chain AND seq = 2",
            chain=_db(engine, history.patient),
        )
        _rehash_from(engine, history.patient, 2)
        clock.advance(dt.timedelta(hours=1))
        with unit_of_work(session_factory(engine)) as session:
            take_checkpoint(session, log, key=key, clock=clock, full=True)
        found = _found(_verify(engine, key, log))
        assert ("re-hashed edit", history.patient) in found

    def test_head_stripped_of_its_signature(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        _strip_head_signature(engine, history.patient)
        assert _found(_verify(engine, key, log)) == [("unsigned head", history.patient)]

    def test_carnet_refuses_to_extend_a_rewritten_chain_stripped_of_its_signature(
        self,
        trail: tuple[Engine, History, Path],
        key: AuditKey,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        engine, history, log = trail
        last = _rewrite_last_event(engine, history)
        _strip_head_signature(engine, history.patient)
        events = _event_count(engine)
        # The next read of the dossier would sign the forged head and launder the rewrite.
        clock.advance(dt.timedelta(minutes=1))
        with pytest.raises(AuditUnavailable), unit_of_work(sealed(engine, key)) as session:
            reading.read_content(
                session, store, history.author, history.patient, history.document, clock=clock
            )
        assert _head(engine, history.patient)[0] == last
        assert _event_count(engine) == events
        assert f"audit chain {history.patient}: its head (event {last}) is unsigned" in caplog.text
        assert "ERROR" in {record.levelname for record in caplog.records}
        assert _found(_verify(engine, key, log)) == [("unsigned head", history.patient)]

    def test_head_signed_by_another_key(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        forger = AuditKey.generate()
        seq, last_hash, _, _ = history.heads[-1]
        _tamper(
            engine,
            "UPDATE audit_chain_heads SET signature = :signature, key_id = :key "
            "WHERE chain_id = :chain",
            chain=_db(engine, history.patient),
            signature=forger.seal_head(history.patient, seq, last_hash),
            key=key.key_id,
        )
        assert _found(_verify(engine, key, log)) == [
            ("head signature does not verify", history.patient)
        ]


class TestCheckpointLog:
    def test_edited_line_is_detected(
        self, trail: tuple[Engine, History, Path], key: AuditKey
    ) -> None:
        engine, history, log = trail
        record = json.loads(log.read_text())
        record["heads"] = [head for head in record["heads"] if head[0] != str(history.patient)]
        log.write_text(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
        report = _verify(engine, key, log)
        assert [kind for kind, _ in _found(report)] == ["bad checkpoint log"]
        assert "signature does not verify" in str(report.findings[0])

    def test_deleted_line_is_detected(
        self,
        trail: tuple[Engine, History, Path],
        key: AuditKey,
        clock: FrozenClock,
    ) -> None:
        engine, _, log = trail
        for _ in range(2):
            clock.advance(dt.timedelta(hours=1))
            _checkpoint(engine, key, log, clock)
        first, _, third = log.read_bytes().splitlines()
        log.write_bytes(first + b"\n" + third + b"\n")
        report = _verify(engine, key, log)
        assert _found(report) == [("bad checkpoint log", None), ("bad checkpoint log", None)]
        assert "line 2: does not follow" in str(report.findings[0])

    def test_a_log_signed_by_another_key_pins_nothing(
        self, trail: tuple[Engine, History, Path], key: AuditKey, tmp_path: Path, clock: FrozenClock
    ) -> None:
        engine, _, _ = trail
        forged = tmp_path / "forged.jsonl"
        _checkpoint(engine, AuditKey.generate(), forged, clock)
        report = _verify(engine, key, forged)
        assert report.checkpointed_chains == 0
        assert [kind for kind, _ in _found(report)] == ["bad checkpoint log"]


class TestSigning:
    def test_first_events_of_enrolled_dossiers_are_sealed(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock
    ) -> None:
        chains = [uuid.uuid4() for _ in range(3)]
        with unit_of_work(sealed(committing_engine, key)) as session:
            audit.start_chains(
                session,
                agent=audit.Agent(kind="operator", subject="operator:x"),
                action=AuditAction.LIFECYCLE,
                clock=clock,
                patient_ids=chains,
            )
        report = _verify(committing_engine, key, None)
        assert report.intact
        assert report.signed_heads == 3

    def test_heads_sealed_by_a_retired_key_are_extended(
        self, committing_engine: Engine, clock: FrozenClock
    ) -> None:
        old, new = AuditKey.generate(), AuditKey.generate()
        chain = uuid.uuid4()
        _more_events(committing_engine, old, chain, clock, 1)
        with pytest.raises(AuditUnavailable):
            _more_events(committing_engine, new, chain, clock, 1)
        rotated = replace(new, retired=KeyRing.of([old.public]))
        _more_events(committing_engine, rotated, chain, clock, 1)
        report = _verify(committing_engine, new, None)
        assert report.intact
        assert _head(committing_engine, chain)[3] == new.key_id

    def test_verify_needs_only_the_public_key(self, key: AuditKey) -> None:
        chain = uuid.uuid4()
        signature = key.seal_head(chain, 4, "ab" * 32)

        public = load_public_key(key.public.pem())
        assert public.key_id == key.key_id
        assert public.verifies(signature, head_message(chain, 4, "ab" * 32))
        assert not public.verifies(signature, head_message(chain, 5, "ab" * 32))


def test_group_commit_seals_the_heads_it_advances(
    committing_engine: Engine, key: AuditKey, clock: FrozenClock
) -> None:
    if committing_engine.dialect.name != "postgresql":
        pytest.skip("group commit is PostgreSQL's")

    chains = [uuid.uuid4(), uuid.uuid4()]
    pending = [
        audit.PendingEvent(
            agent=audit.Agent(kind="professional", subject="Practitioner/gc"),
            action=AuditAction.READ,
            patient_id=chain,
            recorded_at=clock.now(),
            entity_ids="[]",
            details="{}",
        )
        for chain in [*chains, chains[0]]
    ]
    with committing_engine.begin() as connection:
        append_batch(connection, pending, sealer=key)
    report = _verify(committing_engine, key, None)
    assert report.intact
    assert report.signed_heads == 2
    # A head moved by someone else is not extended by the writer either.
    _tamper(
        committing_engine,
        "UPDATE audit_chain_heads SET last_hash = :forged WHERE chain_id = :chain",
        forged="f" * 64,
        chain=_db(committing_engine, chains[1]),
    )
    with pytest.raises(AuditUnavailable), committing_engine.begin() as connection:
        append_batch(connection, pending[1:2], sealer=key)
    # Nor a head stripped of its signature.
    _strip_head_signature(committing_engine, chains[0])
    events = _event_count(committing_engine)
    with pytest.raises(AuditUnavailable), committing_engine.begin() as connection:
        append_batch(connection, pending[:1], sealer=key)
    assert _event_count(committing_engine) == events


class TestIncrementalCheckpoints:
    def test_lists_only_heads_changed_since_the_previous(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        _more_events(committing_engine, key, first, clock, 1)
        _more_events(committing_engine, key, second, clock, 1)
        log = tmp_path / "checkpoints.jsonl"
        clock.advance(dt.timedelta(hours=1))
        _checkpoint(committing_engine, key, log, clock)
        clock.advance(dt.timedelta(hours=1))
        _more_events(committing_engine, key, first, clock, 1)
        clock.advance(dt.timedelta(hours=1))
        _checkpoint(committing_engine, key, log, clock)
        full, incremental = (json.loads(line) for line in log.read_text().splitlines())
        assert {head[0] for head in full["heads"]} == {str(first), str(second)}
        assert full["since"] is None
        assert [head[:2] for head in incremental["heads"]] == [[str(first), 2]]
        assert incremental["n"] == 2
        report = _verify(committing_engine, key, log)
        assert report.intact

    def test_scheduled_checkpoint_waits_for_its_interval(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        schedule = CheckpointSchedule(tmp_path / "log.jsonl", key, dt.timedelta(minutes=15))
        sessions = sealed(committing_engine, key)
        assert publish_due_checkpoint(sessions, schedule, clock=clock) is not None
        clock.advance(dt.timedelta(minutes=14))
        assert publish_due_checkpoint(sessions, schedule, clock=clock) is None
        clock.advance(dt.timedelta(minutes=2))
        assert publish_due_checkpoint(sessions, schedule, clock=clock) is not None
        assert len(schedule.path.read_text().splitlines()) == 2


# --- The least-privilege runtime role (PostgreSQL: roles are cluster-wide, so each test makes
# a uniquely named one and drops it).


@pytest.fixture
def runtime(committing_engine: Engine, tmp_path: Path) -> Iterator[tuple[Engine, str]]:
    """An engine connected as a fresh role granted by ``carnet db grant``; the role's name."""
    if committing_engine.dialect.name != "postgresql":
        pytest.skip("database roles are PostgreSQL's")

    role = f"carnet_rt_{secrets.token_hex(4)}"
    with committing_engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE {role} LOGIN"))
    try:
        owner_url = committing_engine.url.render_as_string(hide_password=False)
        env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": owner_url}
        granted = CliRunner().invoke(app, ["db", "grant", role], env=env)
        assert granted.exit_code == 0, granted.output
        assert f"Granted {role}" in granted.output
        engine = make_engine(
            committing_engine.url.set(username=role).render_as_string(hide_password=False)
        )
        yield engine, role
        engine.dispose()
    finally:
        with committing_engine.begin() as connection:
            connection.execute(text(f"DROP OWNED BY {role}"))
            connection.execute(text(f"DROP ROLE {role}"))


# What the runtime role must be refused, each for want of privilege.
_REFUSED = (
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE audit_events DISABLE TRIGGER USER",
    "UPDATE audit_events SET reason = 'x'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "DELETE FROM audit_chain_heads",
    "DROP TABLE audit_events",
    "ALTER TABLE audit_chain_heads DROP COLUMN signature",
    "CREATE TABLE escape_hatch (id int)",
    "CREATE TRIGGER t BEFORE INSERT ON audit_chain_heads "
    "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()",
)


class TestRuntimeRole:
    def test_cannot_rewrite_the_trail_or_change_the_schema(
        self, runtime: tuple[Engine, str], clock: FrozenClock, key: AuditKey
    ) -> None:
        engine, _ = runtime
        # A row to refuse the changes on (one role and one database for every statement: the
        # cluster's roles are shared, a database per statement would be slow).
        _more_events(engine, key, uuid.uuid4(), clock, 1)
        answers = {}
        for statement in _REFUSED:
            try:
                with engine.begin() as connection:
                    connection.execute(text(statement))
            except DBAPIError as refused:
                # The append-only trigger raises the same code: its message tells them apart.
                trigger = "append-only" in str(refused)
                answers[statement] = "trigger" if trigger else refused.orig.sqlstate  # type: ignore[union-attr]
            else:
                answers[statement] = "done"
        # Refused for want of privilege (42501), not merely by the trigger the owner can disable.
        assert answers == dict.fromkeys(_REFUSED, "42501")

    def test_does_real_work(
        self,
        runtime: tuple[Engine, str],
        key: AuditKey,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        tmp_path: Path,
    ) -> None:
        engine, _ = runtime
        history = _record_history(engine, key, store, clock)

        log = tmp_path / "checkpoints.jsonl"
        report = run_jobs(
            sealed(engine, key),
            store,
            clock=clock,
            retention_years=10,
            audit_checkpoints=CheckpointSchedule(log, key, dt.timedelta(minutes=15)),
        )
        assert report.checkpointed_heads is not None
        assert report.checkpointed_heads >= 2
        verified = _verify(engine, key, log)
        assert verified.intact
        assert history.patient in read_log(log, KeyRing.of([key.public])).pins

    def test_migrations_run_as_the_owner_and_carnet_as_the_role(
        self, runtime: tuple[Engine, str], committing_engine: Engine, tmp_path: Path
    ) -> None:
        engine, role = runtime
        env = {
            "CARNET_VAR_DIR": str(tmp_path / "var"),
            "CARNET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "CARNET_AUDIT_CHECKPOINTS": (tmp_path / "checkpoints.jsonl").as_uri(),
        }
        owner = committing_engine.url.render_as_string(hide_password=False)
        upgraded = CliRunner().invoke(
            app, ["db", "upgrade"], env=env | {"CARNET_MIGRATION_DATABASE_URL": owner}
        )
        assert upgraded.exit_code == 0, upgraded.output
        assert "Database already at" in upgraded.output
        assert f"carnet db grant {role}" in upgraded.output
        jobs = CliRunner().invoke(app, ["jobs", "run"], env=env)
        assert jobs.exit_code == 0, jobs.output
        assert "Audit checkpoint: 0 chain heads." in jobs.output
        assert (tmp_path / "checkpoints.jsonl").read_text().count("\n") == 1

    def test_grant_is_idempotent_and_exact(
        self, runtime: tuple[Engine, str], committing_engine: Engine, tmp_path: Path
    ) -> None:
        _, role = runtime

        def privileges() -> set[tuple[str, str]]:
            with committing_engine.connect() as connection:
                return {
                    (row.table_name, row.privilege_type)
                    for row in connection.execute(
                        text(
                            "SELECT table_name, privilege_type FROM "
                            "information_schema.role_table_grants WHERE grantee = :role"
                        ),
                        {"role": role},
                    )
                }

        before = privileges()

        with committing_engine.begin() as connection:
            connection.execute(text(f"GRANT TRIGGER, TRUNCATE ON audit_events TO {role}"))
            grant_runtime(connection, role, sorted(metadata().tables))
        assert privileges() == before
        assert {p for table, p in before if table == "audit_events"} == {"SELECT", "INSERT"}
        assert {p for table, p in before if table == "audit_chain_heads"} == {
            "SELECT",
            "INSERT",
            "UPDATE",
        }
        assert {p for table, p in before if table == "alembic_version"} == {"SELECT"}


class TestCommands:
    def test_checkpoint_and_verify_with_the_public_key_only(
        self,
        trail: tuple[Engine, History, Path],
        key: AuditKey,
        tmp_path: Path,
    ) -> None:

        engine, history, _ = trail
        url = engine.url.render_as_string(hide_password=False)
        secret = {"CARNET_AUDIT_SIGNING_KEY": key.pem()}
        env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": url}
        shown = CliRunner().invoke(app, ["audit", "key"], env=env | secret)
        assert shown.exit_code == 0, shown.output
        assert key.key_id in shown.output
        public = tmp_path / "audit-public.pem"
        public.write_text(shown.stdout)
        assert shown.stdout.startswith("-----BEGIN PUBLIC KEY-----")
        log = tmp_path / "published.jsonl"
        taken = CliRunner().invoke(
            app, ["audit", "checkpoint", "--to", log.as_uri()], env=env | secret
        )
        assert taken.exit_code == 0, taken.output
        assert "Checkpoint 1 appended" in taken.output
        # The auditor: the database, the log and the public key; not the secret.
        audit_env = env | {"CARNET_VAR_DIR": str(tmp_path / "auditor")}
        verify = ["audit", "verify", "--checkpoints", str(log), "--public-key", str(public)]
        intact = CliRunner().invoke(app, verify, env=audit_env)
        assert intact.exit_code == 0, intact.output
        assert "Audit trail intact" in intact.output
        _tamper(
            engine,
            "DELETE FROM audit_events WHERE chain_id = :chain",
            "DELETE FROM audit_chain_heads WHERE chain_id = :chain",
            chain=_db(engine, history.patient),
        )
        caught = CliRunner().invoke(app, verify, env=audit_env)
        assert caught.exit_code == 1
        assert f"TAMPERED deleted chain: chain {history.patient}" in caught.output

    def test_checkpoint_refuses_another_scheme(
        self, committing_engine: Engine, tmp_path: Path
    ) -> None:

        url = committing_engine.url.render_as_string(hide_password=False)
        env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": url}
        refused = CliRunner().invoke(app, ["audit", "checkpoint", "--to", "s3://b/k"], env=env)
        assert refused.exit_code == 1
        assert refused.output.strip().splitlines() == [
            "error: checkpoints can be published to a file:// path only, not s3://"
        ]

    def test_grant_is_postgresql_only_and_refuses_a_superuser(
        self, committing_engine: Engine, tmp_path: Path
    ) -> None:

        url = committing_engine.url.render_as_string(hide_password=False)
        env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": url}
        refused = CliRunner().invoke(app, ["db", "grant", "postgres"], env=env)
        assert refused.exit_code == 1
        (line,) = refused.output.strip().splitlines()
        if committing_engine.dialect.name == "postgresql":
            assert line.startswith("error: postgres is a superuser")
        else:
            assert line == (
                "error: carnet db grant needs PostgreSQL: SQLite has no roles (one file, one user)."
            )


# --- Heads from before signing began (revision 0009): refused until sealed, once, deliberately.


def _before_signing(engine: Engine, chain: uuid.UUID, clock: FrozenClock, n: int = 2) -> None:
    """Events appended as Carnet did before revision 0009: no key, an unsigned head."""
    for _ in range(n):
        clock.advance(dt.timedelta(minutes=1))
        with unit_of_work(session_factory(engine)) as session:
            audit.record(
                session,
                agent=audit.Agent(kind="job", subject="job:old"),
                action=AuditAction.LIFECYCLE,
                clock=clock,
                patient_id=chain,
            )


def _carnet(engine: Engine, key: AuditKey, tmp_path: Path, *args: str) -> Any:
    env = {
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CARNET_AUDIT_SIGNING_KEY": key.pem(),
    }
    return CliRunner().invoke(app, list(args), env=env)


_REMINDER = "seal them once with `carnet audit seal-unsigned`"


class TestHeadsFromBeforeSigning:
    def test_refused_until_sealed_then_extended(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        engine = committing_engine
        upgraded = _carnet(engine, key, tmp_path, "db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert _REMINDER not in upgraded.output  # a fresh database has none
        chain = uuid.uuid4()
        _before_signing(engine, chain, clock)
        assert _found(_verify(engine, key, None)) == [("unsigned head", chain)]
        with pytest.raises(AuditUnavailable):
            _more_events(engine, key, chain, clock, 1)
        assert _head(engine, chain)[0] == 2
        upgraded = _carnet(engine, key, tmp_path, "db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert _REMINDER in upgraded.output

        sealed_now = _carnet(engine, key, tmp_path, "audit", "seal-unsigned")
        assert sealed_now.exit_code == 0, sealed_now.output
        assert "Sealed 1 unsigned chain heads; 0 left unsigned." in sealed_now.output
        again = _carnet(engine, key, tmp_path, "audit", "seal-unsigned")
        assert again.exit_code == 0, again.output
        assert "Sealed 0 unsigned chain heads; 0 left unsigned." in again.output
        report = _verify(engine, key, None)
        assert report.intact
        assert report.signed_heads == 1
        _more_events(engine, key, chain, clock, 1)
        assert _head(engine, chain)[0] == 3
        assert _verify(engine, key, None).intact
        assert _REMINDER not in _carnet(engine, key, tmp_path, "db", "upgrade").output

    def test_a_tampered_chain_is_not_sealed(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        engine = committing_engine
        intact, tampered = uuid.uuid4(), uuid.uuid4()
        _before_signing(engine, intact, clock)
        _before_signing(engine, tampered, clock, n=3)
        _tamper(
            engine,
            "UPDATE audit_events SET reason = 'nothing to see' WHERE chain_id = :chain AND seq = 2",
            chain=_db(engine, tampered),
        )
        refused = _carnet(engine, key, tmp_path, "audit", "seal-unsigned")
        assert refused.exit_code == 1, refused.output
        assert f"NOT SEALED chain {tampered}: chain {tampered}, event 2: content altered" in (
            refused.output
        )
        assert "Sealed 1 unsigned chain heads; 1 left unsigned." in refused.output
        assert _head(engine, tampered)[2] is None
        assert _head(engine, intact)[3] == key.key_id
        with pytest.raises(AuditUnavailable):
            _more_events(engine, key, tampered, clock, 1)

    def test_a_head_a_checkpoint_saw_signed_is_not_sealed(
        self, trail: tuple[Engine, History, Path], key: AuditKey, tmp_path: Path
    ) -> None:
        engine, history, log = trail
        # An edit after the checkpoint, re-hashed (the links hold), the signature removed.
        _rewrite_last_event(engine, history)
        _strip_head_signature(engine, history.patient)
        refused = _carnet(
            engine, key, tmp_path, "audit", "seal-unsigned", "--checkpoints", str(log)
        )
        assert refused.exit_code == 1, refused.output
        assert f"NOT SEALED chain {history.patient}: checkpoint 1 saw it signed" in refused.output
        assert _head(engine, history.patient)[2] is None
