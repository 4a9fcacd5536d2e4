"""A Carnet for the passkey journey: served on ``http://localhost:<port>``, demo off.

WebAuthn refuses an IP address as relying party id, so this Carnet is reached by host name
(``localhost`` is a secure context over plain HTTP, as WebAuthn requires) rather than on
``127.0.0.1`` like the other journeys'; and it runs with ``CARNET_DEMO_IDP=false``, as a real
deployment does. The cast is the same (seeded through the services, ``cast.py``). This
``carnet`` overrides the parent's for the tests of this folder only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.cast import OneTimeCodes, seed_cast
from browser.conftest import ServedCarnet, serve_carnet


@pytest.fixture(scope="session")
def carnet(
    chromium_executable: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedCarnet]:
    """Carnet on a fresh SQLite database, demo off, served at http://localhost:<port>."""
    with serve_carnet(
        tmp_path_factory, name="browser-passkeys", host="localhost", demo_idp=False
    ) as run:
        cast = seed_cast(run.settings)
        yield ServedCarnet(run.url, run.settings, cast, OneTimeCodes(), run.server, run.log)
