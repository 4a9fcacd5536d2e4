"""``carnet token``, ``carnet otp`` and ``carnet keys``: what Carnet signs tokens with.

Tokens and one-time codes are printed for the demo identity provider's accounts only; the
signing keys rotate with an overlap, so tokens already issued keep working until they expire.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import typer

from carnet.access.actors import Assurance
from carnet.auth import accounts, grants, keys
from carnet.auth.tokens import TokenAuthority
from carnet.cli.platforms import migrated_platform
from carnet.db import unit_of_work
from carnet.platform import Platform

keys_app = typer.Typer(help="The keys that sign Carnet's tokens.", no_args_is_help=True)


_AS_HELP = (
    "patient:<national identifier>, professional:<identifier>, "
    "system:<organisation identifier>, operator:<name> or security-officer:<name>."
)


class _Level(enum.StrEnum):
    LOW = "low"
    SUBSTANTIAL = "substantial"
    HIGH = "high"


def token_authority(platform: Platform) -> TokenAuthority:
    """What signs tokens and wraps account secrets, as the platform's settings configure it."""
    return TokenAuthority.from_settings(platform.settings, platform.key_wrapper)


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
    with migrated_platform() as platform:
        with unit_of_work(platform.sessions) as session:
            issued = grants.mint_token(
                session,
                token_authority(platform),
                as_=as_,
                assurance=Assurance[assurance.name],
                scope=scope,
                lifetime=dt.timedelta(seconds=lifetime) if lifetime else None,
                clock=platform.clock,
            )
        typer.echo(issued.token)


def otp(
    as_: Annotated[
        str,
        typer.Option(
            "--as", help="patient:<national identifier>, professional:<id> or operator:<name>."
        ),
    ],
) -> None:
    """Print the current one-time code of a demo account (demo identity provider only)."""
    with migrated_platform() as platform:
        with unit_of_work(platform.sessions) as session:
            code = accounts.current_otp(
                session,
                as_=as_,
                key_wrapper=token_authority(platform).key_wrapper,
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
    with migrated_platform() as platform:
        authority = token_authority(platform)
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
    with migrated_platform() as platform:
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
