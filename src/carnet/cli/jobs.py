"""``carnet jobs``, ``carnet notifications`` and ``carnet store``: the server's upkeep, by hand.

The server runs each of these on its own schedule; the commands run one pass now, for an
operator, a cron job, or a Carnet whose server is stopped.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from carnet.cli.platforms import fail, migrated_platform, opened_platform
from carnet.db import unit_of_work
from carnet.lifecycle.sweep import sweep_store
from carnet.storage.ports import ListedObject

jobs_app = typer.Typer(help="The scheduled jobs (the server also runs them).", no_args_is_help=True)


@jobs_app.command("run")
def jobs_run() -> None:
    """Run each due job once: openings at the deadline, emergency expiry, digests, purge."""

    with migrated_platform() as platform:
        report = platform.run_jobs()
        typer.echo(report.summary())


notifications_app = typer.Typer(help="Notices to patients.", no_args_is_help=True)


@notifications_app.command("send")
def notifications_send() -> None:
    """Send the pending e-mail notices now (the server also does it every few seconds)."""
    from carnet.lifecycle.jobs import deliver_notices  # noqa: PLC0415
    from carnet.notifications.mailer import mailer_from_url  # noqa: PLC0415

    with opened_platform() as platform:
        settings = platform.settings
        url = settings.smtp_url.get_secret_value() if settings.smtp_url else ""
        mailer = mailer_from_url(url, settings.mail_from)
        if mailer is None:
            fail("E-mail is off: set CARNET_SMTP_URL (smtp://host:port).")
        with unit_of_work(platform.sessions) as session:
            report = deliver_notices(session, mailer, clock=platform.clock)
    typer.echo(f"Sent {report.sent}, retrying {report.retrying}, failed {report.failed}.")


# --- carnet store: the document store's upkeep (the store sweeper) ---------------------------
store_app = typer.Typer(help="The document store.", no_args_is_help=True)


@store_app.command("sweep")
def store_sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    grace_seconds: Annotated[
        int | None,
        typer.Option(
            "--grace-seconds",
            min=0,
            help="Override CARNET_STORE_SWEEP_GRACE_SECONDS. Below the longest publication "
            "time only while no server runs: younger objects may belong to one in flight.",
        ),
    ] = None,
) -> None:
    """Remove stored objects no document references, older than the grace period."""

    def show(listed: ListedObject) -> None:
        typer.echo(f"{listed.key} {listed.size} bytes, written {listed.modified_at.isoformat()}")

    with migrated_platform() as platform:
        seconds = grace_seconds
        if seconds is None:
            seconds = platform.settings.store_sweep_grace_seconds
        report = sweep_store(
            platform.sessions,
            platform.store,
            clock=platform.clock,
            grace=dt.timedelta(seconds=seconds),
            dry_run=dry_run,
            on_unreferenced=show if dry_run else None,
        )
        typer.echo(report.summary(dry_run=dry_run))
