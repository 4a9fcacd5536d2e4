"""``carnet clients``: the OAuth clients, apps (public) and feeding systems (with their keys)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from carnet.auth import clients
from carnet.cli.platforms import fail, migrated_platform
from carnet.db import unit_of_work

clients_app = typer.Typer(help="OAuth clients: apps and feeding systems.", no_args_is_help=True)


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
            fail(f"Cannot read the JWKS file {jwks}: {error}")
    with migrated_platform() as platform:
        with unit_of_work(platform.sessions) as session:
            if organisation is not None:
                client = clients.register_backend_client(
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
                client = clients.register_public_client(
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
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
        for client in clients.list_clients(session):
            state = "" if client.active else "  (inactive)"
            typer.echo(
                f"{client.client_id}  {client.kind.value}  {client.name}  "
                f"[{client.allowed_scopes}]{state}"
            )
