"""``carnet demo``: the deterministic demo population, only where the demo is switched on."""

from __future__ import annotations

import time

import typer

from carnet.cli.platforms import fail, opened_platform, require_schema
from carnet.db import unit_of_work
from carnet.patients import service as patients
from carnet.patients.identifiers import LU_MATRICULE


def demo() -> None:
    """Load the deterministic demo population (idempotent: a second run changes nothing)."""
    from carnet.demo.guide import featured_matricule, sign_in_guide  # noqa: PLC0415
    from carnet.demo.loader import load_demo  # noqa: PLC0415 — PDF generation is only needed here

    with opened_platform() as platform:
        if not platform.settings.demo_idp:
            # The demo seeds accounts with public passwords and TOTP seeds, and a card authority
            # whose private key sits in the database: never where the demo is switched off.
            fail(
                "The demo population is only loaded where the demo identity provider is on "
                "(CARNET_DEMO_IDP=true); this Carnet has it off."
            )
        require_schema(platform)
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            # A first load takes a minute or two: say how far it is, about every tenth.
            if done == total or done % max(1, total // 10) == 0:
                elapsed = time.monotonic() - started
                typer.echo(f"  demo: {done}/{total} patients loaded ({elapsed:.0f} s)", err=True)

        report = load_demo(
            platform.sessions,
            platform.store,
            seed=platform.settings.demo_seed,
            key_wrapper=platform.key_wrapper,
            progress=progress,
        )
        typer.echo(report.summary())
        seed = platform.settings.demo_seed
        matricule = featured_matricule(seed)
        patient_id = None
        if matricule is not None:
            with unit_of_work(platform.sessions) as session:
                patient_id = patients.find_patient_id(session, LU_MATRICULE, matricule)
        for line in sign_in_guide(seed, platform.settings.public_url, patient_id=patient_id):
            typer.echo(line)
