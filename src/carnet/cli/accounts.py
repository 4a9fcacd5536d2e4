"""``carnet operators``, ``professionals``, ``cards`` and ``staff``: who may sign in, and how.

The agency's own accounts, professionals' invitations, the card authorities whose cards sign in
(with their CRLs), and the staff who act for a professional.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Annotated

import typer

from carnet.access.actors import ActorKind
from carnet.audit.service import Agent
from carnet.auth import accounts, card_authorities, staff
from carnet.cli.platforms import as_operator, fail, migrated_platform
from carnet.cli.tokens import token_authority
from carnet.db import unit_of_work

operators_app = typer.Typer(
    help="The agency's accounts: operators, security officers.", no_args_is_help=True
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
    with migrated_platform() as platform:
        with unit_of_work(platform.sessions) as session:
            secret = accounts.create_operator_account(
                session,
                name=name,
                kind=kind,
                password=password,
                key_wrapper=token_authority(platform).key_wrapper,
                clock=platform.clock,
            )
        account = name.strip().lower()
        typer.echo(f"Created the {kind.value} account {account}.")
        typer.echo(
            "Enrol this in their authenticator app now (it is not shown again); they sign in "
            "with their password and its one-time code:"
        )
        typer.echo(accounts.totp_provisioning_uri(secret, name=account))


# --- onboarding: the agency invites professionals (carnet.auth.onboarding) ------------------

professionals_app = typer.Typer(
    help="Professionals' sign-in: invitations from the agency.", no_args_is_help=True
)


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

    with migrated_platform() as platform:
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


# --- cards and staff: card authorities (carnet.auth.card_authorities), staff (auth.staff) -----

cards_app = typer.Typer(
    help="Professional card authorities Carnet trusts, and their CRLs.", no_args_is_help=True
)
staff_app = typer.Typer(
    help="Staff (CPE card) acting for a professional who allowed them.", no_args_is_help=True
)


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        fail(f"Cannot read the {what} {path}: {error.strerror or error}")


def _operator_agent(name: str) -> Agent:
    return as_operator(name).agent


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
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
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
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
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
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
        card_authorities.distrust(
            session, name=authority, agent=_operator_agent(operator), clock=platform.clock
        )
    typer.echo(f"No longer trusting {authority!r}.")


@cards_app.command("list")
def cards_list() -> None:
    """List the trusted card authorities, their expiry and their CRLs' next update."""
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
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
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
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
    with migrated_platform() as platform, unit_of_work(platform.sessions) as session:
        member = staff.find(session, staff_identifier)
        professional = staff.find(session, doctor)
        staff.revoke(
            session, staff_id=member.id, professional_id=professional.id, clock=platform.clock
        )
    typer.echo(f"{staff_identifier} no longer acts for {doctor}.")
