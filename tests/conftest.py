"""Test fixtures: every database test runs on SQLite and on PostgreSQL, migrated by Alembic.

PostgreSQL comes from ``CARNET_TEST_POSTGRES_URL``; each run creates its own throwaway database
and drops it at the end. Where ``CI`` is set an unreachable PostgreSQL fails the run; elsewhere
the PostgreSQL half is skipped and the summary says so in one line.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from carnet import schema
from carnet.clock import FrozenClock
from carnet.db import make_engine
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper

# Hypothesis profiles (the validation slice of issue 15). On a busy CI machine an example can
# take many times its usual time: "ci" drops the deadline and the too-slow health check, so
# load alone never fails a run; elsewhere the default keeps a generous deadline that still
# points at a test that became really slow. HYPOTHESIS_PROFILE chooses one explicitly.
hypothesis_settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
hypothesis_settings.register_profile("default", deadline=dt.timedelta(seconds=2))
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)

POSTGRES_URL = os.environ.get(
    "CARNET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASES = ("sqlite", "postgresql")


def _datasets() -> Path:
    """The shared external examples (see its README): beside the repository, or as configured."""
    candidates = [
        os.environ.get("CARNET_TEST_DATASETS", ""),
        str(Path(__file__).resolve().parents[2] / "shared" / "datasets"),
        "/work/shared/datasets",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "MANIFEST.tsv").exists():
            return Path(candidate)
    raise RuntimeError(
        "The external test datasets are missing: set CARNET_TEST_DATASETS to their folder."
    )


DATASETS = _datasets()
_ran_on: set[str] = set()


@cache
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or None if it can."""
    try:
        with psycopg.connect(_libpq(POSTGRES_URL), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pytest_report_header() -> str:
    reason = postgres_unreachable()
    if reason is None:
        return f"databases: sqlite, postgresql ({make_url(POSTGRES_URL).render_as_string()})"
    return f"databases: sqlite only — PostgreSQL unreachable: {reason}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reason = postgres_unreachable()
    ran = ", ".join(sorted(_ran_on)) or "none"
    terminalreporter.write_line(f"Carnet database tests ran on: {ran}")
    if reason is not None and not os.environ.get("CI"):
        terminalreporter.write_line(
            f"PostgreSQL half SKIPPED: {POSTGRES_URL} is unreachable ({reason})", yellow=True
        )


@pytest.fixture(scope="session", params=DATABASES)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A database of the parametrised kind, migrated to head by Alembic."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "carnet.db"
        engine = make_engine(f"sqlite:///{path}")
        schema.upgrade(engine)
        _ran_on.add("sqlite")
        yield engine
        engine.dispose()
        return
    with throwaway_postgres() as url:
        engine = make_engine(url)
        schema.upgrade(engine)
        _ran_on.add("postgresql")
        yield engine
        engine.dispose()


class throwaway_postgres:  # noqa: N801 — reads as the context manager it is
    """A fresh PostgreSQL database for this run, dropped on exit."""

    def __enter__(self) -> str:
        reason = postgres_unreachable()
        if reason is not None:
            if os.environ.get("CI"):
                pytest.fail(f"CI is set and PostgreSQL is unreachable at {POSTGRES_URL}: {reason}")
            pytest.skip(f"PostgreSQL unreachable: {reason}")
        self.name = f"carnet_test_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        return (
            make_url(POSTGRES_URL)
            .set(drivername="postgresql+psycopg", database=self.name)
            .render_as_string(hide_password=False)
        )

    def __exit__(self, *_exc: object) -> None:
        with psycopg.connect(_libpq(POSTGRES_URL), autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name))
            )


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test; services' flushes are real."""
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture
def clock() -> FrozenClock:
    """Noon UTC on 1 June 2026, moved only by the test."""
    return FrozenClock(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC))


@pytest.fixture
def master_key() -> bytes:
    """A fresh 256-bit master key."""
    return secrets.token_bytes(32)


@pytest.fixture
def wrapper(master_key: bytes) -> MasterKeyWrapper:
    """The key wrapper of the test's master key."""
    return MasterKeyWrapper(master_key, "test")


@pytest.fixture
def store(tmp_path: Path, wrapper: MasterKeyWrapper) -> FilesystemDocumentStore:
    """An encrypted filesystem store in a temporary directory, with a 1 MiB limit."""
    return FilesystemDocumentStore(tmp_path / "store", wrapper, max_bytes=1024 * 1024)


@pytest.fixture(params=DATABASES)
def committing_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database of its own, migrated, for code that commits (CLI commands, loaders)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'own.db'}")
        schema.upgrade(engine)
        _ran_on.add("sqlite")
        yield engine
        engine.dispose()
        return
    with throwaway_postgres() as url:
        engine = make_engine(url)
        schema.upgrade(engine)
        _ran_on.add("postgresql")
        yield engine
        engine.dispose()
