"""Database plumbing: the declarative base, engines and the unit of work.

Nothing here runs at import time: engines are built by the ways in from the settings.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, TypeDecorator, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import (
    DataError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
    StatementError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry

from carnet.storable import guard_rows

# Stable constraint names: Alembic migrations can then name what they alter or drop.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every Carnet table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# Every row is checked against its columns before a flush writes it: a value the database
# cannot store is the client's fault (400 naming the field), not a database failure (503).
guard_rows(Base)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite keeps no zone; PostgreSQL keeps ``timestamptz``. Either way naive datetimes are refused
    on the way in, so a local time can never be stored by mistake.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        """Return aware UTC datetimes whatever the database kept."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def new_id() -> uuid.UUID:
    """A new random identifier (UUID v4) for a row."""
    return uuid.uuid4()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Build an engine for ``url``; SQLite gets the pragmas Carnet relies on."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"check_same_thread": False})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        dialect = engine.dialect

        def ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
            _ping_if_idle(dialect, dbapi_connection, record)

        event.listen(engine, "checkin", _note_checkin)
        event.listen(engine, "checkout", ping_if_idle)
    return engine


# A pooled connection unused for longer than this is pinged before it is lent (see below).
IDLE_PING_SECONDS = 10.0


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    # pool_pre_ping would cost a round trip on every checkout, and a request checks out at
    # least once: a tenth of a read's time. A connection back in the pool moments ago is alive
    # (a dead server is noticed by the statement itself, and the pool then discards every
    # connection); one that sat idle may have been dropped by a restart or a firewall, so it is
    # pinged — the rule HikariCP applies. DisconnectionError makes the pool take a fresh one.
    checked_in_at = record.info.get("checked_in_at")
    if checked_in_at is None or time.monotonic() - checked_in_at < IDLE_PING_SECONDS:
        return
    try:
        alive = dialect.do_ping(dbapi_connection)
    except Exception as error:  # whatever the driver raises, the link is gone
        raise DisconnectionError(str(error)) from error
    if not alive:
        raise DisconnectionError("the connection did not answer its ping")


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Python's sqlite3 (before 3.12) opens transactions on its own, late and not for DDL, which
    # breaks savepoints and transactional migrations; SQLAlchemy emits BEGIN itself instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the writer;
    # synchronous=FULL because a committed document must survive a power cut.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE: every request writes (at least its audit record), and a deferred transaction
    # that reads then writes cannot wait for the lock — SQLite refuses the upgrade at once.
    # Taking the write lock up front lets busy_timeout queue writers instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with sessions() as session, session.begin():
        yield session


class DatabaseFault(enum.StrEnum):
    """What a database error means for the request that met it."""

    # The request's own values: too long, a NUL, an instant out of range (SQLSTATE class 22).
    INPUT = "input"
    # A constraint refused the write, most often a concurrent twin (SQLSTATE class 23).
    CONFLICT = "conflict"
    # The database cannot be reached or cannot serve now: worth a retry.
    UNREACHABLE = "unreachable"
    # Anything else is Carnet's own defect.
    DEFECT = "defect"


def database_fault(error: SQLAlchemyError) -> DatabaseFault:
    """Classify ``error``: only a lost or refused connection (or a busy database) is a 503.

    A client told "the database is unreachable" retries forever; a value it sent that no
    retry will make storable must be answered as its own fault, once.
    """
    if isinstance(error, DataError):
        return DatabaseFault.INPUT
    if isinstance(error, IntegrityError):
        return DatabaseFault.CONFLICT
    if isinstance(error, OperationalError | InterfaceError | DisconnectionError | PoolTimeout):
        return DatabaseFault.UNREACHABLE
    if getattr(error, "connection_invalidated", False):
        return DatabaseFault.UNREACHABLE
    if isinstance(error, StatementError) and isinstance(
        error.orig, ValueError | OverflowError | UnicodeError
    ):
        # A value the driver or a column type could not convert (a lone surrogate, a date
        # that overflows in UTC): the request's input, caught before the database saw it.
        return DatabaseFault.INPUT
    return DatabaseFault.DEFECT
