"""``carnet version`` and ``carnet config``: what this Carnet is and how it is set up."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import ValidationError

import carnet
from carnet.cli.platforms import fail, fault
from carnet.settings import Settings


def version() -> None:
    """Print Carnet's version."""
    typer.echo(carnet.__version__)


def config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings (from CARNET_* variables), secrets masked."""
    try:
        shown = Settings().masked()
    except ValidationError as error:
        fail(fault(error))
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    width = max(len(name) for name in shown)
    for name, value in shown.items():
        typer.echo(f"CARNET_{name.upper():<{width}}  {value}")
