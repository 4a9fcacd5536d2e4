"""PostgreSQL hash partitioning of the patient-keyed tables, by patient id (off by default).

``carnet db upgrade --partitions N`` (``carnet.schema.upgrade(engine, partitions=N)``) creates
every patient table as ``PARTITION BY HASH (patient_id)`` with N partitions ``<table>_p0`` …
``<table>_p<N-1>`` (``FOR VALUES WITH (MODULUS N, REMAINDER k)``), each made in the revision that
makes its parent. A dossier's rows then sit in one partition of each table, the queries that all
name the patient prune to it, and vacuum, index builds and a table's bloat stay the size of
1/N of the country. Without the option, and always on SQLite, nothing changes: the revisions
create exactly the tables they always did.

Partitioning a new patient table in a future revision is one keyword argument::

    op.create_table(
        "prescriptions",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        ...,
        sa.PrimaryKeyConstraint("patient_id", "id", name=op.f("pk_prescriptions")),
        **partition_by("patient_id"),
    )

``partition_by`` returns nothing when the database is not partitioned. When it is, it adds the
``PARTITION BY`` clause and creates the N partitions as soon as the parent exists; indexes,
foreign keys, checks and row triggers created on the parent afterwards reach every partition.
Autogenerate does not write the argument: add it by hand (``tests/test_partitioning.py`` fails
for a patient table left unpartitioned on a partitioned database).

PostgreSQL's rules, which the schema was designed for (every patient table's key leads with the
patient id, see ``tests/test_schema.py``):

- the primary key and every unique constraint or index include the partition key — a
  uniqueness across patients cannot be enforced on a partitioned table;
- a foreign key may reference a partitioned table (PostgreSQL 12+) through a key that includes
  its partition key: ``patients.id``, ``documents (patient_id, id)``, ``submission_sets
  (patient_id, id)`` all do;
- row triggers on a partitioned parent are cloned to its partitions (PostgreSQL 13+, the version
  required): the audit trail's append-only triggers still refuse every UPDATE and DELETE.

What is partitioned: ``patients`` (by ``id``), the audit trail (``audit_events``,
``audit_chain_heads``, by ``chain_id``: a dossier's chain is its patient id) and every other
table keyed by ``patient_id``. What is not:

- ``patient_identifiers``: its unique ``(system, value)`` is the one global lookup from a
  national identifier to a patient; PostgreSQL cannot enforce it across hash partitions of
  another key, and it is one short row per identifier.
- the directory, the authentication and the jobs' tables hold no patient data
  (``NOT_PATIENT_DATA`` in ``tests/test_schema.py``).

Lookups not led by the patient id (the notification outbox's queue, "whom do I represent?",
dossiers by state, patients by name) read the N partitions' own indexes and merge them.

The drift check (``carnet.schema.check``) compares the models with the parent tables: env.py
leaves out the partitions and the foreign keys PostgreSQL derives for them (``Layout``).

The partition count is stored by PostgreSQL itself, as the modulus of ``patients``' partitions;
later upgrades read it from there and partition new tables the same way. A database is
partitioned when it is created: asking for partitions on one whose tables exist unpartitioned,
or with another count, is refused (re-partitioning is a dump and reload into a new database).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from alembic import op
from sqlalchemy import Connection, ForeignKeyConstraint, Table, text

from carnet.errors import Conflict, InvalidInput

# The MigrationContext option (``context.configure(carnet_partitions=...)`` in env.py) through
# which the database's count reaches the revisions.
CONTEXT_OPTION: Final = "carnet_partitions"
MIN_PARTITIONS: Final = 2
MAX_PARTITIONS: Final = 1024
# Row triggers on a partitioned table (BEFORE ... FOR EACH ROW) arrived in PostgreSQL 13.
MIN_SERVER_VERSION: Final = (13,)
# The table whose partitions tell how the database is laid out: created by the first revision.
_WITNESS: Final = "patients"

# Patient tables deliberately left whole, and why (the docstring explains).
UNPARTITIONED_PATIENT_TABLES: Final = {
    "patient_identifiers": "unique (system, value): the global national-identifier lookup",
}


class PartitioningUnavailable(InvalidInput):
    """Partitions were asked for where they cannot be made (SQLite, an old PostgreSQL, a bad N)."""


class PartitioningMismatch(Conflict):
    """The database's tables already exist with another layout; nothing was changed."""


@dataclass(frozen=True)
class Layout:
    """How a database is laid out: whether its tables exist, and in how many partitions."""

    created: bool
    count: int | None
    partitions: frozenset[str] = frozenset()

    def include_name(self, name: str | None, type_: str, _parents: object) -> bool:
        """Alembic's filter for the drift check: partitions are storage, the parent is the table.

        Without it, ``alembic check`` would report every ``<table>_p<k>`` as a table to drop.
        """
        return not (type_ == "table" and name in self.partitions)

    def include_object(
        self, item: object, _name: str | None, _type: str, reflected: bool, _compare_to: object
    ) -> bool:
        """Alembic's filter for the drift check: skip the foreign keys PostgreSQL derives.

        A foreign key to a partitioned table is kept by PostgreSQL as the declared constraint
        plus one internal constraint per referenced partition (``..._fkey1`` → ``patients_p1``);
        reflection lists those too, and the models rightly know only the declared one.
        """
        if not (reflected and isinstance(item, ForeignKeyConstraint)):
            return True
        referred = {element.target_fullname.rsplit(".", 1)[0] for element in item.elements}
        return not referred & self.partitions


def read_layout(connection: Connection) -> Layout:
    """The layout of the database behind ``connection`` (SQLite: never partitioned)."""
    if connection.dialect.name != "postgresql":
        return Layout(created=False, count=None)
    row = connection.execute(
        text(
            """
            SELECT p.partrelid IS NOT NULL,
                   (SELECT max(substring(pg_get_expr(k.relpartbound, k.oid)
                                         FROM 'modulus (\\d+)')::int)
                      FROM pg_inherits i JOIN pg_class k ON k.oid = i.inhrelid
                     WHERE i.inhparent = c.oid)
              FROM pg_class c LEFT JOIN pg_partitioned_table p ON p.partrelid = c.oid
             WHERE c.oid = to_regclass(:witness)
            """
        ),
        {"witness": _WITNESS},
    ).one_or_none()
    partitions = frozenset(
        connection.execute(
            text(
                "SELECT relname FROM pg_class WHERE relispartition AND relkind IN ('r', 'p') "
                "AND relnamespace = current_schema()::regnamespace"
            )
        ).scalars()
    )
    if row is None:
        return Layout(created=False, count=None, partitions=partitions)
    partitioned, modulus = row
    return Layout(created=True, count=modulus if partitioned else None, partitions=partitions)


def resolve(connection: Connection, requested: int | None) -> Layout:
    """The layout to migrate with: the database's own, or ``requested`` for a new database.

    Raises ``PartitioningUnavailable`` when partitions are asked of SQLite, of PostgreSQL
    before 13 or with a count out of range, and ``PartitioningMismatch`` when the tables exist
    unpartitioned or with another count.
    """
    if requested is not None:
        _check_available(connection, requested)
    layout = read_layout(connection)
    if requested is None or layout.count == requested:
        return layout
    if layout.count is not None:
        raise PartitioningMismatch(
            f"The database's patient tables are in {layout.count} partitions, not {requested}: "
            f"run without --partitions (or with --partitions {layout.count}); re-partitioning "
            "means a dump and reload into a new database."
        )
    if layout.created:
        raise PartitioningMismatch(
            "The database's tables were created without partitions; partitions are chosen when "
            "the database is created (re-partitioning means a dump and reload into a new "
            "database)."
        )
    return Layout(created=False, count=requested, partitions=layout.partitions)


def _check_available(connection: Connection, requested: int) -> None:
    if connection.dialect.name != "postgresql":
        raise PartitioningUnavailable(
            f"Partitioning needs PostgreSQL; this database is {connection.dialect.name}.",
            field="partitions",
        )
    version = connection.dialect.server_version_info or (0,)
    if version < MIN_SERVER_VERSION:
        shown = ".".join(str(part) for part in version)
        raise PartitioningUnavailable(
            f"Partitioning needs PostgreSQL 13 or later (row triggers on partitioned tables); "
            f"this server is {shown}.",
            field="partitions",
        )
    if not MIN_PARTITIONS <= requested <= MAX_PARTITIONS:
        raise PartitioningUnavailable(
            f"The partition count must be between {MIN_PARTITIONS} and {MAX_PARTITIONS}, "
            f"not {requested}.",
            field="partitions",
        )


def current_count() -> int | None:
    """The partition count of the migration running now (None: unpartitioned)."""
    count = op.get_context().opts.get(CONTEXT_OPTION)
    return count if isinstance(count, int) else None


def partition_by(column: str) -> dict[str, Any]:
    """``op.create_table`` keyword arguments that hash-partition the table on ``column``.

    Empty when the database is not partitioned, so the table is created as it always was.
    """
    count = current_count()
    if count is None:
        return {}
    return {
        "postgresql_partition_by": f"HASH ({column})",
        "listeners": [("after_create", _create_partitions(count))],
    }


def partition_names(table: str) -> list[str]:
    """The partitions of ``table`` in the migration running now (none when unpartitioned)."""
    count = current_count()
    return [] if count is None else [f"{table}_p{k}" for k in range(count)]


def _create_partitions(count: int) -> Callable[..., None]:
    def create(table: Table, connection: Connection, **_kw: object) -> None:
        # Identifiers quoted by the dialect, bounds integers: nothing here comes from outside.
        quote = connection.dialect.identifier_preparer.quote
        for remainder in range(count):
            connection.execute(
                text(
                    f"CREATE TABLE {quote(f'{table.name}_p{remainder}')} "
                    f"PARTITION OF {quote(table.name)} "
                    f"FOR VALUES WITH (MODULUS {count}, REMAINDER {remainder})"
                )
            )

    return create
