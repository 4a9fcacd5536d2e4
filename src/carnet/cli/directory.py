"""``carnet directory``: the national professional registry's extract, loaded whole or not at all.

A file with any bad row is refused whole, so the directory never holds half an extract.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from carnet.cli.platforms import (
    as_operator,
    fail,
    migrated_platform,
    recording_refusals,
)
from carnet.db import unit_of_work

# --- the directory: the national professional registry (carnet.directory.registry) ----------

directory_app = typer.Typer(
    help="The professional directory: the national registry's extract.", no_args_is_help=True
)


@directory_app.command("import")
def directory_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The registry extract (CSV).")
    ],
    operator: Annotated[str, typer.Option(help="The operator, for the audit trail.")] = "cli",
) -> None:
    """Load the national professional registry: new professionals added, known ones updated.

    Idempotent: the same file again changes nothing; an empty cell keeps what is stored. A file
    with any bad row is refused whole (one line per problem) and nothing is written.
    """
    from carnet.directory.errors import InvalidDirectoryFile  # noqa: PLC0415 — this command only
    from carnet.lifecycle.directory_registry import import_directory  # noqa: PLC0415

    with migrated_platform() as platform:
        try:
            with (
                file.open("r", encoding="utf-8-sig", newline="") as stream,
                recording_refusals(platform),
                unit_of_work(platform.sessions) as session,
            ):
                report = import_directory(
                    session, as_operator(operator), stream, clock=platform.clock
                )
        except InvalidDirectoryFile as error:
            for problem in error.problems:
                typer.echo(str(problem), err=True)
            count = len(error.problems)
            fail(f"The registry file is refused ({count} problems); nothing was written.")
        except UnicodeDecodeError as error:
            fail(f"The registry file is not UTF-8 ({error.reason} at byte {error.start}).")
        except csv.Error as error:
            fail(f"The registry file is not valid CSV: {error}.")
    typer.echo(report.summary())
