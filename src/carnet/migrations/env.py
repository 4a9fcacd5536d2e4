"""Alembic environment: runs against the engine the caller put in the configuration.

``config.attributes["partitions"]`` (``carnet db upgrade --partitions N``) asks for a database
whose patient tables are hash-partitioned; the revisions read the database's actual layout
through ``carnet.migrations.partitioning`` (see its docstring).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from carnet.migrations import partitioning
from carnet.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("Run migrations through `carnet db upgrade` (carnet.schema.upgrade).")

with engine.connect() as connection:
    layout = partitioning.resolve(connection, config.attributes.get("partitions"))
    # Reading the catalogue opened a transaction; the migration's own begins afresh.
    connection.rollback()
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # Partitions are PostgreSQL's storage of a parent table the models describe.
        include_name=layout.include_name if layout.partitions else None,
        include_object=layout.include_object if layout.partitions else None,
        # The revisions read it back through partitioning.current_count().
        carnet_partitions=layout.count,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
