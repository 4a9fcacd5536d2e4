"""A Carnet as a deployment runs it, for the onboarding journeys: demo off, nobody seeded.

Served on ``http://localhost:<port>`` (WebAuthn refuses an IP address as relying party id;
``localhost`` is a secure context over plain HTTP) with ``CARNET_DEMO_IDP=false``. Unlike the
other journeys' Carnet, no cast is seeded and no account exists: the people come in through
``carnet enrol`` and ``carnet professionals invite``, as in production. This ``carnet``
overrides the parent's for the tests of this folder only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from browser.cast import Cast, OneTimeCodes
from browser.conftest import ARTIFACTS, ServedCarnet, _free_port
from carnet.settings import Settings


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
    var_dir = tmp_path_factory.mktemp("browser-production-var")
    port = _free_port()
    url = f"http://localhost:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("CARNET_")}
    env.update(
        {
            "CARNET_VAR_DIR": str(var_dir),
            "CARNET_DATABASE_URL": f"sqlite:///{var_dir / 'carnet.db'}",
            "CARNET_PUBLIC_URL": url,
            "CARNET_PORT": str(port),
            "CARNET_JOBS_INTERVAL_SECONDS": "0",
            "CARNET_DEMO_IDP": "false",
        }
    )
    upgraded = subprocess.run(
        [sys.executable, "-m", "carnet", "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert upgraded.returncode == 0, f"carnet db upgrade failed:\n{upgraded.stderr}"
    settings = Settings(
        var_dir=var_dir,
        database_url=env["CARNET_DATABASE_URL"],
        public_url=url,
        port=port,
        jobs_interval_seconds=0,
        demo_idp=False,
    )
    log = var_dir / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "carnet", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            # No cast: the journeys bring their people in themselves.
            yield ProductionCarnet(
                url, settings, cast(Cast, None), OneTimeCodes(), server, log, env=env
            )
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, ARTIFACTS / "browser-production-server.log")
