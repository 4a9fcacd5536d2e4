"""Where the benchmarks keep their results, and the throwaway PostgreSQL databases they load."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

RESULTS = Path(__file__).resolve().parent / "results"
POSTGRES_URL = os.environ.get(
    "CARNET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextlib.contextmanager
def throwaway_postgres(*, keep: bool = False) -> Iterator[str]:
    """A new PostgreSQL database next to ``CARNET_TEST_POSTGRES_URL``'s; dropped unless ``keep``.

    Yields its SQLAlchemy URL (psycopg 3 driver).
    """
    base = make_url(POSTGRES_URL)
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"carnet_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield base.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        if keep:
            print(f"kept the database {name}", flush=True)
        else:
            with psycopg.connect(admin, autocommit=True) as connection:
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


@contextlib.contextmanager
def database(kind: str, work: Path) -> Iterator[str]:
    """A database of ``kind``: SQLite in ``work``, or a throwaway PostgreSQL one."""
    if kind == "sqlite":
        yield f"sqlite:///{work / 'bench.db'}"
        return
    with throwaway_postgres() as url:
        yield url
