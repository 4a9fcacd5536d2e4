"""The ``carnet`` command: serve, demo data, migrations, configuration.

One command is one transaction (or one per batch, where the command says so). Domain errors
print one readable line and exit non-zero; a stack trace never reaches the operator's terminal
unless ``--debug`` asks for it.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer

import carnet
from carnet import schema
from carnet.errors import CarnetError
from carnet.platform import Platform, build_platform
from carnet.settings import Settings
from carnet.storage import StorageError

app = typer.Typer(
    help="Carnet, the shared health record.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


class _State:
    debug: bool = False


_state = _State()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show stack traces on errors.")] = False,
) -> None:
    _state.debug = debug
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic narrates every context it opens; the command prints its own one-line outcome.
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextmanager
def _platform() -> Iterator[Platform]:
    try:
        platform = build_platform(Settings())
    except (ValueError, StorageError) as error:
        _fail(f"Cannot start: {error}")
    try:
        yield platform
    except (CarnetError, StorageError) as error:
        _fail(str(error))
    finally:
        platform.close()


def _fail(message: str, code: int = 1) -> NoReturn:
    if _state.debug and sys.exc_info()[1] is not None:
        raise  # noqa: PLE0704 — re-raises the error being handled, for --debug
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print Carnet's version."""
    typer.echo(carnet.__version__)


@app.command()
def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings (from CARNET_* variables), secrets masked."""
    try:
        shown = Settings().masked()
    except ValueError as error:
        _fail(f"Invalid configuration: {error}")
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        typer.echo(f"CARNET_{name.upper():<{width}}  {value}")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create the database or migrate it to the latest schema."""
    with _platform() as platform:
        before = schema.current_revision(platform.engine)
        schema.upgrade(platform.engine, revision)
        after = schema.current_revision(platform.engine)
        if before == after:
            typer.echo(f"Database already at {after}.")
        else:
            typer.echo(f"Database migrated from {before or 'nothing'} to {after}.")


@db_app.command("current")
def db_current() -> None:
    """Print the database's schema revision and the code's."""
    with _platform() as platform:
        typer.echo(f"database: {schema.current_revision(platform.engine) or 'not created'}")
        typer.echo(f"code:     {schema.head_revision(platform.engine)}")


@app.command()
def demo() -> None:
    """Load the deterministic demo population (idempotent: a second run changes nothing)."""
    from carnet.demo import load_demo  # noqa: PLC0415 — PDF generation is only needed here

    with _platform() as platform:
        _require_schema(platform)
        report = load_demo(platform.sessions, platform.store, seed=platform.settings.demo_seed)
        typer.echo(report.summary())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve Carnet over HTTP (Ctrl-C stops it cleanly)."""
    import uvicorn  # noqa: PLC0415

    settings = Settings()
    with _platform() as platform:
        _require_schema(platform)
    uvicorn.run(
        "carnet.web.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


def _require_schema(platform: Platform) -> None:
    current = schema.current_revision(platform.engine)
    head = schema.head_revision(platform.engine)
    if current != head:
        _fail(
            f"The database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `carnet db upgrade`."
        )


def main() -> None:
    """Entry point of the ``carnet`` script."""
    sys.exit(app())
