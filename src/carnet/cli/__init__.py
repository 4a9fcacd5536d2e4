"""The ``carnet`` command: serve, demo data, migrations, configuration, tokens, keys, clients.

One command is one transaction (or one per batch, where the command says so). Domain errors
print one readable line and exit non-zero; a stack trace never reaches the operator's terminal
unless ``--debug`` asks for it.

This module is the command's table of contents: the app, the one place faults become lines,
and every command and group registered in the order ``carnet --help`` lists them. The commands
themselves live in one module per group (``db``, ``audit``, ``accounts`` …); what they all stand
on (the platform, the one-line failure, the schema check) lives in ``platforms``.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

if sys.argv[1:2] == ["serve"]:
    # ``carnet serve``: the fork server its workers come from starts importing Carnet now, while
    # this process imports the commands below; on a busy machine the two overlap instead of
    # adding up (``carnet.web.serving.fork_workers_from_a_preloaded_server``).
    from carnet.web.serving import fork_workers_from_a_preloaded_server

    fork_workers_from_a_preloaded_server("carnet.app:served_app")

from carnet.cli import (
    accounts,
    audit,
    clients,
    configuration,
    db,
    demo,
    directory,
    feeds,
    hl7,
    jobs,
    lifecycle,
    mllp,
    serve,
    tokens,
)
from carnet.cli.platforms import fail, fault, state


class _OneLineErrors(TyperGroup):
    """Every command runs inside this group: the one place faults become readable lines."""

    # ``Any``: Typer vendors its own click, whose Context it does not export under a public name.
    def invoke(self, ctx: Any) -> Any:
        """Run the command; translate what ``fault`` knows, let anything else through."""
        try:
            return super().invoke(ctx)
        except Exception as error:
            message = fault(error)
            if message is None:
                raise
            fail(message)


app = typer.Typer(
    help="Carnet, the shared health record.",
    no_args_is_help=True,
    add_completion=False,
    cls=_OneLineErrors,
)

# Commands first, then groups, each in the order of registration: ``carnet --help`` lists them so.
app.command()(configuration.version)
app.command()(configuration.config)
app.command()(demo.demo)
app.command()(serve.serve)
app.command()(tokens.token)
app.command()(tokens.otp)
app.command()(lifecycle.enrol)
app.command()(lifecycle.invite)
app.command()(lifecycle.export)
app.command("import")(lifecycle.import_)
app.add_typer(db.db_app, name="db")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(jobs.notifications_app, name="notifications")
app.add_typer(tokens.keys_app, name="keys")
app.add_typer(clients.clients_app, name="clients")
app.add_typer(jobs.jobs_app, name="jobs")
app.add_typer(accounts.operators_app, name="operators")
app.add_typer(jobs.store_app, name="store")
app.add_typer(accounts.professionals_app, name="professionals")
app.add_typer(directory.directory_app, name="directory")
app.add_typer(accounts.cards_app, name="cards")
app.add_typer(accounts.staff_app, name="staff")
app.add_typer(mllp.mllp_app, name="mllp")
app.add_typer(feeds.feeds_app, name="feeds")
app.add_typer(hl7.hl7_app, name="hl7")


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show stack traces on errors.")] = False,
) -> None:
    state.debug = debug
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # Alembic narrates every context it opens; the command prints its own one-line outcome.
    logging.getLogger("alembic").setLevel(logging.WARNING)


def main() -> None:
    """Entry point of the ``carnet`` script."""
    sys.exit(app())
