"""``carnet demo``: the deterministic demo population, only where the demo is switched on."""

from __future__ import annotations

import typer

from carnet.cli.platforms import fail, opened_platform, require_schema


def demo() -> None:
    """Load the deterministic demo population (idempotent: a second run changes nothing)."""
    from carnet.demo import load_demo  # noqa: PLC0415 — PDF generation is only needed here
    from carnet.demo.guide import sign_in_guide  # noqa: PLC0415

    with opened_platform() as platform:
        if not platform.settings.demo_idp:
            # The demo seeds accounts with public passwords and TOTP seeds, and a card authority
            # whose private key sits in the database: never where the demo is switched off.
            fail(
                "The demo population is only loaded where the demo identity provider is on "
                "(CARNET_DEMO_IDP=true); this Carnet has it off."
            )
        require_schema(platform)
        report = load_demo(
            platform.sessions,
            platform.store,
            seed=platform.settings.demo_seed,
            key_wrapper=platform.key_wrapper,
        )
        typer.echo(report.summary())
        for line in sign_in_guide(platform.settings.demo_seed, platform.settings.public_url):
            typer.echo(line)
