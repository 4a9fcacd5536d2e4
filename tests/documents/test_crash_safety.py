"""kill -9 during publication: no acknowledged document is lost, and the sweeper leaves no orphan.

A real ``carnet serve`` (its own process group) takes concurrent ITI-65 publications
(https://profiles.ihe.net/ITI/MHD/ITI-65.html) from several clients and is killed with SIGKILL
in the middle of them, three times, then restarted. Some publications are refused after their
content was stored (a Bundle whose second document reuses a committed master identifier), and
others are cut off by the kill between their put and their commit: both leave objects no row
references. Afterwards:

- every publication answered 2xx is in the database and its content reads back intact;
- ``carnet store sweep --grace-seconds 0`` (the server stopped, so nothing is in flight)
  leaves zero unreferenced objects, and every committed document's content still reads back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import select

from carnet.clock import SystemClock
from carnet.db import unit_of_work
from carnet.documents.internal import store_references
from carnet.documents.models import Document
from carnet.platform import Platform, build_platform
from carnet.settings import Settings
from conftest import throwaway_postgres
from factories.directory import make_organisation
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient

CARNET = [sys.executable, "-m", "carnet"]
CRASHES = 3
CLIENTS = 4
PUBLICATIONS_PER_LIFE = 32  # each life is cut after KILL_AFTER answers, but the last
KILL_AFTER = 20  # so about a hundred publications in all
FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Outcome:
    master_identifier: str
    content: bytes
    status: int | None  # None: no answer (the server died under it)
    answer: str = ""


class Server:
    """``carnet serve`` in its own process group, so SIGKILL takes every process of it."""

    def __init__(self, env: dict[str, str]) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.up = threading.Event()  # clients stop publishing once they see the server down

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*CARNET, "serve", "--port", str(self.port), "--workers", "1"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "carnet serve exited at start"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    self.up.set()
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("carnet serve did not answer /health within 30 s")

    def kill(self) -> None:
        """SIGKILL to every process of the server: no handler, no flush, no goodbye."""
        self.up.clear()
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):  # already dead
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(params=["postgresql", "sqlite"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    base = {
        **os.environ,
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_JOBS_INTERVAL_SECONDS": "0",
    }
    if request.param == "sqlite":
        yield base
        return
    with throwaway_postgres() as url:
        yield {**base, "CARNET_DATABASE_URL": url}


def _platform(env: dict[str, str]) -> Platform:
    database_url = env.get("CARNET_DATABASE_URL", "")
    return build_platform(Settings(var_dir=Path(env["CARNET_VAR_DIR"]), database_url=database_url))


def _seed(env: dict[str, str]) -> tuple[str, str]:
    """A patient's matricule and a feeding system's token (minted by ``carnet token``)."""
    subprocess.run([*CARNET, "db", "upgrade"], env=env, check=True, capture_output=True)
    platform = _platform(env)
    try:
        with unit_of_work(platform.sessions) as session:
            matricule = make_matricule()
            make_patient(session, SystemClock(), matricule=matricule)
            organisation = make_organisation(session, SystemClock())
            system = f"system:{organisation.identifier_value}"
    finally:
        platform.close()
    minted = subprocess.run(
        [*CARNET, "token", "--as", system, "--scope", "system/DocumentReference.cru"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return matricule, minted.stdout.strip()


def _publish(server: Server, subject: str, token: str, count: int, outcomes: list[Outcome]) -> None:
    """Up to ``count`` single-document publications, one after the other, while the server is
    up; each outcome recorded (None: the server died before answering)."""
    headers = {**FHIR_JSON, "Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=20) as client:
        for _ in range(count):
            if not server.up.is_set():
                return
            master, content = f"urn:uuid:{uuid.uuid4()}", f"Bilan {uuid.uuid4()}".encode()
            bundle = provide_bundle(subject, contents=[content], master_identifiers=[master])
            try:
                response = client.post(f"{server.url}/fhir", json=bundle, headers=headers)
            except httpx.HTTPError:
                outcomes.append(Outcome(master, content, None))
                continue
            outcomes.append(Outcome(master, content, response.status_code, response.text[:300]))


def _refused(server: Server, subject: str, token: str, committed_master: str) -> int:
    """A Bundle whose first document is stored before its second is refused as a duplicate."""
    bundle = provide_bundle(
        subject,
        contents=[f"Refuse {uuid.uuid4()}".encode(), b"doublon"],
        master_identifiers=[f"urn:uuid:{uuid.uuid4()}", committed_master],
    )
    headers = {**FHIR_JSON, "Authorization": f"Bearer {token}"}
    return httpx.post(f"{server.url}/fhir", json=bundle, headers=headers, timeout=20).status_code


def _crash_repeatedly(
    server: Server, subject: str, token: str, outcomes: list[Outcome], refusals: list[int]
) -> None:
    """Serve, publish from several clients at once, kill -9 mid-flight; CRASHES times over."""
    for life in range(CRASHES + 1):
        server.start()
        if life > 0:  # a refusal after the put, in every life but the first
            acknowledged = next((o for o in outcomes if o.status == 200), None)
            assert acknowledged is not None, {o.answer for o in outcomes}
            refusals.append(_refused(server, subject, token, acknowledged.master_identifier))
        clients = [
            threading.Thread(
                target=_publish,
                args=(server, subject, token, PUBLICATIONS_PER_LIFE // CLIENTS + 1, outcomes),
            )
            for _ in range(CLIENTS)
        ]
        for client in clients:
            client.start()
        if life < CRASHES:
            # Kill while the clients are mid-flight: after a few answers, long before the end.
            before, deadline = len(outcomes), time.monotonic() + 10
            while len(outcomes) < before + KILL_AFTER and time.monotonic() < deadline:
                time.sleep(0.01)
            server.kill()
        for client in clients:
            client.join(timeout=60)


def test_kill_9_loses_no_acknowledged_document_and_the_sweeper_leaves_no_orphan(
    env: dict[str, str],
) -> None:
    started = time.monotonic()
    matricule, token = _seed(env)
    subject = by_identifier(matricule)
    server = Server(env)
    outcomes: list[Outcome] = []
    refusals: list[int] = []
    try:
        _crash_repeatedly(server, subject, token, outcomes, refusals)
    finally:
        server.kill()
    print(  # the figures, for whoever runs it with -s
        f"{len(outcomes)} publications, {sum(o.status == 200 for o in outcomes)} acknowledged, "
        f"{sum(o.status is None for o in outcomes)} cut off by {CRASHES} kills, "
        f"{len(refusals)} refused after their put"
    )

    answered = [o for o in outcomes if o.status == 200]
    cut_off = [o for o in outcomes if o.status is None]
    assert len(outcomes) >= 90
    assert len(answered) >= 50
    assert cut_off, "no publication was in flight at any kill: the test proved nothing"
    assert all(o.status in (200, None) for o in outcomes), {o.status for o in outcomes}
    assert refusals
    assert all(400 <= status < 500 for status in refusals), refusals

    platform = _platform(env)
    try:
        with unit_of_work(platform.sessions) as session:
            documents = {d.master_identifier: d for d in session.scalars(select(Document))}
            # 0 acknowledged documents lost: each is committed and its content reads back.
            for outcome in answered:
                document = documents[outcome.master_identifier]
                assert platform.store.get(document.content_key) == outcome.content
            keys = [listed.key for listed in platform.store.iter_objects()]
            orphans = set(keys) - store_references(session, keys)
        assert orphans, "no refused or cut-off publication left an object: nothing to sweep"

        swept = subprocess.run(
            [*CARNET, "store", "sweep", "--grace-seconds", "0"],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        assert f"{len(orphans)} unreferenced objects removed" in swept.stdout, swept.stdout

        with unit_of_work(platform.sessions) as session:
            keys = [listed.key for listed in platform.store.iter_objects()]
            assert set(keys) == store_references(session, keys)  # 0 unreferenced objects
            for document in session.scalars(select(Document)):
                assert platform.store.get(document.content_key)
            assert len(keys) == len({d.content_key for d in documents.values()})
    finally:
        platform.close()
    assert time.monotonic() - started < 60
