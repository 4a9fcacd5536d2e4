"""``carnet enrol``, ``invite``, ``export`` and ``import``: dossiers arriving and leaving.

Enrolment reads the insurer's registry and prints invitation letters; export and import move a
whole dossier between Carnets.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.scopes import parse_scopes
from carnet.cli.platforms import (
    as_operator,
    fail,
    migrated_platform,
    recording_refusals,
)
from carnet.db import unit_of_work
from carnet.exports import build_export_zip, import_export_zip
from carnet.lifecycle.enrolment import enrol_registry
from carnet.lifecycle.errors import InvalidRegistryFile
from carnet.lifecycle.service import Invitation, issue_invitation
from carnet.patients.service import find_by_reference


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
    with migrated_platform() as platform:
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
                    actor=as_operator(operator),
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


def invite(
    patient: Annotated[str, typer.Option(help="The patient: national identifier or Carnet id.")],
    letters: Annotated[Path, typer.Option(help="Where to print the letter (.pdf or a directory).")],
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Print a new invitation letter for one patient; their earlier codes stop working."""

    with migrated_platform() as platform:
        settings = platform.settings
        printer = _LetterPrinter(letters, settings.public_url, platform.clock.now())
        with unit_of_work(platform.sessions) as session:
            found = find_by_reference(session, patient)
            letter = issue_invitation(
                session,
                open_dossier(
                    session,
                    as_operator(operator),
                    found.id,
                    purposes.ISSUE_INVITATION,
                    clock=platform.clock,
                ),
                lifetime=dt.timedelta(days=settings.activation_code_days),
            )
        printer.print([letter])
        typer.echo(printer.finish())


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

    with migrated_platform() as platform:
        settings = platform.settings
        if not settings.demo_idp:
            fail(
                "carnet export acts as the patient, which the command line may do only where "
                "the demo identity provider is on (CARNET_DEMO_IDP=true); elsewhere the patient "
                "exports their dossier through the API."
            )
        kind, _, identifier = as_.partition(":")
        if kind != ActorKind.PATIENT.value or not identifier.strip():
            fail(f"--as must be patient:<national identifier>, not {as_!r}.")
        with recording_refusals(platform), unit_of_work(platform.sessions) as session:
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
            opened = open_dossier(
                session, actor, dossier.id, purposes.EXPORT_DOSSIER, clock=platform.clock
            )
            data = build_export_zip(
                session, opened, platform.store, base_url=f"{settings.public_url}/fhir"
            )
        out.write_bytes(data)
        typer.echo(f"Exported dossier {dossier.id} to {out} ({len(data)} bytes).")


def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A dossier export zip.")
    ],
    operator: Annotated[str, typer.Option(help="The operator importing, for the audit trail.")] = (
        "cli"
    ),
) -> None:
    """Import a dossier export into this Carnet (which must not hold the patient yet)."""

    with migrated_platform() as platform:
        with unit_of_work(platform.sessions) as session:
            report = import_export_zip(
                session,
                platform.store,
                file.read_bytes(),
                operator=as_operator(operator),
                clock=platform.clock,
                max_document_bytes=platform.settings.max_document_bytes,
            )
        typer.echo(report.summary())
