"""``carnet hl7 import FILE``: a laboratory's HL7 v2 file (one message, or FHS/BHS batches).

Each message is processed as the MLLP listener processes it (``carnet.mllp.handling.answer``):
one transaction per message, its ACK only once committed, refusals audited. The file is
vouched for by the operator who imports it, so a sender pinned to a TLS certificate is
recognised without it. One line per message: its control id, the ACK code and what it says.
The command fails (exit 1) if any message was refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from carnet.cli.platforms import fail, migrated_platform

hl7_app = typer.Typer(help="HL7 v2 messages from files.", no_args_is_help=True)


@hl7_app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="The HL7 v2 file or batch.")
    ],
) -> None:
    """Import the ORU^R01 messages of a file; print one line per message."""
    from carnet.laboratory.intake import Credentials  # noqa: PLC0415 — this command only
    from carnet.laboratory.message import split_batch  # noqa: PLC0415
    from carnet.mllp.handling import answer  # noqa: PLC0415

    messages = split_batch(file.read_bytes())
    if not messages or not any(messages):
        fail(f"{file} holds no HL7 v2 message.")
    refused = 0
    credentials = Credentials(certificate_required=False, network_address=f"file:{file.name}")
    with migrated_platform() as platform:
        for number, message in enumerate(messages, start=1):
            result = answer(platform, message, credentials)
            where = f" [{result.field}]" if result.field else ""
            control = result.control_id or f"message {number}"
            typer.echo(f"{control}\t{result.code.value}{where}\t{result.text}")
            refused += result.code.value != "AA"
    total = len(messages)
    if refused:
        fail(f"{refused} of {total} messages refused; the others were stored.")
    typer.echo(f"{total} message(s) accepted.")
