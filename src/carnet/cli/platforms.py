"""What every command stands on: the platform it opens, the one-line failure, the schema check.

A command opens the platform (settings, engine, store, keys) once, refuses to run on a schema
older or newer than the code, and fails with one ``error: …`` line and exit 1; ``--debug`` shows
the stack trace instead. A policy refusal is recorded in a transaction of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import ValidationError
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError

from carnet import schema
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.errors import AccessError
from carnet.audit.service import record_refusal
from carnet.db import unit_of_work
from carnet.errors import CarnetError
from carnet.platform import Platform, build_platform
from carnet.settings import Settings
from carnet.storage import StorageError

# --- One line per fault (issue 15): a database or configuration fault, wherever a command meets
# it, prints one ``error: …`` line and exits 1; ``--debug`` shows the stack trace instead.


def fault(error: BaseException) -> str | None:
    """What the operator can act on, in one line, or None for an error that is a bug."""
    described: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], Any], ...] = (
        (ValidationError, _invalid_configuration),
        # The URL itself: not a URL, or an unknown dialect or driver (NoSuchModuleError).
        (ArgumentError, lambda e: f"Invalid database URL (CARNET_DATABASE_URL): {_first_line(e)}"),
        (
            (OperationalError, InterfaceError),
            lambda e: f"Cannot reach the database: {_first_line(e.orig or e)}",
        ),
        (DBAPIError, lambda e: f"The database refused: {_first_line(e.orig or e)}"),
        ((CarnetError, StorageError), str),
        (OSError, lambda e: f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")),
    )
    return next((str(say(error)) for kind, say in described if isinstance(error, kind)), None)


def _invalid_configuration(error: ValidationError) -> str:
    problems = (
        f"CARNET_{'_'.join(map(str, problem['loc'])).upper()}: {problem['msg']}"
        for problem in error.errors()
    )
    return f"Invalid configuration: {'; '.join(problems)}"


def _first_line(error: BaseException) -> str:
    # Drivers add hints and SQLAlchemy a link on lines of their own: the first says what failed.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


class _State:
    """How this run of ``carnet`` was asked to behave; set once, by the command's callback."""

    debug: bool = False


state = _State()


@contextmanager
def opened_platform() -> Iterator[Platform]:
    """The platform of the current settings, closed at the end; a domain error fails in one line."""
    try:
        platform = build_platform(Settings())
    except (ValueError, StorageError) as error:
        fail(fault(error) if isinstance(error, ValidationError) else f"Cannot start: {error}")
    try:
        yield platform
    except (CarnetError, StorageError) as error:
        fail(str(error))
    finally:
        platform.close()


@contextmanager
def migrated_platform() -> Iterator[Platform]:
    """The platform, for a command that touches the database: refused unless it is migrated.

    The schema check comes before anything is read, so a command never runs half-way on a
    database older or newer than the code.
    """
    with opened_platform() as platform:
        require_schema(platform)
        yield platform


def fail(message: str | None, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on one line and exit; under ``--debug``, re-raise instead."""
    if state.debug and sys.exc_info()[1] is not None:
        raise  # noqa: PLE0704 — re-raises the error being handled, for --debug
    # One line, whatever the message carries (a driver's hint, a pydantic report).
    shown = " ".join(line.strip() for line in (message or "").splitlines() if line.strip())
    typer.secho(f"error: {shown}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def as_operator(name: str) -> Actor:
    """The operator a command acts as, named by ``--operator``, for the audit trail."""
    return Actor(kind=ActorKind.OPERATOR, subject=f"operator:{name}", assurance=Assurance.HIGH)


@contextmanager
def recording_refusals(platform: Platform) -> Iterator[None]:
    """Record a policy refusal in a transaction of its own (the command's is rolled back)."""
    try:
        yield
    except AccessError as error:
        if error.refusal is not None:
            with unit_of_work(platform.sessions) as session:
                record_refusal(session, error.refusal, clock=platform.clock)
        raise


def require_schema(platform: Platform) -> None:
    """Fail unless the database is at the code's schema revision."""
    current = schema.current_revision(platform.engine)
    head = schema.head_revision(platform.engine)
    if current != head:
        fail(
            f"The database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `carnet db upgrade`."
        )
