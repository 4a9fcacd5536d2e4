"""The runtime role: what Carnet's own database role may do, and nothing more (PostgreSQL).

Two roles: the owner, which ``carnet db upgrade`` uses (``CARNET_MIGRATION_DATABASE_URL``) and
which owns every table, trigger and function; and the runtime role Carnet serves as
(``CARNET_DATABASE_URL``). Only an owner or a superuser can ``ALTER TABLE ... DISABLE TRIGGER``,
drop a table or change a privilege, so a runtime role that owns nothing cannot switch the audit
trail's append-only triggers off, and with no UPDATE or DELETE on ``audit_events`` it cannot
change history even where the triggers are gone.

``grant_runtime(connection, role)`` (``carnet db grant ROLE``, run by the owner after each
upgrade) first revokes everything the role holds on the schema's tables and sequences, then
grants exactly ``RUNTIME_PRIVILEGES``, so running it twice, or after a revision added a table,
leaves the same privileges. It creates nothing: the role must exist (the operator creates it
with its password), and it refuses a role that is a superuser or owns a table.

What the runtime does on the audit tables, statement by statement (``audit.service``,
``audit.group_commit``, the retention purge in ``lifecycle.jobs``, which records through
``audit.service.record``): INSERT and SELECT on events; on heads INSERT (a new chain, ``ON
CONFLICT DO NOTHING``), UPDATE (advance and seal) and SELECT (``FOR UPDATE`` needs UPDATE too).
Nothing deletes from either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import Connection, text

from carnet.errors import InvalidInput, StateRefused

# Privileges per table; every other Carnet table gets ``_ORDINARY``.
_ORDINARY: Final = ("SELECT", "INSERT", "UPDATE", "DELETE")
RUNTIME_PRIVILEGES: Final[dict[str, tuple[str, ...]]] = {
    "audit_events": ("SELECT", "INSERT"),
    "audit_chain_heads": ("SELECT", "INSERT", "UPDATE"),
    # Carnet reads the schema's revision at start (``carnet serve`` refuses an old schema).
    "alembic_version": ("SELECT",),
}


# The tables enrolment ANALYZEs after a bulk load.
_ANALYZED: Final = frozenset({"patients", "patient_identifiers", "dossiers"})


class RolesUnavailable(InvalidInput):
    """Database roles were asked of a database that has none (SQLite)."""


class RoleRefused(StateRefused):
    """The role cannot be made Carnet's runtime role as it is; nothing was changed."""


@dataclass
class Granted:
    """What ``grant_runtime`` gave."""

    role: str
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sequences: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        return (
            f"Granted {self.role} what Carnet needs on {len(self.tables)} tables and "
            f"{self.sequences} sequences (audit_events: SELECT, INSERT only); it owns nothing."
        )


def grant_runtime(connection: Connection, role: str, tables: list[str]) -> Granted:
    """Give ``role`` exactly the runtime's privileges on ``tables`` (and the schema's sequences).

    Runs in the caller's transaction, as the tables' owner. Raises ``RolesUnavailable`` on
    SQLite, ``RoleRefused`` if the role does not exist, is a superuser (it could disable any
    trigger) or owns a table of the schema (owners can alter their tables).
    """
    if connection.dialect.name != "postgresql":
        raise RolesUnavailable(
            "carnet db grant needs PostgreSQL: SQLite has no roles (one file, one user).",
            field="role",
        )
    attributes = connection.execute(
        text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
        {"role": role},
    ).one_or_none()
    if attributes is None:
        raise RoleRefused(
            f"There is no role {role!r}: create it first (CREATE ROLE ... LOGIN PASSWORD ...), "
            "then grant.",
            field="role",
        )
    if attributes.rolsuper or attributes.rolbypassrls:
        raise RoleRefused(
            f"{role} is a superuser (or bypasses row security): it could switch the audit "
            "triggers off. Carnet's runtime role must be an ordinary role.",
            field="role",
        )
    owned = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c "
            "WHERE c.relnamespace = current_schema()::regnamespace "
            "AND c.relkind IN ('r', 'p', 'S', 'v', 'm') "
            "AND pg_has_role(:role, c.relowner, 'USAGE') ORDER BY c.relname LIMIT 5"
        ),
        {"role": role},
    ).scalars()
    owned_names = list(owned)
    if owned_names:
        raise RoleRefused(
            f"{role} owns (or is a member of the owner of) {', '.join(owned_names)}: owners can "
            "disable triggers and drop tables. Migrate as another role "
            "(CARNET_MIGRATION_DATABASE_URL) that owns the tables.",
            field="role",
        )
    quote = connection.dialect.identifier_preparer.quote
    grantee, schema = quote(role), quote(str(connection.scalar(text("SELECT current_schema()"))))
    database = quote(str(connection.scalar(text("SELECT current_database()"))))
    # Start from nothing, so a second run, or a privilege granted by hand, ends the same.
    for statement in (
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {grantee}",
        f"REVOKE CREATE ON SCHEMA {schema} FROM {grantee}",
        f"REVOKE CREATE, TEMPORARY ON DATABASE {database} FROM {grantee}",
        f"GRANT CONNECT ON DATABASE {database} TO {grantee}",
        f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {grantee}",
    ):
        connection.execute(text(statement))
    granted = Granted(role=role)
    existing = set(
        connection.execute(
            text(
                "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                "AND relkind IN ('r', 'p') AND NOT relispartition"
            )
        ).scalars()
    )
    for table in sorted({*tables, "alembic_version"} & existing):
        privileges = RUNTIME_PRIVILEGES.get(table, _ORDINARY)
        connection.execute(text(f"GRANT {', '.join(privileges)} ON {quote(table)} TO {grantee}"))
        granted.tables[table] = privileges
    granted.sequences = int(
        connection.scalar(
            text(
                "SELECT count(*) FROM pg_class "
                "WHERE relnamespace = current_schema()::regnamespace AND relkind = 'S'"
            )
        )
        or 0
    )
    # Enrolment refreshes the planner's statistics after a bulk load (``patients.service``):
    # PostgreSQL 17's MAINTAIN allows ANALYZE without ownership (nor ALTER, nor triggers);
    # before it, the role's ANALYZE is skipped with a warning and autovacuum catches up.
    if (connection.dialect.server_version_info or (0,)) >= (17,):
        analyzed = sorted(_ANALYZED & existing)
        if analyzed:
            names = ", ".join(quote(table) for table in analyzed)
            connection.execute(text(f"GRANT MAINTAIN ON {names} TO {grantee}"))
    else:
        granted.warnings.append(
            f"{role} cannot ANALYZE before PostgreSQL 17: after a large enrolment, run "
            "ANALYZE patients, patient_identifiers, dossiers as the owner (or let autovacuum)"
        )
    # Privileges given to PUBLIC reach every role; revoking them is the cluster owner's choice,
    # so it is only reported (PostgreSQL 15 gives PUBLIC no CREATE on the public schema).
    if connection.scalar(
        text("SELECT has_schema_privilege(:role, current_schema(), 'CREATE')"), {"role": role}
    ):
        granted.warnings.append(
            f"{role} can still create objects in the schema (through PUBLIC): "
            f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC"
        )
    return granted
