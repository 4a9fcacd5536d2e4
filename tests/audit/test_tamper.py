"""The audit trail against its database owner: tampering, checkpoints, a least-privilege role.

What a superuser of the database can do to the trail — switch the triggers off, delete a
dossier's chain with its head, truncate a tail and put back an earlier (genuinely signed) head,
edit an event and re-hash the chain with the public algorithm — leaves every chain internally
consistent, so ``service.verify`` alone says intact (each test shows it). Each is detected by
``verify_trail`` against the last checkpoint, naming the chain (issue 15). The signed heads are
``test_tamper_signing.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.audit.checkpoints import (
    CheckpointSchedule,
    read_log,
    take_checkpoint,
)
from carnet.audit.errors import AuditUnavailable
from carnet.audit.models import AuditChainHead
from carnet.audit.signing import AuditKey, KeyRing
from carnet.audit.unsigned_heads import unsigned_heads_remain
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.documents import reading
from carnet.lifecycle.jobs import run_jobs
from carnet.migrations.privileges import grant_runtime
from carnet.schema import metadata
from carnet.storage import FilesystemDocumentStore
from factories.tampering import (
    History,
    _checkpoint,
    _db,
    _event_count,
    _found,
    _head,
    _links_intact,
    _more_events,
    _record_history,
    _rehash_from,
    _rewrite_last_event,
    _strip_head_signature,
    _tamper,
    _verify,
    sealed,
)


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
                session,
                open_dossier(
                    session,
                    history.author,
                    history.patient,
                    purposes.RETRIEVE_DOCUMENTS,
                    clock=clock,
                ),
                history.document,
                store,
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
