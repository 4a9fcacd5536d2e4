"""The ``carnet`` command: serve, demo data, migrations, configuration, tokens, keys, clients.

One command is one transaction (or one per batch, where the command says so). Domain errors
print one readable line and exit non-zero; a stack trace never reaches the operator's terminal
unless ``--debug`` asks for it.
"""

from __future__ import annotations

import csv
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
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from typer.core import TyperGroup

import carnet
from carnet import schema
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.errors import AccessError
from carnet.access.scopes import parse_scopes
from carnet.audit.service import Agent, record_refusal
from carnet.auth import card_authorities, keys, service, staff
from carnet.auth.tokens import TokenAuthority
from carnet.db import unit_of_work
from carnet.errors import CarnetError
from carnet.exports import build_export_zip, import_export_zip
from carnet.lifecycle.enrolment import enrol_registry
from carnet.lifecycle.errors import InvalidRegistryFile
from carnet.lifecycle.jobs import SweepSchedule, run_jobs
from carnet.lifecycle.service import Invitation, issue_invitation
from carnet.lifecycle.sweep import sweep_store
from carnet.patients.service import find_by_reference
from carnet.platform import Platform, build_platform
from carnet.settings import Settings
from carnet.storage import StorageError
from carnet.storage.ports import ListedObject

# --- One line per fault (issue 15): a database or configuration fault, wherever a command meets
# it, prints one ``error: …`` line and exits 1; ``--debug`` shows the stack trace instead.


class _OneLineErrors(TyperGroup):
    """Every command runs inside this group: the one place faults become readable lines."""

    # ``Any``: Typer vendors its own click, whose Context it does not export under a public name.
    def invoke(self, ctx: Any) -> Any:
        """Run the command; translate what ``_fault`` knows, let anything else through."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = _fault(error)
            if message is None:
                raise
            _fail(message)


def _fault(error: BaseException) -> str | None:
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


app = typer.Typer(
    help="Carnet, the shared health record.",
    no_args_is_help=True,
    add_completion=False,
    cls=_OneLineErrors,
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
jobs_app = typer.Typer(help="The scheduled jobs (the server also runs them).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
operators_app = typer.Typer(
    help="The agency's accounts: operators, security officers.", no_args_is_help=True
)
app.add_typer(operators_app, name="operators")
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
        _fail(_fault(error) if isinstance(error, ValidationError) else f"Cannot start: {error}")
    try:
        yield platform
    except (CarnetError, StorageError) as error:
        _fail(str(error))
    finally:
        platform.close()


def _fail(message: str | None, code: int = 1) -> NoReturn:
    if _state.debug and sys.exc_info()[1] is not None:
        raise  # noqa: PLE0704 — re-raises the error being handled, for --debug
    # One line, whatever the message carries (a driver's hint, a pydantic report).
    shown = " ".join(line.strip() for line in (message or "").splitlines() if line.strip())
    typer.secho(f"error: {shown}", err=True, fg=typer.colors.RED)
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
    except ValidationError as error:
        _fail(_fault(error))
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        typer.echo(f"CARNET_{name.upper():<{width}}  {value}")


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
    with _platform() as platform, _owner_engine(platform) as owner:
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
    with _platform() as platform:
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

    with _platform() as platform, _owner_engine(platform) as owner, owner.begin() as connection:
        granted = grant_runtime(connection, role, sorted(schema.metadata().tables))
    typer.echo(granted.summary())
    for warning in granted.warnings:
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)


@audit_app.command("key")
def audit_key() -> None:
    """Print the audit trail's public key (PEM) and its id, for auditors."""
    with _platform() as platform:
        if platform.audit_key is None:
            _fail("No audit signing key is configured.")
        public = platform.audit_key.public
    # The PEM alone on standard output: `carnet audit key > audit-public.pem`.
    typer.echo(f"Carnet audit key {public.key_id} (Ed25519):", err=True)
    typer.echo(public.pem().rstrip())


@audit_app.command("checkpoint")
def audit_checkpoint(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="FILE",
            help="The checkpoint log (a path or file:// URL); default CARNET_AUDIT_CHECKPOINTS.",
        ),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="Every chain head, not only those changed since.")
    ] = False,
) -> None:
    """Append a signed checkpoint of the audit chain heads to an append-only log."""
    from carnet.audit.checkpoints import CheckpointLogError, log_path, take_checkpoint  # noqa: PLC0415

    with _platform() as platform:
        _require_schema(platform)
        location = to or platform.settings.audit_checkpoints
        if not location or platform.audit_key is None:
            _fail("Say where: --to FILE, or set CARNET_AUDIT_CHECKPOINTS.")
        try:
            path = log_path(location)
            with unit_of_work(platform.sessions) as session:
                taken = take_checkpoint(
                    session, path, key=platform.audit_key, clock=platform.clock, full=full
                )
        except CheckpointLogError as error:
            _fail(str(error))
    typer.echo(taken.summary(path))


@audit_app.command("verify")
def audit_verify(
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            metavar="FILE",
            help="Also check the trail against this checkpoint log, and the log itself.",
        ),
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            metavar="FILE",
            help="A public audit key (from `carnet audit key`) to verify with instead of the "
            "configured one; repeat for keys rotated out.",
        ),
    ] = None,
) -> None:
    """Walk every hash chain; check every head's signature and every checkpointed position."""
    from carnet.audit.checkpoints import CheckpointLogError, read_log  # noqa: PLC0415
    from carnet.audit.signing import AuditKeyError, KeyRing, load_public_key  # noqa: PLC0415
    from carnet.audit.verify import verify_trail  # noqa: PLC0415

    with _platform() as platform:
        try:
            if public_key:
                ring = KeyRing.of(load_public_key(path.read_text()) for path in public_key)
            elif platform.audit_key is not None:
                ring = platform.audit_key.ring
            else:
                _fail("No audit key: give --public-key FILE.")
            log = read_log(checkpoints, ring) if checkpoints is not None else None
        except (OSError, AuditKeyError, CheckpointLogError) as error:
            _fail(str(error))
        with platform.sessions() as session:
            report = verify_trail(session, ring, checkpoints=log)
    links = report.links
    for broken in links.broken:
        typer.secho(f"BROKEN {broken}", err=True, fg=typer.colors.RED)
    for finding in report.findings:
        typer.secho(f"TAMPERED {finding}", err=True, fg=typer.colors.RED)
    if report.intact:
        typer.echo(f"Audit trail intact: {links.events} events in {links.chains} chains.")
    typer.echo(f"Chain heads: {report.signed_heads} signed by a known key.")
    if log is not None:
        typer.echo(
            f"Checkpoints: {report.checkpoint_records} records; {report.checkpointed_chains} "
            "chains checked against their last checkpointed event."
        )
    if not report.intact:
        raise typer.Exit(1)


@audit_app.command("seal-unsigned")
def audit_seal_unsigned(
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            metavar="FILE",
            help="Refuse chains this checkpoint log saw signed or pinned elsewhere; default "
            "CARNET_AUDIT_CHECKPOINTS when that file exists.",
        ),
    ] = None,
) -> None:
    """Seal the chain heads written before signing began, each once its chain's links verify.

    Carnet refuses to extend an unsigned head. Each one's chain is walked from its first event;
    an intact chain's head is sealed with the audit key, a broken one is named and left unsigned
    (exit 1). Idempotent: run it after upgrading past revision 0009.
    """
    from carnet.audit.checkpoints import CheckpointLogError, log_path, read_log  # noqa: PLC0415
    from carnet.audit.unsigned_heads import seal_unsigned_heads  # noqa: PLC0415

    with _platform() as platform:
        _require_schema(platform)
        key = platform.audit_key
        if key is None:
            _fail("No audit signing key is configured.")
        configured = platform.settings.audit_checkpoints
        path = checkpoints
        try:
            if path is None and configured and log_path(configured).exists():
                path = log_path(configured)
            log = read_log(path, key.ring) if path is not None else None
        except CheckpointLogError as error:
            _fail(str(error))
        if log is not None and log.problems:
            _fail(f"the checkpoint log {path} is damaged ({log.problems[0]}): nothing sealed")
        sealed, refused, after = 0, 0, None
        while True:
            with unit_of_work(platform.sessions) as session:
                batch = seal_unsigned_heads(session, key, checkpoints=log, after=after)
            sealed += batch.sealed
            for chain, problem in batch.refused:
                refused += 1
                typer.secho(f"NOT SEALED chain {chain}: {problem}", err=True, fg=typer.colors.RED)
            if batch.last_chain is None:
                break
            after = batch.last_chain
    against = f", checked against {path}" if log is not None else ""
    typer.echo(f"Sealed {sealed} unsigned chain heads{against}; {refused} left unsigned.")
    if refused:
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
    from carnet.demo.guide import sign_in_guide  # noqa: PLC0415

    with _platform() as platform:
        if not platform.settings.demo_idp:
            # The demo seeds accounts with public passwords and TOTP seeds, and a card authority
            # whose private key sits in the database: never where the demo is switched off.
            _fail(
                "The demo population is only loaded where the demo identity provider is on "
                "(CARNET_DEMO_IDP=true); this Carnet has it off."
            )
        _require_schema(platform)
        report = load_demo(
            platform.sessions,
            platform.store,
            seed=platform.settings.demo_seed,
            key_wrapper=platform.key_wrapper,
        )
        typer.echo(report.summary())
        for line in sign_in_guide(platform.settings.demo_seed, platform.settings.public_url):
            typer.echo(line)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Serve Carnet over HTTP (Ctrl-C stops it cleanly)."""
    import uvicorn  # noqa: PLC0415

    from carnet.web.serving import (  # noqa: PLC0415
        EVENT_LOOP,
        HTTP_PROTOCOL,
        LOG_CONFIG,
        fork_workers_from_a_preloaded_server,
    )

    application = "carnet.app:served_app"
    # The schema is checked once, here: a worker that refused to start would only be replaced
    # by another refusing the same way.
    with _platform() as platform:
        _require_schema(platform)
        settings = platform.settings
    fork_workers_from_a_preloaded_server(application)
    uvicorn.run(
        application,
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        timeout_worker_healthcheck=settings.worker_healthcheck_seconds,
        proxy_headers=False,
        server_header=False,
        log_level="info",
        # Applied again in each worker; requests are logged by AccessLog, without query strings.
        log_config=LOG_CONFIG,
        access_log=False,
        http=HTTP_PROTOCOL,
        loop=EVENT_LOOP,
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
        str,
        typer.Option(
            "--as", help="patient:<national identifier>, professional:<id> or operator:<name>."
        ),
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


@operators_app.command("add")
def operators_add(
    name: Annotated[str, typer.Argument(help="The name they sign in with (e.g. jdupont).")],
    security_officer: Annotated[
        bool,
        typer.Option(
            "--security-officer",
            help="A security officer (reads the audit trail) rather than "
            "an operator (indicators, enrolment).",
        ),
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an agency account; print its authenticator enrolment URI, once.

    The password is asked for (or read from standard input), never given as an argument, so it
    stays out of the shell history and the process list.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    kind = ActorKind.SECURITY_OFFICER if security_officer else ActorKind.OPERATOR
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            secret = service.create_operator_account(
                session,
                name=name,
                kind=kind,
                password=password,
                key_wrapper=_authority(platform).key_wrapper,
                clock=platform.clock,
            )
        account = name.strip().lower()
        typer.echo(f"Created the {kind.value} account {account}.")
        typer.echo(
            "Enrol this in their authenticator app now (it is not shown again); they sign in "
            "with their password and its one-time code:"
        )
        typer.echo(service.totp_provisioning_uri(secret, name=account))


@app.command()
def enrol(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The registry CSV (UTF-8).")
    ],
    operator: Annotated[str, typer.Option(help="The operator enrolling, for the audit trail.")] = (
        "cli"
    ),
    letters: Annotated[
        Path | None,
        typer.Option(
            help="Print invitation letters with activation codes for the new dossiers: into one "
            "PDF if this ends in .pdf, else one PDF per patient in this directory."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Rows per transaction.")] = (
        2000
    ),
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar (on a terminal only).")
    ] = True,
) -> None:
    """Enrol the insurer's registry: invited dossiers for new people, updates for known ones.

    Idempotent: the same file again changes nothing. Bad rows are listed by line and skipped.
    """

    console = Console(stderr=True, highlight=False, emoji=False)
    with _platform() as platform:
        _require_schema(platform)
        settings = platform.settings
        printer = _LetterPrinter(letters, settings.public_url, platform.clock.now())
        bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not (progress and console.is_terminal),
        )
        try:
            with (
                bar,
                bar.open(
                    file, "r", encoding="utf-8-sig", newline="", description="Enrolling"
                ) as stream,
            ):
                report = enrol_registry(
                    platform.sessions,
                    stream,
                    actor=_operator(operator),
                    clock=platform.clock,
                    opening_delay=dt.timedelta(days=settings.opening_delay_days),
                    code_lifetime=dt.timedelta(days=settings.activation_code_days)
                    if letters
                    else None,
                    batch_size=batch_size,
                    on_problem=lambda problem: console.print(
                        str(problem), markup=False, soft_wrap=True
                    ),
                    on_invitations=printer.print,
                )
        except UnicodeDecodeError as error:
            raise InvalidRegistryFile(
                f"The registry file is not UTF-8 ({error.reason} at byte {error.start} of a "
                "block); the rows before it were enrolled.",
                field="file",
            ) from error
        except csv.Error as error:
            raise InvalidRegistryFile(f"The registry file is not valid CSV: {error}.") from error
        typer.echo(report.summary())
        if letters is not None:
            typer.echo(printer.finish())


class _LetterPrinter:
    """Where ``carnet enrol`` and ``carnet invite`` print invitation letters."""

    def __init__(self, target: Path | None, portal_url: str, printed_at: dt.datetime) -> None:
        from carnet.lifecycle.letters import LetterBook  # noqa: PLC0415 — fpdf2 only when needed

        self.target, self.portal_url, self.printed_at = target, portal_url, printed_at
        self.count = 0
        self.book = None
        if target is not None and target.suffix.lower() == ".pdf":
            self.book = LetterBook(portal_url=portal_url, printed_at=printed_at)
        elif target is not None:
            target.mkdir(parents=True, exist_ok=True)

    def print(self, invitations: list[Invitation]) -> None:
        """Print the letters of one committed batch."""
        from carnet.lifecycle.letters import write_letter  # noqa: PLC0415

        for invitation in invitations:
            if self.book is not None:
                self.book.add(invitation)
            elif self.target is not None:
                write_letter(
                    invitation, self.target, portal_url=self.portal_url, printed_at=self.printed_at
                )
            self.count += 1

    def finish(self) -> str:
        """Write the batch PDF, if any; say where the letters went."""
        if self.count == 0:
            return "No new dossier: no letter printed."
        if self.book is not None and self.target is not None:
            self.book.write(self.target)
        return f"{self.count} invitation letters printed to {self.target}."


@app.command()
def invite(
    patient: Annotated[str, typer.Option(help="The patient: national identifier or Carnet id.")],
    letters: Annotated[Path, typer.Option(help="Where to print the letter (.pdf or a directory).")],
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Print a new invitation letter for one patient; their earlier codes stop working."""

    with _platform() as platform:
        _require_schema(platform)
        settings = platform.settings
        printer = _LetterPrinter(letters, settings.public_url, platform.clock.now())
        with unit_of_work(platform.sessions) as session:
            found = find_by_reference(session, patient)
            letter = issue_invitation(
                session,
                _operator(operator),
                found.id,
                clock=platform.clock,
                lifetime=dt.timedelta(days=settings.activation_code_days),
            )
        printer.print([letter])
        typer.echo(printer.finish())


@jobs_app.command("run")
def jobs_run() -> None:
    """Run each due job once: openings at the deadline, emergency expiry, digests, purge."""

    with _platform() as platform:
        _require_schema(platform)
        report = run_jobs(
            platform.sessions,
            platform.store,
            clock=platform.clock,
            retention_years=platform.settings.retention_years,
            sweep=SweepSchedule.from_settings(platform.settings),
            audit_checkpoints=platform.audit_checkpoints,
        )
        typer.echo(report.summary())


# --- carnet store: the document store's upkeep (the store sweeper) ---------------------------
store_app = typer.Typer(help="The document store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


@store_app.command("sweep")
def store_sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    grace_seconds: Annotated[
        int | None,
        typer.Option(
            "--grace-seconds",
            min=0,
            help="Override CARNET_STORE_SWEEP_GRACE_SECONDS. Below the longest publication "
            "time only while no server runs: younger objects may belong to one in flight.",
        ),
    ] = None,
) -> None:
    """Remove stored objects no document references, older than the grace period."""

    def show(listed: ListedObject) -> None:
        typer.echo(f"{listed.key} {listed.size} bytes, written {listed.modified_at.isoformat()}")

    with _platform() as platform:
        _require_schema(platform)
        seconds = grace_seconds
        if seconds is None:
            seconds = platform.settings.store_sweep_grace_seconds
        report = sweep_store(
            platform.sessions,
            platform.store,
            clock=platform.clock,
            grace=dt.timedelta(seconds=seconds),
            dry_run=dry_run,
            on_unreferenced=show if dry_run else None,
        )
        typer.echo(report.summary(dry_run=dry_run))


@app.command()
def export(
    patient: Annotated[
        str, typer.Option(help="The dossier: its patient's national identifier or Carnet id.")
    ],
    as_: Annotated[
        str,
        typer.Option(
            "--as", help="patient:<national identifier>: the patient, or their representative."
        ),
    ],
    out: Annotated[Path, typer.Option(help="The zip to write.")],
) -> None:
    """Export a dossier (FHIR Bundle and original files, one zip), acting as its patient.

    Only where the demo identity provider is on: elsewhere patients export from the API.
    """

    with _platform() as platform:
        _require_schema(platform)
        settings = platform.settings
        if not settings.demo_idp:
            _fail(
                "carnet export acts as the patient, which the command line may do only where "
                "the demo identity provider is on (CARNET_DEMO_IDP=true); elsewhere the patient "
                "exports their dossier through the API."
            )
        kind, _, identifier = as_.partition(":")
        if kind != ActorKind.PATIENT.value or not identifier.strip():
            _fail(f"--as must be patient:<national identifier>, not {as_!r}.")
        with _recording_refusals(platform), unit_of_work(platform.sessions) as session:
            dossier = find_by_reference(session, patient)
            person = find_by_reference(session, identifier)
            actor = Actor(
                kind=ActorKind.PATIENT,
                subject=f"Patient/{person.id}",
                assurance=Assurance.SUBSTANTIAL,
                scopes=parse_scopes("patient/*.rs")[0],
                person_id=person.id,
                acting_for=dossier.id,
                client_id="carnet-cli",
            )
            data = build_export_zip(
                session,
                platform.store,
                actor,
                dossier.id,
                clock=platform.clock,
                base_url=f"{settings.public_url}/fhir",
            )
        out.write_bytes(data)
        typer.echo(f"Exported dossier {dossier.id} to {out} ({len(data)} bytes).")


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A dossier export zip.")
    ],
    operator: Annotated[str, typer.Option(help="The operator importing, for the audit trail.")] = (
        "cli"
    ),
) -> None:
    """Import a dossier export into this Carnet (which must not hold the patient yet)."""

    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            report = import_export_zip(
                session,
                platform.store,
                file.read_bytes(),
                operator=_operator(operator),
                clock=platform.clock,
                max_document_bytes=platform.settings.max_document_bytes,
            )
        typer.echo(report.summary())


# --- onboarding: the agency invites professionals (carnet.auth.onboarding) ------------------

professionals_app = typer.Typer(
    help="Professionals' sign-in: invitations from the agency.", no_args_is_help=True
)
app.add_typer(professionals_app, name="professionals")


@professionals_app.command("invite")
def professionals_invite(
    identifier: Annotated[str, typer.Argument(help="Their directory identifier (RPPS or code).")],
    valid_days: Annotated[
        int, typer.Option("--valid-days", min=1, max=90, help="How long the link works.")
    ] = 14,
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Print a one-time link with which a professional sets up their sign-in.

    The link opens Carnet's account page (a password and a passkey or authenticator app); it
    works once, for ``--valid-days`` days; a new invitation revokes the earlier ones. A
    professional who already has an account gets their credentials replaced (recovery). Hand it
    over as the agency hands out anything that opens an account: never by e-mail alone.
    """
    from carnet.auth import onboarding  # noqa: PLC0415 — only this command needs it

    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            row, code = onboarding.invite_professional(
                session,
                identifier=identifier,
                issued_by=f"operator:{operator}",
                clock=platform.clock,
                lifetime=dt.timedelta(days=valid_days),
            )
        link = f"{platform.settings.public_url}/oauth/authorize/invitation?code={code}"
        typer.echo(f"Invitation for {identifier}, valid until {row.expires_at:%Y-%m-%d %H:%M} UTC:")
        typer.echo(link)


def _operator(name: str) -> Actor:
    return Actor(kind=ActorKind.OPERATOR, subject=f"operator:{name}", assurance=Assurance.HIGH)


@contextmanager
def _recording_refusals(platform: Platform) -> Iterator[None]:
    """Record a policy refusal in a transaction of its own (the command's is rolled back)."""
    try:
        yield
    except AccessError as error:
        if error.refusal is not None:
            with unit_of_work(platform.sessions) as session:
                record_refusal(session, error.refusal, clock=platform.clock)
        raise


def _require_schema(platform: Platform) -> None:
    current = schema.current_revision(platform.engine)
    head = schema.head_revision(platform.engine)
    if current != head:
        _fail(
            f"The database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `carnet db upgrade`."
        )


# --- cards and staff: card authorities (carnet.auth.card_authorities), staff (auth.staff) -----

cards_app = typer.Typer(
    help="Professional card authorities Carnet trusts, and their CRLs.", no_args_is_help=True
)
app.add_typer(cards_app, name="cards")
staff_app = typer.Typer(
    help="Staff (CPE card) acting for a professional who allowed them.", no_args_is_help=True
)
app.add_typer(staff_app, name="staff")


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        _fail(f"Cannot read the {what} {path}: {error.strerror or error}")


def _operator_agent(name: str) -> Agent:
    return _operator(name).agent


@cards_app.command("trust")
def cards_trust(
    certificate: Annotated[Path, typer.Argument(help="The authority's certificate (PEM or DER).")],
    crl: Annotated[
        Path | None, typer.Option("--crl", help="Its CRL file (and its intermediates').")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="How Carnet names it (default: its common name).")
    ] = None,
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Trust a card authority: cards it issued (directly or through intermediates) sign in.

    Its cards are refused until a current CRL is registered (here with --crl, or `carnet cards
    crl`): revocation is checked on every card sign-in, and fails closed.
    """
    pem = _read_file(certificate, "certificate")
    crl_bytes = _read_file(crl, "CRL") if crl is not None else None
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            row = card_authorities.trust(
                session,
                certificate_pem=pem,
                name=name,
                crl=crl_bytes,
                agent=_operator_agent(operator),
                clock=platform.clock,
            )
            trusted_name, has_crl = row.name, row.crl_pem is not None
    typer.echo(f"Trusted card authority {trusted_name!r}.")
    if not has_crl:
        typer.secho(
            f"warning: no CRL yet: its cards are refused until `carnet cards crl "
            f"{trusted_name!r} FILE.crl`.",
            err=True,
            fg=typer.colors.YELLOW,
        )


@cards_app.command("crl")
def cards_crl(
    authority: Annotated[str, typer.Argument(help="The authority's name (`carnet cards list`).")],
    crl: Annotated[Path, typer.Argument(help="The CRL file (PEM blocks or one DER CRL).")],
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Replace an authority's CRLs with fresh ones (run it before their nextUpdate)."""
    data = _read_file(crl, "CRL")
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            card_authorities.update_crl(
                session,
                name=authority,
                crl=data,
                agent=_operator_agent(operator),
                clock=platform.clock,
            )
    typer.echo(f"Updated the CRLs of {authority!r}.")


@cards_app.command("distrust")
def cards_distrust(
    authority: Annotated[str, typer.Argument(help="The authority's name (`carnet cards list`).")],
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Stop trusting a card authority: its cards are refused from now on."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            card_authorities.distrust(
                session, name=authority, agent=_operator_agent(operator), clock=platform.clock
            )
    typer.echo(f"No longer trusting {authority!r}.")


@cards_app.command("list")
def cards_list() -> None:
    """List the trusted card authorities, their expiry and their CRLs' next update."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            for summary in card_authorities.summaries(session):
                crl = (
                    f"{summary.crl_count} CRL(s), next update {summary.crl_next_update:%Y-%m-%d}"
                    if summary.crl_next_update
                    else "NO CRL: its cards are refused"
                )
                typer.echo(
                    f"{summary.name}  {summary.subject}  until {summary.not_after:%Y-%m-%d}  "
                    f"{crl}  sha256:{summary.fingerprint}"
                )


@staff_app.command("allow")
def staff_allow(
    staff_identifier: Annotated[str, typer.Argument(help="The staff member's identifier.")],
    doctor: Annotated[
        str, typer.Option("--for", help="The identifier of the professional they act for.")
    ],
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Let a staff member act for a professional, with that professional's access only."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            member = staff.find(session, staff_identifier)
            professional = staff.find(session, doctor)
            staff.allow(
                session,
                staff_id=member.id,
                professional_id=professional.id,
                granted_by=f"operator:{operator}",
                clock=platform.clock,
            )
    typer.echo(f"{staff_identifier} may act for {doctor}.")


@staff_app.command("revoke")
def staff_revoke(
    staff_identifier: Annotated[str, typer.Argument(help="The staff member's identifier.")],
    doctor: Annotated[
        str, typer.Option("--for", help="The identifier of the professional they acted for.")
    ],
) -> None:
    """End a staff member's allowance; their tokens stop at the next refresh."""
    with _platform() as platform:
        _require_schema(platform)
        with unit_of_work(platform.sessions) as session:
            member = staff.find(session, staff_identifier)
            professional = staff.find(session, doctor)
            staff.revoke(
                session, staff_id=member.id, professional_id=professional.id, clock=platform.clock
            )
    typer.echo(f"{staff_identifier} no longer acts for {doctor}.")


def main() -> None:
    """Entry point of the ``carnet`` script."""
    sys.exit(app())
