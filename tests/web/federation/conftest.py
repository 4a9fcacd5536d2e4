"""A real OpenID Connect provider on loopback (``oidc-provider`` from npm), and Carnet as its RP.

The provider is installed once per run (``npm ci`` into this folder's ignored ``node_modules``)
and started once per session; it knows a fixed patient and professional, whose identifiers the
tests give to Carnet's patient and directory rows. Without npm the tests are skipped, unless
``CI`` is set: there, a missing provider is a failure.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.oauth.federation import CALLBACK_PATH
from carnet.patients import identifiers
from carnet.settings import ExternalIssuer
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.auth import PUBLIC_URL, Served, serve

HERE = Path(__file__).parent
# Fixed people, known to the provider; each test creates the Carnet rows they match.
PATIENT_MATRICULE = identifiers.lu_matricule(dt.date(1975, 3, 2), 777)
PROFESSIONAL_RPPS = identifiers.fr_rpps(990_001)
UNKNOWN_MATRICULE = identifiers.lu_matricule(dt.date(1975, 3, 2), 778)
PATIENT_SECRET = "a-client-secret-for-tests-only"
ACCOUNTS = {
    "patient-high": {"claims": {"matricule": PATIENT_MATRICULE}, "acr": "eidas3", "amr": ["sc"]},
    "patient-low": {"claims": {"matricule": PATIENT_MATRICULE}, "acr": "eidas1", "amr": ["pwd"]},
    "patient-unknown": {"claims": {"matricule": UNKNOWN_MATRICULE}, "acr": "eidas3", "amr": []},
    "professional-card": {
        "claims": {"rpps": PROFESSIONAL_RPPS},
        "acr": "https://psc.example/acr/card",
        "amr": ["sc", "pin"],
    },
}
ID_TOKEN_TTL = 60


@dataclass(frozen=True)
class OpenIdProvider:
    """The running provider and what Carnet needs to be its client."""

    issuer: str
    professional_key: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _install() -> None:
    """``npm ci`` once (a lock keeps parallel workers from installing twice)."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed for the federation tests")
        pytest.skip("node/npm not installed: no OpenID provider to test federated sign-in")
    with (HERE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                check=True,
                timeout=300,
            )


@pytest.fixture(scope="session")
def openid_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIdProvider]:
    """``op.mjs`` on a free loopback port, with Carnet's two clients registered."""
    _install()
    key = ECKey.generate_key("P-256", private=True)
    key_path = tmp_path_factory.mktemp("federation") / "carnet-client.pem"
    key_path.write_bytes(key.as_pem(private=True))
    public = {**key.as_dict(private=False), "kid": key.thumbprint(), "use": "sig", "alg": "ES256"}
    redirect_uri = f"{PUBLIC_URL}{CALLBACK_PATH}"
    clients = [
        {
            "client_id": "carnet-patients",
            "client_secret": PATIENT_SECRET,
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": [redirect_uri],
        },
        {
            "client_id": "carnet-professionals",
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": {"keys": [public]},
            "redirect_uris": [redirect_uri],
        },
    ]
    log_path = key_path.parent / "op.log"
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [shutil.which("node") or "node", str(HERE / "op.mjs")],
        cwd=HERE,
        env={
            **os.environ,
            "OP_PORT": str(port),
            "OP_CLIENTS": json.dumps(clients),
            "OP_ACCOUNTS": json.dumps(ACCOUNTS),
            "OP_ID_TOKEN_TTL": str(ID_TOKEN_TTL),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    f"{issuer}/.well-known/openid-configuration", timeout=1
                ):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = log_path.read_text(errors="replace")
                    pytest.fail(f"the OpenID provider did not start: {output}")
                time.sleep(0.1)
        yield OpenIdProvider(issuer=issuer, professional_key=key_path)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


class LiveClock(FrozenClock):
    """The real time, plus what the test advanced it by: the provider's tokens are real-time."""

    def __init__(self) -> None:
        super().__init__(dt.datetime.now(dt.UTC))
        self.offset = dt.timedelta()

    def now(self) -> dt.datetime:
        """Now, moved by ``advance``."""
        return dt.datetime.now(dt.UTC) + self.offset

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self.offset += delta


@pytest.fixture
def clock() -> LiveClock:
    """Carnet's clock follows the provider's (real) one."""
    return LiveClock()


def providers(op: OpenIdProvider, **patient_overrides: Any) -> list[ExternalIssuer]:
    """A FranceConnect+-like patients' provider and a Pro Santé Connect-like one, at ``op``."""
    common = {"issuer": op.issuer, "jwks_url": f"{op.issuer}/jwks", "algorithms": ["RS256"]}
    patient: dict[str, Any] = {
        **common,
        "name": "eid",
        "display_name": {"en": "National eID", "fr": "eID nationale", "de": "Nationale eID"},
        "actor_kind": "patient",
        "identifier_claim": "matricule",
        "identifier_system": identifiers.LU_MATRICULE,
        "client_id": "carnet-patients",
        "client_secret": PATIENT_SECRET,
        "scopes": ["openid", "carnet"],
        "acr_values": ["eidas3"],
        "assurance_levels": {"eidas1": "low", "eidas2": "substantial", "eidas3": "high"},
        "minimum_assurance": "high",
        **patient_overrides,
    }
    professional = {
        **common,
        "name": "psc",
        "display_name": {"en": "Pro Santé Connect"},
        "actor_kind": "professional",
        "identifier_claim": "rpps",
        "identifier_system": identifiers.FR_RPPS,
        "client_id": "carnet-professionals",
        "client_auth": "private_key_jwt",
        "client_key_path": str(op.professional_key),
        "scopes": ["openid", "carnet"],
        "assurance_levels": {"https://psc.example/acr/card": "high"},
        "minimum_assurance": "high",
    }
    return [ExternalIssuer.model_validate(patient), ExternalIssuer.model_validate(professional)]


@pytest.fixture
def federated(
    session: Session,
    store: FilesystemDocumentStore,
    clock: LiveClock,
    wrapper: MasterKeyWrapper,
    openid_provider: OpenIdProvider,
) -> Iterator[Served]:
    """Carnet without the demo, signing people in through the provider."""
    with serve(
        session,
        store,
        clock,
        wrapper,
        demo_idp=False,
        external_issuers=providers(openid_provider),
    ) as served:
        yield served
