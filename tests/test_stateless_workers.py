"""Two Carnet processes on different ports serve the same data, as behind a load balancer.

Nothing a request needs lives in one process: signing keys, revocations, codes and refresh
tokens are in the database; browser sessions are sealed under the shared master key. So a
sign-in started on one node finishes on the other, a token from one is honoured by the other,
and a revocation on one is seen at once by the other.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pyotp
import pytest

from carnet.auth import accounts, clients
from carnet.clock import SystemClock
from carnet.db import unit_of_work
from carnet.platform import build_platform
from carnet.settings import Settings
from conftest import postgres_unreachable, throwaway_postgres
from factories.patients import make_matricule, make_patient

CARNET = [sys.executable, "-m", "carnet"]
PASSWORD = "stateless workers share everything"
REDIRECT_URI = "http://127.0.0.1:1/callback"  # never followed: the test reads the Location
# Each node rereads the revocation list after this many seconds (production: 2).
REVOCATION_REFRESH = 1.0
_TICKET = re.compile(r'name="ticket" value="([^"]+)"')
_CONSENT = re.compile(r'name="consent" value="([^"]+)"')

pytestmark = pytest.mark.skipif(
    postgres_unreachable() is not None, reason="two nodes need a shared PostgreSQL"
)


class Node:
    """One ``carnet serve`` process."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [*CARNET, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read().decode() if self.process.stdout else ""
                raise AssertionError(f"node {self.url} exited: {output}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise AssertionError(f"node {self.url} did not answer /health within 30 s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Cluster:
    """Two nodes behind an imaginary load balancer at node A's address, and a patient."""

    def __init__(self, a: Node, b: Node, matricule: str, totp: pyotp.TOTP, client_id: str) -> None:
        self.a, self.b = a, b
        self.matricule, self.client_id = matricule, client_id
        self.codes = OneTimeCodes(totp)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    var = tmp_path_factory.mktemp("cluster")
    port_a, port_b = _free_port(), _free_port()
    with throwaway_postgres() as url:
        env = {
            **os.environ,
            "CARNET_VAR_DIR": str(var),
            "CARNET_DATABASE_URL": url,
            # One public address for both: the load balancer's (here, node A's).
            "CARNET_PUBLIC_URL": f"http://127.0.0.1:{port_a}",
            "CARNET_JOBS_INTERVAL_SECONDS": "0",
            "CARNET_REVOCATION_REFRESH_SECONDS": str(REVOCATION_REFRESH),
        }
        subprocess.run([*CARNET, "db", "upgrade"], env=env, check=True, capture_output=True)
        matricule, secret, client_id = _seed(env)
        a, b = Node(env, port_a), Node(env, port_b)
        try:
            a.wait()
            b.wait()
            yield Cluster(a, b, matricule, pyotp.TOTP(secret), client_id)
        finally:
            a.stop()
            b.stop()


def _seed(env: dict[str, str]) -> tuple[str, str, str]:
    settings = Settings(
        var_dir=Path(env["CARNET_VAR_DIR"]),
        database_url=env["CARNET_DATABASE_URL"],
        public_url=env["CARNET_PUBLIC_URL"],
    )
    platform = build_platform(settings)
    try:
        assert platform.key_wrapper is not None
        with unit_of_work(platform.sessions) as session:
            clock = SystemClock()
            matricule = make_matricule()
            patient = make_patient(session, clock, matricule=matricule)
            secret = accounts.create_patient_account(
                session,
                patient_id=patient.id,
                password=PASSWORD,
                key_wrapper=platform.key_wrapper,
                clock=clock,
            )
            client = clients.register_public_client(
                session,
                name="Mobile app",
                redirect_uris=[REDIRECT_URI],
                allowed_scopes="openid fhirUser offline_access patient/*.rs",
                clock=clock,
                client_id="stateless-app",
            )
            return matricule, secret, client.client_id
    finally:
        platform.close()


class OneTimeCodes:
    """Codes for successive sign-ins of one account: each accepted step must be newer than the
    last, and Carnet accepts one step either side of now; so use the oldest step still accepted
    rather than wait for a new one."""

    def __init__(self, totp: pyotp.TOTP) -> None:
        self.totp = totp
        self.last_step: int | None = None

    def next(self) -> str:
        while True:
            current = int(time.time()) // 30
            step = current - 1 if self.last_step is None else max(self.last_step + 1, current - 1)
            if step <= current + 1:
                self.last_step = step
                return str(self.totp.at(step * 30))
            time.sleep(0.5)


def _sign_in(browser: httpx.Client, authorize_url: str, cluster: Cluster) -> str:
    """Fill Carnet's sign-in page at ``authorize_url``; the Location it redirects to."""
    page = browser.get(authorize_url)
    assert page.status_code == 200, page.text
    ticket = _TICKET.search(page.text)
    assert ticket is not None
    answer = browser.post(
        f"{cluster.a.url}/oauth/authorize",
        data={
            "ticket": ticket.group(1),
            "method": "patient",
            "identifier": cluster.matricule,
            "password": PASSWORD,
            "otp": cluster.codes.next(),
        },
    )
    consent = _CONSENT.search(answer.text) if answer.status_code == 200 else None
    if consent is not None:
        # A third-party app: its consent screen, approved (carnet.oauth.consent).
        answer = browser.post(
            f"{cluster.a.url}/oauth/authorize/consent",
            data={"consent": consent.group(1), "decision": "approve"},
        )
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_a_token_from_one_node_works_on_the_other_and_dies_on_both(cluster: Cluster) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    with httpx.Client(follow_redirects=False) as browser:
        query = httpx.QueryParams(
            response_type="code",
            client_id=cluster.client_id,
            redirect_uri=REDIRECT_URI,
            scope="openid fhirUser offline_access patient/*.rs",
            state="s1",
            code_challenge=challenge.rstrip(b"=").decode(),
            code_challenge_method="S256",
        )
        location = _sign_in(browser, f"{cluster.a.url}/oauth/authorize?{query}", cluster)
    code = parse_qs(urlsplit(location).query)["code"][0]
    # Signed in on A, code redeemed on B.
    tokens = httpx.post(
        f"{cluster.b.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": cluster.client_id,
            "code_verifier": verifier,
        },
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    patient = tokens["patient"]
    for node in (cluster.a, cluster.b):
        found = httpx.get(
            f"{node.url}/fhir/DocumentReference", params={"patient": patient}, headers=bearer
        )
        assert found.status_code == 200, found.text
    # The refresh token rotates on A; its spent predecessor is refused on B.
    refreshed = httpx.post(
        f"{cluster.a.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": cluster.client_id,
        },
    )
    assert refreshed.status_code == 200
    replayed = httpx.post(
        f"{cluster.b.url}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": cluster.client_id,
        },
    )
    assert replayed.status_code == 400
    # Revoked on B: refused at once on B, and on A once A's revocation list is reloaded.
    revoked = httpx.post(
        f"{cluster.b.url}/oauth/revoke",
        data={"token": tokens["access_token"], "client_id": cluster.client_id},
    )
    assert revoked.status_code == 200
    deadline = time.monotonic() + REVOCATION_REFRESH
    on_b = httpx.get(
        f"{cluster.b.url}/fhir/DocumentReference", params={"patient": patient}, headers=bearer
    )
    assert on_b.status_code == 401
    time.sleep(max(0.0, deadline - time.monotonic()))
    on_a = httpx.get(
        f"{cluster.a.url}/fhir/DocumentReference", params={"patient": patient}, headers=bearer
    )
    assert on_a.status_code == 401


def test_a_portal_session_opened_on_one_node_is_served_by_the_other(cluster: Cluster) -> None:
    with httpx.Client(follow_redirects=False) as browser:
        start = browser.get(f"{cluster.a.url}/portal/sign-in")
        assert start.status_code == 303
        location = _sign_in(browser, start.headers["location"], cluster)
        landed = browser.get(location)  # the portal's callback, on A
        assert landed.status_code == 303, landed.text
        home_on_a = browser.get(f"{cluster.a.url}/portal/patient")
        # Cookies belong to the host, not the port: the same browser session reaches B.
        home_on_b = browser.get(f"{cluster.b.url}/portal/patient")
    assert home_on_a.status_code == 200, home_on_a.text
    assert home_on_b.status_code == 200, home_on_b.text
