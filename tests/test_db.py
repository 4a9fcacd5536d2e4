"""The connection pool: a connection is pinged only after it sat idle, and a dead one is replaced.

Against a real PostgreSQL: the server end of a pooled connection is terminated, as a restart or a
firewall would, and the next checkout must still hand out a working connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from carnet import db
from conftest import throwaway_postgres


@pytest.fixture
def engine() -> Iterator[Engine]:
    with throwaway_postgres() as url:
        engine = db.make_engine(url, pool_size=1, max_overflow=0)
        yield engine
        engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT pg_backend_pid()")) or 0)


def _terminate(engine: Engine, pid: int) -> None:
    # From a connection of its own: the pool's only connection is the one being killed.
    other = db.make_engine(engine.url.render_as_string(hide_password=False), poolclass=None)
    with other.connect() as connection:
        assert connection.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_connection_back_moments_ago_is_lent_without_a_ping(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pings: list[object] = []
    ping = engine.dialect.do_ping

    def counted(connection: Any) -> bool:
        pings.append(connection)
        return ping(connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    _backend_pid(engine)
    _backend_pid(engine)
    assert pings == []
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    _backend_pid(engine)
    assert len(pings) == 1


def test_an_idle_connection_killed_by_the_server_is_replaced(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = _backend_pid(engine)
    _terminate(engine, dead)
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    assert _backend_pid(engine) not in (0, dead)


def test_without_the_idle_ping_the_dead_connection_fails_its_statement(engine: Engine) -> None:
    # The check above can fail: lent without a ping, the terminated connection errors.
    dead = _backend_pid(engine)
    _terminate(engine, dead)
    with pytest.raises(OperationalError):
        _backend_pid(engine)
