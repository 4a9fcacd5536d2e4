"""A Carnet as a deployment runs it, for the onboarding journeys: demo off, nobody seeded.

Served on ``http://localhost:<port>`` (WebAuthn refuses an IP address as relying party id;
``localhost`` is a secure context over plain HTTP) with ``CARNET_DEMO_IDP=false``. Unlike the
other journeys' Carnet, no cast is seeded and no account exists: the people come in through
``carnet enrol`` and ``carnet professionals invite``, as in production. This ``carnet``
overrides the parent's for the tests of this folder only.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from browser.cast import Cast, OneTimeCodes
from browser.conftest import ServedCarnet, serve_carnet


@dataclass
class ProductionCarnet(ServedCarnet):
    """The served Carnet and the environment its own commands run with (``carnet …``)."""

    env: dict[str, str] = field(default_factory=dict)

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        """``carnet <arguments>`` against this Carnet; fails the test if it fails."""
        done = subprocess.run(
            [sys.executable, "-m", "carnet", *arguments],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"carnet {' '.join(arguments)} failed:\n{done.stderr}"
        return done


@pytest.fixture(scope="session")
def carnet(
    chromium_executable: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProductionCarnet]:
    """Carnet on a fresh, empty SQLite database, demo off, served at http://localhost:<port>."""
    with serve_carnet(
        tmp_path_factory, name="browser-production", host="localhost", demo_idp=False
    ) as run:
        # No cast: the journeys bring their people in themselves.
        yield ProductionCarnet(
            run.url,
            run.settings,
            cast(Cast, None),
            OneTimeCodes(),
            run.server,
            run.log,
            env=run.env,
        )
