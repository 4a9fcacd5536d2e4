"""``carnet audit``: the audit trail's key, its signed checkpoints, its verification.

The trail is checked against its database owner (issue 15): signed chain heads, and checkpoints
published outside the database, so that whoever owns the tables cannot rewrite history unseen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carnet.cli.platforms import fail, migrated_platform, opened_platform
from carnet.db import unit_of_work

audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)


@audit_app.command("key")
def audit_key() -> None:
    """Print the audit trail's public key (PEM) and its id, for auditors."""
    with opened_platform() as platform:
        if platform.audit_key is None:
            fail("No audit signing key is configured.")
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

    with migrated_platform() as platform:
        location = to or platform.settings.audit_checkpoints
        if not location or platform.audit_key is None:
            fail("Say where: --to FILE, or set CARNET_AUDIT_CHECKPOINTS.")
        try:
            path = log_path(location)
            with unit_of_work(platform.sessions) as session:
                taken = take_checkpoint(
                    session, path, key=platform.audit_key, clock=platform.clock, full=full
                )
        except CheckpointLogError as error:
            fail(str(error))
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

    with opened_platform() as platform:
        try:
            if public_key:
                ring = KeyRing.of(load_public_key(path.read_text()) for path in public_key)
            elif platform.audit_key is not None:
                ring = platform.audit_key.ring
            else:
                fail("No audit key: give --public-key FILE.")
            log = read_log(checkpoints, ring) if checkpoints is not None else None
        except (OSError, AuditKeyError, CheckpointLogError) as error:
            fail(str(error))
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

    with migrated_platform() as platform:
        key = platform.audit_key
        if key is None:
            fail("No audit signing key is configured.")
        configured = platform.settings.audit_checkpoints
        path = checkpoints
        try:
            if path is None and configured and log_path(configured).exists():
                path = log_path(configured)
            log = read_log(path, key.ring) if path is not None else None
        except CheckpointLogError as error:
            fail(str(error))
        if log is not None and log.problems:
            fail(f"the checkpoint log {path} is damaged ({log.problems[0]}): nothing sealed")
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
