"""Alembic environment: runs against the engine the caller put in the configuration."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from carnet.schema import metadata

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("Run migrations through `carnet db upgrade` (carnet.schema.upgrade).")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata(),
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
