"""The ``carnet`` command: serve, demo data, migrations, configuration, tokens, keys, clients.

One command is one transaction (or one per batch, where the command says so). Domain errors
print one readable line and exit non-zero; a stack trace never reaches the operator's terminal
unless ``--debug`` asks for it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

import carnet
from carnet import schema
from carnet.access.actors import Assurance
from carnet.auth import keys, service
from carnet.auth.tokens import TokenAuthority
from carnet.db import unit_of_work
from carnet.errors import CarnetError
from carnet.platform import Platform, build_platform
from carnet.settings import Settings
from carnet.storage import StorageError

app = typer.Typer(
    help="Carnet, the shared health record.", no_args_is_help=True, add_completion=False
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
notifications_app = typer.Typer(help="Notices to patients.", no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")
keys_app = typer.Typer(help="The keys that sign Carnet's tokens.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
clients_app = typer.Typer(help="OAuth clients: apps and feeding systems.", no_args_is_help=True)
app.add_typer(clients_app, name="clients")
_AS_HELP = (
    "patient:<national identifier>, professional:<identifier>, "
    "system:<organisation identifier>, operator:<name> or security-officer:<name>."
)


class _Level(enum.StrEnum):
    LOW = "low"
    SUBSTANTIAL = "substantial"
    HIGH = "high"


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


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk every hash chain of the audit trail; name the first broken link of each."""
    from carnet.audit.service import verify  # noqa: PLC0415

    with _platform() as platform, platform.sessions() as session:
        report = verify(session)
    if report.intact:
        typer.echo(f"Audit trail intact: {report.events} events in {report.chains} chains.")
        return
    for broken in report.broken:
        typer.secho(f"BROKEN {broken}", err=True, fg=typer.colors.RED)
    raise typer.Exit(1)


@notifications_app.command("send")
def notifications_send() -> None:
    """Send the pending e-mail notices now (the server also does it every few seconds)."""
    from carnet.notifications.mailer import mailer_from_url  # noqa: PLC0415
    from carnet.notifications.service import deliver_pending  # noqa: PLC0415

    with _platform() as platform:
        settings = platform.settings
        url = settings.smtp_url.get_secret_value() if settings.smtp_url else ""
        mailer = mailer_from_url(url, settings.mail_from)
        if mailer is None:
            _fail("E-mail is off: set CARNET_SMTP_URL (smtp://host:port).")
        with unit_of_work(platform.sessions) as session:
            report = deliver_pending(session, mailer, clock=platform.clock)
    typer.echo(f"Sent {report.sent}, retrying {report.retrying}, failed {report.failed}.")


@app.command()
def demo() -> None:
    """Load the deterministic demo population (idempotent: a second run changes nothing)."""
    from carnet.demo import load_demo  # noqa: PLC0415 — PDF generation is only needed here

    with _platform() as platform:
        _require_schema(platform)
        report = load_demo(
            platform.sessions,
            platform.store,
            seed=platform.settings.demo_seed,
            key_wrapper=platform.key_wrapper,
        )
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
        "carnet.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        proxy_headers=False,
        server_header=False,
        log_level="info",
    )


def _authority(platform: Platform) -> TokenAuthority:
    return TokenAuthority.from_settings(platform.settings, platform.key_wrapper)


@app.command()
def token(
    as_: Annotated[str, typer.Option("--as", help=f"Whom the token is for: {_AS_HELP}")],
    assurance: Annotated[
        _Level, typer.Option(help="The authentication strength the token claims.")
    ] = _Level.SUBSTANTIAL,
    scope: Annotated[
        str | None, typer.Option(help="SMART scopes (default: everything for the kind).")
    ] = None,
    lifetime: Annotated[
        int | None,
        typer.Option(min=1, max=86400, help="Seconds (default CARNET_ACCESS_TOKEN_SECONDS)."),
    ] = None,
) -> None:
    """Print an access token signed with the server's key (demo identity provider only)."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            issued = service.mint_token(
                session,
                _authority(platform),
                as_=as_,
                assurance=Assurance[assurance.name],
                scope=scope,
                lifetime=dt.timedelta(seconds=lifetime) if lifetime else None,
                clock=platform.clock,
            )
        typer.echo(issued.token)


@app.command()
def otp(
    as_: Annotated[
        str, typer.Option("--as", help="patient:<national identifier> or professional:<id>.")
    ],
) -> None:
    """Print the current one-time code of a demo account (demo identity provider only)."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            code = service.current_otp(
                session,
                as_=as_,
                key_wrapper=_authority(platform).key_wrapper,
                clock=platform.clock,
                demo_idp=platform.settings.demo_idp,
            )
        typer.echo(code)


@keys_app.command("rotate")
def keys_rotate(
    overlap: Annotated[
        int | None,
        typer.Option(
            min=0, help="Seconds the old keys stay accepted (default: longest token lifetime)."
        ),
    ] = None,
) -> None:
    """Start signing with a new key; the old ones stay published until their tokens expire."""
    with _platform() as platform:
        _require_schema(platform)
        authority = _authority(platform)
        window = authority.config.key_overlap if overlap is None else dt.timedelta(seconds=overlap)
        with unit_of_work(platform.sessions) as session:
            new = keys.rotate_signing_key(
                session, key_wrapper=authority.key_wrapper, clock=platform.clock, overlap=window
            )
        until = (platform.clock.now() + window).isoformat(timespec="seconds")
        typer.echo(f"New signing key {new.kid}; the previous keys are accepted until {until}.")


@keys_app.command("list")
def keys_list() -> None:
    """List the signing keys: the one signing, those still published, those expired."""
    with _platform() as platform:
        _require_schema(platform)
        now = platform.clock.now()
        with unit_of_work(platform.sessions) as session:
            rows = keys.all_keys(session)
        if not rows:
            typer.echo("No signing key yet: one is created when the first token is signed.")
        for row in rows:
            if row.retired_at is None:
                status = "signing"
            elif row.expires_at is not None and row.expires_at > now:
                status = f"retired, published until {row.expires_at.isoformat(timespec='seconds')}"
            else:
                status = "expired"
            created = row.created_at.isoformat(timespec="seconds")
            typer.echo(f"{row.kid}  {row.algorithm}  created {created}  {status}")


@clients_app.command("register")
def clients_register(
    name: Annotated[str, typer.Argument(help="The application's or system's name.")],
    organisation: Annotated[
        str | None,
        typer.Option(help="Feeding system: the identifier of the organisation it feeds for."),
    ] = None,
    jwks: Annotated[
        Path | None, typer.Option(help="Feeding system: a file with its public keys (JWKS).")
    ] = None,
    jwks_url: Annotated[
        str | None, typer.Option(help="Feeding system: where it publishes its JWKS.")
    ] = None,
    redirect_uri: Annotated[
        list[str] | None, typer.Option(help="App: a redirect URI (repeat for several).")
    ] = None,
    scope: Annotated[str | None, typer.Option(help="Scopes the client may be granted.")] = None,
    client_id: Annotated[
        str | None, typer.Option(help="The client id (default: a random one).")
    ] = None,
) -> None:
    """Register a feeding system (--organisation with --jwks or --jwks-url) or an app."""
    key_set: dict[str, Any] | None = None
    if jwks is not None:
        try:
            key_set = json.loads(jwks.read_text())
        except (OSError, ValueError) as error:
            _fail(f"Cannot read the JWKS file {jwks}: {error}")
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            if organisation is not None:
                client = service.register_backend_client(
                    session,
                    name=name,
                    organisation_identifier=organisation,
                    allowed_scopes=scope or "system/*.cruds",
                    jwks=key_set,
                    jwks_url=jwks_url,
                    client_id=client_id,
                    clock=platform.clock,
                )
            else:
                client = service.register_public_client(
                    session,
                    name=name,
                    redirect_uris=redirect_uri or [],
                    allowed_scopes=scope
                    or "openid fhirUser launch/patient offline_access patient/*.rs",
                    client_id=client_id,
                    clock=platform.clock,
                )
        typer.echo(f"Registered {client.kind.value} client {client.client_id}.")


@clients_app.command("list")
def clients_list() -> None:
    """List the registered clients."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            for client in service.list_clients(session):
                state = "" if client.active else "  (inactive)"
                typer.echo(
                    f"{client.client_id}  {client.kind.value}  {client.name}  "
                    f"[{client.allowed_scopes}]{state}"
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
