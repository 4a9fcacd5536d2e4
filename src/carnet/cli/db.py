"""``carnet db``: the database schema, migrated and granted as the tables' owner.

Migrations and grants run as CARNET_MIGRATION_DATABASE_URL's role (by default Carnet's own);
Carnet's runtime role gets only what ``carnet db grant`` gives it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy import Engine

from carnet import schema
from carnet.cli.platforms import opened_platform
from carnet.platform import Platform

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            metavar="N",
            help="PostgreSQL 13+ only, when the database is created: hash-partition every "
            "patient table by patient id into N partitions. Later upgrades keep the count.",
        ),
    ] = None,
) -> None:
    """Create the database or migrate it to the latest schema (as CARNET_MIGRATION_DATABASE_URL)."""
    with opened_platform() as platform, _owner_engine(platform) as owner:
        before = schema.current_revision(owner)
        schema.upgrade(owner, revision, partitions=partitions)
        after = schema.current_revision(owner)
        if before == after:
            typer.echo(f"Database already at {after}.")
        else:
            typer.echo(f"Database migrated from {before or 'nothing'} to {after}.")
        count = schema.partition_count(owner)
        if count is not None:
            typer.echo(f"Patient tables hash-partitioned by patient id into {count} partitions.")
        runtime_role = platform.engine.url.username
        if owner is not platform.engine and runtime_role:
            typer.echo(f"Now give Carnet's role its privileges: carnet db grant {runtime_role}")
        if _unsigned_heads_remain(owner):
            typer.echo(
                "Audit chain heads from before signing began are unsigned, and Carnet refuses "
                "to extend them: seal them once with `carnet audit seal-unsigned`."
            )


def _unsigned_heads_remain(engine: Engine) -> bool:
    from sqlalchemy import inspect  # noqa: PLC0415
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from carnet.audit.unsigned_heads import unsigned_heads_remain  # noqa: PLC0415

    # Before revision 0009 (a downgrade, an upgrade to an earlier target) heads had no signature.
    inspector = inspect(engine)
    if not inspector.has_table("audit_chain_heads") or "signature" not in {
        column["name"] for column in inspector.get_columns("audit_chain_heads")
    }:
        return False
    with Session(engine) as session:
        return unsigned_heads_remain(session)


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the code's."""
    with opened_platform() as platform:
        typer.echo(f"database: {schema.current_revision(platform.engine) or 'not created'}")
        typer.echo(f"code:     {schema.head_revision(platform.engine)}")


# --- The audit trail against its database owner (issue 15): the runtime role's grants, the
# signed heads, the checkpoints published outside the database.


@contextmanager
def _owner_engine(platform: Platform) -> Iterator[Engine]:
    """The engine of the role that owns the tables (CARNET_MIGRATION_DATABASE_URL, by default
    Carnet's own): migrations and grants run as it, Carnet does not."""
    from carnet.db import make_engine  # noqa: PLC0415

    url = platform.settings.effective_migration_database_url
    if url == platform.settings.effective_database_url:
        yield platform.engine
        return
    owner = make_engine(url)
    try:
        yield owner
    finally:
        owner.dispose()


@db_app.command("grant")
def db_grant(
    role: Annotated[str, typer.Argument(help="Carnet's runtime role (it must exist).")],
) -> None:
    """Give Carnet's runtime role exactly what it needs, as the tables' owner (PostgreSQL).

    Run after `carnet db upgrade`, as CARNET_MIGRATION_DATABASE_URL's role; idempotent. The role
    gets no ownership, no DDL and no TRIGGER; on audit_events only SELECT and INSERT.
    """
    from carnet.migrations.privileges import grant_runtime  # noqa: PLC0415

    with (
        opened_platform() as platform,
        _owner_engine(platform) as owner,
        owner.begin() as connection,
    ):
        granted = grant_runtime(connection, role, sorted(schema.metadata().tables))
    typer.echo(granted.summary())
    for warning in granted.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
