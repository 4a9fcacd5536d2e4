"""Hash partitioning of the patient tables by patient id (``carnet db upgrade --partitions N``).

PostgreSQL only: each test that needs it is skipped, saying why, when PostgreSQL is unreachable
(and fails where ``CI`` is set, as every PostgreSQL test does).
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carnet import schema
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.audit import service as audit
from carnet.audit.models import AuditAction
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine
from carnet.directory.models import Profession
from carnet.documents import publication, reading
from carnet.migrations.partitioning import (
    UNPARTITIONED_PATIENT_TABLES,
    PartitioningMismatch,
    PartitioningUnavailable,
)
from carnet.storage import FilesystemDocumentStore
from conftest import postgres_unreachable, throwaway_postgres
from factories.actors import patient_actor, professional_actor
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata, make_document
from factories.patients import make_patient
from test_schema import NOT_PATIENT_DATA

PARTITIONS = 4
runner = CliRunner()


class partitioned_postgres(throwaway_postgres):  # noqa: N801 — reads as the context manager it is
    """A throwaway PostgreSQL database; skipped with the reason when PostgreSQL is unreachable."""

    def __enter__(self) -> str:
        reason = postgres_unreachable()
        if reason is not None and not os.environ.get("CI"):
            pytest.skip(f"Partitioning is PostgreSQL-only, and PostgreSQL is unreachable: {reason}")
        return super().__enter__()


@pytest.fixture(scope="module")
def partitioned() -> Iterator[Engine]:
    """A database migrated to head with every patient table in four hash partitions."""
    with partitioned_postgres() as url:
        engine = make_engine(url)
        schema.upgrade(engine, partitions=PARTITIONS)
        yield engine
        engine.dispose()


@pytest.fixture
def session(partitioned: Engine) -> Iterator[Session]:
    """A session on the partitioned database, rolled back after the test (as conftest's)."""
    with partitioned.connect() as connection:
        transaction = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


def _partitioned_tables(connection: Connection) -> dict[str, tuple[str, list[str]]]:
    """Each partitioned table: its partition key and its partitions' bounds, by name."""
    rows = connection.execute(
        text(
            """
            SELECT p.partrelid::regclass::text, pg_get_partkeydef(p.partrelid),
                   k.relname, pg_get_expr(k.relpartbound, k.oid)
              FROM pg_partitioned_table p
              JOIN pg_inherits i ON i.inhparent = p.partrelid
              JOIN pg_class k ON k.oid = i.inhrelid
             ORDER BY 1, 3
            """
        )
    )
    tables: dict[str, tuple[str, list[str]]] = {}
    for table, key, partition, bound in rows:
        tables.setdefault(table, (key, []))[1].append(f"{partition} {bound}")
    return tables


def _patient_tables() -> set[str]:
    return set(schema.metadata().tables) - NOT_PATIENT_DATA


class TestLayout:
    def test_every_patient_table_is_hash_partitioned_by_patient(self, partitioned: Engine) -> None:
        with partitioned.connect() as connection:
            tables = _partitioned_tables(connection)
        assert set(tables) == _patient_tables() - set(UNPARTITIONED_PATIENT_TABLES)
        for table, (key, partitions) in tables.items():
            column = {"patients": "id"}.get(
                table, "chain_id" if table.startswith("audit_") else "patient_id"
            )
            assert key == f"HASH ({column})", table
            assert partitions == [
                f"{table}_p{k} FOR VALUES WITH (modulus {PARTITIONS}, remainder {k})"
                for k in range(PARTITIONS)
            ]

    def test_the_national_identifier_lookup_stays_whole(self, partitioned: Engine) -> None:
        with partitioned.connect() as connection:
            assert "patient_identifiers" not in _partitioned_tables(connection)
        unique = [i for i in inspect(partitioned).get_indexes("patient_identifiers") if i["unique"]]
        assert [index["column_names"] for index in unique] == [["system", "value"]]

    def test_models_and_migrations_do_not_drift(self, partitioned: Engine) -> None:
        schema.check(partitioned)

    def test_the_count_is_read_back_from_the_database(self, partitioned: Engine) -> None:
        assert schema.partition_count(partitioned) == PARTITIONS
        assert schema.current_revision(partitioned) == schema.head_revision(partitioned)

    def test_without_the_option_nothing_is_partitioned(self, engine: Engine) -> None:
        # conftest's engine: SQLite and PostgreSQL, migrated as `carnet db upgrade` does.
        assert schema.partition_count(engine) is None
        assert not [name for name in inspect(engine).get_table_names() if "_p0" in name]


class TestServicesOnPartitions:
    def test_dossiers_documents_and_their_trail_spread_over_partitions(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        lab = make_organisation(session, clock)
        biologist = professional_actor(
            make_professional(
                session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
            )
        )
        patients = [make_patient(session, clock) for _ in range(16)]
        for patient in patients:
            first = make_document(session, store, clock, actor=biologist, patient_id=patient.id)
            # A replacement references its predecessor: a foreign key within the partition.
            publication.replace_document(
                session,
                open_dossier(
                    session, biologist, patient.id, purposes.REPLACE_DOCUMENT, clock=clock
                ),
                store,
                replaced_id=first.id,
                metadata=lab_metadata(clock, title="Bilan sanguin (corrigé)"),
                content=f"Hémoglobine 14.0 g/dL {patient.id}".encode(),
            )
        for patient in patients:
            page = reading.list_documents(
                session,
                open_dossier(
                    session,
                    patient_actor(patient),
                    patient.id,
                    purposes.FIND_DOCUMENTS,
                    clock=clock,
                ),
            )
            assert [d.title for d in page.documents] == ["Bilan sanguin (corrigé)"]
            assert all(d.patient_id == patient.id for d in page.documents)

        assert audit.verify(session, chain_ids=[p.id for p in patients]).intact
        assert audit.verify(session).intact

        connection = session.connection()
        per_table = {
            table: _rows_per_partition(connection, table, key)
            for table, key in [
                ("patients", "id"),
                ("dossiers", "patient_id"),
                ("documents", "patient_id"),
                ("audit_events", "chain_id"),
            ]
        }
        # Uniform hashing: 16 dossiers cannot all land in one of four partitions (p < 1e-8).
        assert len(set(per_table["patients"].values())) > 1
        # The same id hashes to the same remainder in every table: a dossier's rows are together.
        for patient in patients:
            homes = {table: rows[patient.id] for table, rows in per_table.items()}
            assert len({home.rsplit("_p", 1)[1] for home in homes.values()}) == 1, homes
        documents_per_partition = Counter(per_table["documents"].values())
        assert sum(documents_per_partition.values()) == len(patients)  # one id each, two rows
        counted = connection.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM documents GROUP BY 1")
        ).all()
        assert sum(count for _, count in counted) == 2 * len(patients)
        assert len(counted) > 1

    def test_a_patient_lookup_reads_one_partition(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        plan = "\n".join(
            session.execute(
                text("EXPLAIN SELECT * FROM documents WHERE patient_id = :id"), {"id": patient.id}
            ).scalars()
        )
        assert len(set(re.findall(r" on (documents_p\d+)", plan))) == 1, plan


def _rows_per_partition(connection: Connection, table: str, key: str) -> dict[uuid.UUID, str]:
    """Which partition holds each key's rows (the test's own table and column names)."""
    query = f"SELECT DISTINCT {key}, tableoid::regclass::text FROM {table}"
    return {row[0]: row[1] for row in connection.execute(text(query))}


class TestAuditTrailStaysAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_events SET reason = 'x'",
            "DELETE FROM audit_events",
            "UPDATE {partition} SET reason = 'x'",
            "DELETE FROM {partition}",
            "TRUNCATE audit_events",
            "TRUNCATE {partition}",
        ],
    )
    def test_database_refuses_changes(
        self, session: Session, clock: FrozenClock, statement: str
    ) -> None:
        event = audit.record(
            session,
            agent=audit.Agent(kind="professional", subject="Practitioner/x"),
            action=AuditAction.READ,
            clock=clock,
            patient_id=uuid.uuid4(),
        )
        partition = session.execute(
            text("SELECT tableoid::regclass::text FROM audit_events WHERE chain_id = :chain"),
            {"chain": event.chain_id},
        ).scalar_one()
        assert partition.startswith("audit_events_p")
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement.format(partition=partition)))


class TestRefusals:
    def test_another_count_is_refused(self, partitioned: Engine) -> None:
        with pytest.raises(PartitioningMismatch, match="in 4 partitions, not 8"):
            schema.upgrade(partitioned, partitions=8)
        assert schema.partition_count(partitioned) == PARTITIONS

    def test_a_count_out_of_range_is_refused(self, partitioned: Engine) -> None:
        with pytest.raises(PartitioningUnavailable, match="between 2 and 1024, not 1"):
            schema.upgrade(partitioned, partitions=1)

    def test_sqlite_is_refused(self, tmp_path: Path) -> None:
        engine = make_engine(f"sqlite:///{tmp_path / 'carnet.db'}")
        try:
            with pytest.raises(PartitioningUnavailable, match=r"needs PostgreSQL; .* sqlite"):
                schema.upgrade(engine, partitions=PARTITIONS)
            assert schema.current_revision(engine) is None
        finally:
            engine.dispose()


class TestMigrations:
    def test_later_revisions_partition_new_tables_with_the_stored_count(self) -> None:
        with partitioned_postgres() as url:
            engine = make_engine(url)
            try:
                schema.upgrade(engine, "0003", partitions=PARTITIONS)
                # A later upgrade without the option: the audit trail (0004) and every table
                # after it are partitioned the same way.
                schema.upgrade(engine)
                with engine.connect() as connection:
                    tables = _partitioned_tables(connection)
                assert set(tables) == _patient_tables() - set(UNPARTITIONED_PATIENT_TABLES)
                assert {len(partitions) for _, partitions in tables.values()} == {PARTITIONS}
                schema.check(engine)
            finally:
                engine.dispose()

    def test_downgrade_to_nothing_and_back_with_another_count(self) -> None:
        with partitioned_postgres() as url:
            engine = make_engine(url)
            try:
                schema.upgrade(engine, partitions=PARTITIONS)
                schema.downgrade(engine, "base")
                assert schema.current_revision(engine) is None
                assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
                with engine.connect() as connection:
                    leftovers = connection.execute(
                        text("SELECT proname FROM pg_proc WHERE proname LIKE 'audit_events%'")
                    ).all()
                assert leftovers == []
                # The count went with the tables: the database may be created anew with another.
                assert schema.partition_count(engine) is None
                schema.upgrade(engine, partitions=8)
                assert schema.partition_count(engine) == 8
                schema.downgrade(engine, "base")
                schema.upgrade(engine)
                assert schema.partition_count(engine) is None
            finally:
                engine.dispose()


class TestCommand:
    def test_upgrade_with_partitions_then_another_count_is_refused(self, tmp_path: Path) -> None:
        with partitioned_postgres() as url:
            env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": url}
            first = runner.invoke(app, ["db", "upgrade", "--partitions", "4"], env=env)
            assert first.exit_code == 0, first.output
            assert "migrated from nothing to" in first.output
            assert "into 4 partitions" in first.output
            second = runner.invoke(app, ["db", "upgrade", "--partitions", "8"], env=env)
            assert second.exit_code == 1
            assert "error: The database's patient tables are in 4 partitions, not 8" in (
                second.output
            )
            assert "Traceback" not in second.output
            again = runner.invoke(app, ["db", "upgrade"], env=env)
            assert again.exit_code == 0, again.output
            assert "already at" in again.output
            assert "into 4 partitions" in again.output

    def test_partitions_on_an_unpartitioned_database_are_refused(self, tmp_path: Path) -> None:
        with partitioned_postgres() as url:
            env = {"CARNET_VAR_DIR": str(tmp_path / "var"), "CARNET_DATABASE_URL": url}
            assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
            result = runner.invoke(app, ["db", "upgrade", "--partitions", "4"], env=env)
            assert result.exit_code == 1
            assert "error: The database's tables were created without partitions" in (result.output)

    def test_sqlite_refuses_the_option(self, tmp_path: Path) -> None:
        env = {"CARNET_VAR_DIR": str(tmp_path / "var")}
        result = runner.invoke(app, ["db", "upgrade", "--partitions", "4"], env=env)
        assert result.exit_code == 1
        assert "error: Partitioning needs PostgreSQL; this database is sqlite." in result.output
        assert "Traceback" not in result.output
