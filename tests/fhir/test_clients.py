"""Publish, find and retrieve with FHIR clients nobody here wrote: fhirpy and fhirclient.

Carnet runs as operators run it (``carnet serve`` in its own process, on a free port); tokens
come from ``carnet token`` (the demo identity provider); the clients speak HTTP to it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fhirclient import client as smart_client
from fhirclient.models.documentreference import DocumentReference as SmartDocumentReference
from fhirpy import SyncFHIRClient

from carnet import schema
from carnet.clock import SystemClock
from carnet.db import make_engine, session_factory, unit_of_work
from factories.directory import make_organisation
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient

CARNET = [sys.executable, "-m", "carnet"]


@dataclass
class Running:
    base: str
    env: dict[str, str]
    patient_id: str
    matricule: str
    lab: str

    def token(self, who: str, scope: str) -> str:
        result = subprocess.run(
            [*CARNET, "token", "--as", who, "--scope", scope],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def carnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    var = tmp_path_factory.mktemp("carnet-var")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CARNET_VAR_DIR": str(var),
        "CARNET_PUBLIC_URL": base,
        "CARNET_MASTER_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    engine = make_engine(f"sqlite:///{var / 'carnet.db'}")
    schema.upgrade(engine)
    clock = SystemClock()
    matricule = make_matricule()
    with unit_of_work(session_factory(engine)) as session:
        patient = make_patient(session, clock, matricule=matricule)
        lab = make_organisation(session, clock)
        running = Running(base, env, str(patient.id), matricule, lab.identifier_value)
    engine.dispose()
    server = subprocess.Popen(
        [*CARNET, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("carnet serve did not start") from None
                time.sleep(0.2)
        yield running
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)


def test_fhirpy_publishes_finds_and_retrieves(carnet: Running) -> None:
    lab_token = carnet.token(f"system:{carnet.lab}", "system/DocumentReference.c")
    feeder = SyncFHIRClient(f"{carnet.base}/fhir", authorization=f"Bearer {lab_token}")
    content = b"Glucose 5.1 mmol/L"
    response = feeder.execute(
        "", method="post", data=provide_bundle(by_identifier(carnet.matricule), contents=[content])
    )
    assert response["type"] == "transaction-response"
    patient = SyncFHIRClient(
        f"{carnet.base}/fhir",
        authorization=f"Bearer {carnet.token(f'patient:{carnet.matricule}', 'patient/*.rs')}",
    )
    found = (
        patient.resources("DocumentReference")
        .search(patient=f"Patient/{carnet.patient_id}")
        .fetch_all()
    )
    assert any(d["content"][0]["attachment"]["size"] == len(content) for d in found)
    url = found[0]["content"][0]["attachment"]["url"]
    assert patient.authorization is not None
    request = urllib.request.Request(url, headers={"Authorization": patient.authorization})
    with urllib.request.urlopen(request) as answer:
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.read() in {content, b"Hemoglobin 14.2 g/dL"}


def test_fhirclient_reads_what_carnet_serves(carnet: Running) -> None:
    token = carnet.token(f"system:{carnet.lab}", "system/DocumentReference.c")
    smart = smart_client.FHIRClient(
        settings={"app_id": "carnet-test", "api_base": f"{carnet.base}/fhir"}
    )
    smart.server.session.headers["Authorization"] = f"Bearer {token}"
    answer = smart.server.post_json(
        "", provide_bundle(by_identifier(carnet.matricule), contents=[b"TSH 1.9 mU/L"])
    )
    assert answer.json()["type"] == "transaction-response"
    smart.server.session.headers["Authorization"] = (
        f"Bearer {carnet.token(f'patient:{carnet.matricule}', 'patient/*.rs')}"
    )
    search = SmartDocumentReference.where(struct={"patient": f"Patient/{carnet.patient_id}"})
    references = list(search.perform_resources_iter(smart.server))
    assert references, "fhirclient found no document"
    # fhirclient's own R4 models parsed every resource Carnet answered.
    assert all(isinstance(r, SmartDocumentReference) for r in references)
    assert {r.status for r in references} == {"current"}
    binary_path = references[0].content[0].attachment.url.split("/fhir/", 1)[1]
    # fhirclient asks for application/fhir+json: Carnet answers a Binary resource.
    binary = json.loads(smart.server.request_data(binary_path))
    assert binary["resourceType"] == "Binary"
    assert base64.b64decode(binary["data"]) in {b"TSH 1.9 mU/L", b"Glucose 5.1 mmol/L"}
    capability = smart.server.request_json("metadata")
    assert capability["fhirVersion"] == "4.0.1"
    assert json.dumps(capability).count("DocumentReference") >= 1


def test_fhirpy_counts_subsets_and_finds_by_identifier_alone(carnet: Running) -> None:
    """Issue 21: what fhirpy sends for a count, a subset and a token without a system."""
    lab_token = carnet.token(f"system:{carnet.lab}", "system/DocumentReference.c")
    feeder = SyncFHIRClient(f"{carnet.base}/fhir", authorization=f"Bearer {lab_token}")
    feeder.execute(
        "", method="post", data=provide_bundle(by_identifier(carnet.matricule), contents=[b"CRP"])
    )
    token = carnet.token(f"patient:{carnet.matricule}", "patient/*.rs")
    patient = SyncFHIRClient(f"{carnet.base}/fhir", authorization=f"Bearer {token}")
    documents = patient.resources("DocumentReference").search(
        patient=f"Patient/{carnet.patient_id}"
    )

    counted = documents.search(_summary="count").fetch_raw()
    assert counted["total"] >= 1
    assert not counted.get("entry")
    assert documents.search(_total="accurate").fetch_raw()["total"] == counted["total"]

    subsets = documents.elements("type").fetch()
    assert subsets
    assert all("type" in d and "description" not in d for d in subsets)
    assert all("SUBSETTED" in [t["code"] for t in d["meta"]["tag"]] for d in subsets)

    # A token without a system: the matricule alone names the patient (PDQm) and their dossier.
    (me,) = patient.resources("Patient").search(identifier=carnet.matricule).fetch()
    assert me["id"] == carnet.patient_id
    by_identifier_alone = patient.resources("DocumentReference").search(
        **{"patient.identifier": carnet.matricule}
    )
    assert by_identifier_alone.fetch_raw()["total"] == counted["total"]
