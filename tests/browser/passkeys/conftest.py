"""A Carnet for the passkey journey: served on ``http://localhost:<port>``, demo off.

WebAuthn refuses an IP address as relying party id, so this Carnet is reached by host name
(``localhost`` is a secure context over plain HTTP, as WebAuthn requires) rather than on
``127.0.0.1`` like the other journeys'; and it runs with ``CARNET_DEMO_IDP=false``, as a real
deployment does. The cast is the same (seeded through the services, ``cast.py``). This
``carnet`` overrides the parent's for the tests of this folder only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.cast import OneTimeCodes, seed_cast
from browser.conftest import ARTIFACTS, ServedCarnet, _free_port
from carnet.settings import Settings


@pytest.fixture(scope="session")
def carnet(
    chromium_executable: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedCarnet]:
    """Carnet on a fresh SQLite database, demo off, served at http://localhost:<port>."""
    var_dir = tmp_path_factory.mktemp("browser-passkeys-var")
    port = _free_port()
    url = f"http://localhost:{port}"
    ours = {
        "CARNET_VAR_DIR": str(var_dir),
        "CARNET_DATABASE_URL": f"sqlite:///{var_dir / 'carnet.db'}",
        "CARNET_PUBLIC_URL": url,
        "CARNET_PORT": str(port),
        "CARNET_JOBS_INTERVAL_SECONDS": "0",
        "CARNET_DEMO_IDP": "false",
    }
    env = {name: value for name, value in os.environ.items() if not name.startswith("CARNET_")}
    env.update(ours)
    carnet_cli = [sys.executable, "-m", "carnet"]
    upgraded = subprocess.run(
        [*carnet_cli, "db", "upgrade"], env=env, capture_output=True, text=True, check=False
    )
    assert upgraded.returncode == 0, f"carnet db upgrade failed:\n{upgraded.stderr}"
    settings = Settings(
        var_dir=var_dir,
        database_url=ours["CARNET_DATABASE_URL"],
        public_url=url,
        port=port,
        jobs_interval_seconds=0,
        demo_idp=False,
    )
    log = var_dir / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*carnet_cli, "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            cast = seed_cast(settings)
            yield ServedCarnet(url, settings, cast, OneTimeCodes(), server, log)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, ARTIFACTS / "browser-passkeys-server.log")
