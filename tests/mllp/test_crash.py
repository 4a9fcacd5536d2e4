"""kill -9 amid a laboratory's traffic: an AA means stored, once; nothing is ever half-stored.

A real ``carnet mllp serve`` process, four laboratory connections sending 250 ORU^R01 each, and
SIGKILL once about a third of the thousand messages were acknowledged. Then, before anything is
sent again: every message that got an AA is stored exactly once (its remembered control id, its
report document, its two results and the document's audit event), and every message without an
AA is either wholly stored (committed, its ACK lost with the process) or not at all. A second
server then receives everything again: every message is answered AA, and nothing is stored
twice.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from carnet.audit.models import AuditEvent
from carnet.clock import SystemClock
from carnet.db import unit_of_work
from carnet.documents.models import Document
from carnet.feeds.models import FeedMessage
from carnet.laboratory.models import LabResult
from carnet.platform import Platform, build_platform
from carnet.settings import Settings
from factories.directory import make_organisation
from factories.patients import make_patient
from laboratory.sending import lead_report, matricule_of, register_lab
from mllp.wire import exchange

SENDERS = 4
PER_SENDER = 250
KILL_AFTER = 350  # acknowledged messages, across the senders, before the server is killed
PATIENTS = 20


@dataclass
class Traffic:
    """What each message got: its ACK code (AA, AE, AR) or nothing."""

    answers: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    accepted: int = 0

    def note(self, control_id: str, code: str) -> None:
        with self.lock:
            self.answers[control_id] = code
            if code == "AA":
                self.accepted += 1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def platform(committing_engine: Engine, tmp_path: Path) -> Iterator[Platform]:
    """The server's platform (same database, keys and store), for setting up and checking."""
    settings = Settings(
        var_dir=tmp_path / "var",
        database_url=committing_engine.url.render_as_string(hide_password=False),
    )
    built = build_platform(settings, clock=SystemClock())
    yield built
    built.close()


def _server(platform: Platform, port: int, log: Path) -> subprocess.Popen[bytes]:
    settings = platform.settings
    env = {
        **os.environ,
        "CARNET_VAR_DIR": str(settings.var_dir),
        "CARNET_DATABASE_URL": settings.effective_database_url,
        "CARNET_DATABASE_POOL_SIZE": "8",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "carnet", "mllp", "serve", "--port", str(port)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError(f"the listener did not start: {log.read_text()}")


def _ack_code(ack: bytes, control_id: str) -> str:
    msa = next(line for line in ack.decode().split("\r") if line.startswith("MSA|"))
    fields = msa.split("|")
    assert fields[2] == control_id, ack
    return fields[1]


def _send_all(port: int, messages: list[tuple[str, str]], traffic: Traffic) -> None:
    """Send ``messages`` in order on one connection; stop at the first connection fault."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            for control_id, text in messages:
                ack = exchange(connection, text.encode())
                if ack is None:
                    return
                traffic.note(control_id, _ack_code(ack, control_id))
    except OSError:
        return  # the server was killed: the rest got no answer


def _run_senders(port: int, batches: list[list[tuple[str, str]]], traffic: Traffic) -> None:
    threads = [threading.Thread(target=_send_all, args=(port, batch, traffic)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)


def _stored(platform: Platform) -> dict[str, tuple[list[uuid.UUID], int, bool]]:
    """Per remembered control id: its documents, their results, whether each is audited."""
    with unit_of_work(platform.sessions) as session:
        remembered = {
            row.control_id: [uuid.UUID(value) for value in json.loads(row.document_ids)]
            for row in session.scalars(select(FeedMessage))
        }
        documents = set(session.scalars(select(Document.id)))
        results: dict[uuid.UUID, int] = {}
        for document_id in session.scalars(select(LabResult.document_id)):
            results[document_id] = results.get(document_id, 0) + 1
        audited: set[uuid.UUID] = set()
        for entity_ids in session.scalars(
            select(AuditEvent.entity_ids).where(AuditEvent.patient_id.is_not(None))
        ):
            audited.update(uuid.UUID(value) for value in json.loads(entity_ids or "[]"))
    named = [document for ids in remembered.values() for document in ids]
    # Half-stored, whatever the message: a document no remembered message names, or named twice.
    assert sorted(map(str, named)) == sorted(map(str, documents)), "orphan or shared documents"
    return {
        control_id: (
            ids,
            sum(results.get(document, 0) for document in ids),
            all(document in audited for document in ids),
        )
        for control_id, ids in remembered.items()
    }


def test_kill_9_mid_traffic_loses_no_acknowledged_message_and_stores_none_twice(
    platform: Platform, tmp_path: Path
) -> None:
    with unit_of_work(platform.sessions) as session:
        clock = platform.clock
        patients = [matricule_of(make_patient(session, clock)) for _ in range(PATIENTS)]
        register_lab(session, clock, make_organisation(session, clock), "Central Lab")
    messages = [
        (
            f"CRASH-{number}",
            lead_report(patients[number % PATIENTS], control=f"CRASH-{number}", order=f"C{number}"),
        )
        for number in range(SENDERS * PER_SENDER)
    ]
    batches = [messages[sender::SENDERS] for sender in range(SENDERS)]
    log = tmp_path / "listener.log"

    # Phase 1: traffic, and SIGKILL once KILL_AFTER messages were acknowledged.
    port = _free_port()
    server = _server(platform, port, log)
    first = Traffic()
    killer = threading.Thread(target=_kill_when, args=(server, first, KILL_AFTER))
    killer.start()
    _run_senders(port, batches, first)
    killer.join(60)
    assert server.wait(10) == -9, "the server was not killed mid-traffic"
    acknowledged = {control for control, code in first.answers.items() if code == "AA"}
    assert KILL_AFTER <= len(acknowledged) < len(messages), first.answers
    # AR (error 207: "could not store it now, send again") is a legitimate answer under load.
    assert set(first.answers.values()) <= {"AA", "AR"}, log.read_text()

    stored = _stored(platform)
    for control_id in acknowledged:
        documents, results, audited = stored[control_id]
        assert len(documents) == 1, control_id
        assert results == 2, control_id
        assert audited, control_id
    unanswered = {control for control, _ in messages} - first.answers.keys()
    for control_id in unanswered & stored.keys():
        # Committed, its ACK lost with the process: wholly there.
        documents, results, audited = stored[control_id]
        assert (len(documents), results, audited) == (1, 2, True), control_id
    rejected = {control for control, code in first.answers.items() if code == "AR"}
    assert not rejected & stored.keys(), "a message answered AR stored something"

    # Phase 2: a new server; every laboratory sends everything again (and, as a laboratory
    # would, again what was not answered AA, twice at most).
    port = _free_port()
    server = _server(platform, port, log)
    second = Traffic()
    try:
        for _round in range(3):
            _run_senders(
                port,
                [
                    [sent for sent in batch if second.answers.get(sent[0]) != "AA"]
                    for batch in batches
                ],
                second,
            )
    finally:
        server.terminate()
        server.wait(30)
    assert len(second.answers) == len(messages)
    assert set(second.answers.values()) == {"AA"}, log.read_text()
    stored = _stored(platform)
    assert stored.keys() == {control for control, _ in messages}
    assert all(
        (len(documents), results, audited) == (1, 2, True)
        for documents, results, audited in stored.values()
    )


def _kill_when(server: subprocess.Popen[bytes], traffic: Traffic, accepted: int) -> None:
    deadline = time.monotonic() + 60
    while traffic.accepted < accepted and time.monotonic() < deadline:
        time.sleep(0.005)
    server.kill()
