"""``carnet feeds``: the HL7 v2 feeding systems — register, list, deactivate.

A feeding system maps a laboratory's MSH-4 (sending facility), optionally its MSH-3 (sending
application), and its TLS client certificate to an organisation of the directory; its
``--authority`` options say which national identifier each assigning authority of its PID-3
issues. One command, one transaction.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from carnet.cli.platforms import fail, migrated_platform
from carnet.db import unit_of_work

feeds_app = typer.Typer(
    help="HL7 v2 feeding systems: the laboratories that send results.", no_args_is_help=True
)


@feeds_app.command("register")
def register(
    organisation: Annotated[
        str, typer.Argument(help="The organisation: its Carnet id or its directory identifier.")
    ],
    sending_facility: Annotated[
        str, typer.Option(help="MSH-4 as the system sends it (namespace id or universal id).")
    ],
    sending_application: Annotated[
        str, typer.Option(help="MSH-3, if only this application of the facility may send.")
    ] = "",
    certificate: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="The TLS client certificate (PEM or DER) it uses."
        ),
    ] = None,
    authority: Annotated[
        list[str] | None,
        typer.Option(
            help="AUTHORITY=SYSTEM: PID-3's assigning authority and the national identifier "
            "it issues (lu-matricule, fr-nir, fr-ins). Repeatable."
        ),
    ] = None,
) -> None:
    """Register a feeding system for an organisation of the directory."""
    from carnet.feeds import service as feeds  # noqa: PLC0415 — this command's imports only

    authorities: dict[str, str] = {}
    for pair in authority or []:
        name, separator, system = pair.partition("=")
        if not separator or not name.strip() or not system.strip():
            fail(f"--authority {pair!r} is not AUTHORITY=SYSTEM (e.g. CNS=lu-matricule).")
        authorities[name.strip()] = system.strip()
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
        fingerprint = (
            feeds.certificate_fingerprint(certificate.read_bytes()) if certificate else None
        )
        found = feeds.organisation_named(session, organisation)
        registered = feeds.register(
            session,
            organisation_id=found.id,
            sending_facility=sending_facility,
            sending_application=sending_application,
            certificate_sha256=fingerprint,
            authorities=authorities,
            clock=platform.clock,
        )
    typer.echo(f"Feeding system {registered.id} registered for {found.name}.")


@feeds_app.command("list")
def list_() -> None:
    """List the feeding systems, active and deactivated."""
    from carnet.feeds import service as feeds  # noqa: PLC0415 — this command's imports only

    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
        rows = feeds.list_feeding_systems(session)
        lines = [
            "\t".join(
                (
                    str(system.id),
                    organisation.name,
                    system.sending_facility,
                    system.sending_application or "*",
                    "certificate" if system.certificate_sha256 else "no certificate",
                    "deactivated" if system.deactivated_at else "active",
                )
            )
            for system, organisation in rows
        ]
    for line in lines:
        typer.echo(line)
    if not lines:
        typer.echo("No feeding system is registered.")


@feeds_app.command("deactivate")
def deactivate(
    feeding_system: Annotated[str, typer.Argument(help="The feeding system's id.")],
) -> None:
    """Stop accepting messages from a feeding system (what it sent stays)."""
    from carnet.feeds import service as feeds  # noqa: PLC0415 — this command's imports only

    try:
        system_id = uuid.UUID(feeding_system)
    except ValueError:
        fail(f"{feeding_system!r} is not a feeding system id.")
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
        feeds.deactivate(session, system_id, clock=platform.clock)
    typer.echo(f"Feeding system {system_id} deactivated.")
