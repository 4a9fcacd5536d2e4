"""The requests of each workload, as the IHE actors send them.

- ``publish``: a laboratory's feeding system (ITI-65), one 50 KB PDF per bundle, the patient
  named by national identifier, as a feed does;
- ``find``: a general practitioner lists one of their patients' documents (ITI-67, first page);
- ``everything``: the same doctor lists every document of one of the patients with the most
  documents (ITI-67 with ``_count=1000``: up to 1,000 in one answer);
- ``read``: the same doctor reads one DocumentReference;
- ``retrieve``: the same doctor retrieves one 50 KB PDF (ITI-68);
- ``search``: the same doctor identifies one patient by national identifier (PDQm, ITI-78);
- ``xds-find``: the same doctor's find over XDS.b (ITI-18 FindDocuments, SOAP 1.2): every
  Approved document of the patient in one answer (XDS has no paging), beside ``find``;
- ``xds-publish``: the laboratory's system publishing over XDS.b (ITI-41, the same 50 KB PDF in
  MTOM), beside ``publish``;
- ``xds-retrieve``: the same doctor retrieving one 50 KB PDF over XDS.b (ITI-43, MTOM), beside
  ``retrieve`` (requests: ``bench/national/xds.py``);
- ``mixed``: 80 % find, 15 % retrieve, 5 % publish.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bench.national import xds
from bench.national.client import Request, make_request
from bench.national.content import PDF, Templates
from bench.national.population import Population, Target
from carnet.fhir.ids import document_resource_id
from carnet.patients.identifiers import LU_MATRICULE

NAMES = (
    "publish",
    "xds-publish",
    "find",
    "xds-find",
    "everything",
    "read",
    "retrieve",
    "xds-retrieve",
    "search",
    "mixed",
)
# ITI-67's largest page, and the issue's "all documents of one patient (up to 1,000)".
EVERYTHING = 1000
FHIR_JSON = "application/fhir+json"
_SUBMISSION_SET = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
_SOURCE_ID = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"

Maker = Callable[[random.Random], Request]


@dataclass(frozen=True)
class Tokens:
    """Access tokens: one per general practitioner, one for the laboratory's system."""

    readers: list[str]
    feeder: str


def makers(population: Population, tokens: Tokens, templates: Templates) -> dict[str, Maker]:
    """A request maker per workload."""
    targets = population.targets
    with_documents = [target for target in targets if target.visible]
    with_pdfs = [target for target in targets if target.pdfs]
    if not with_documents or not with_pdfs:
        raise RuntimeError("The population has no reachable patient with documents: scale up.")
    serials = itertools.count(1)

    def token(target: Target) -> str:
        return tokens.readers[target.reader]

    def find(rng: random.Random) -> Request:
        target = with_documents[rng.randrange(len(with_documents))]
        path = f"/fhir/DocumentReference?patient=Patient/{target.patient_id}"
        return make_request("find", "GET", path, token=token(target), accept=FHIR_JSON)

    # The hundredth of reachable patients with the most documents the doctor may see.
    heaviest = sorted(with_documents, key=lambda target: len(target.visible), reverse=True)
    heaviest = heaviest[: max(1, len(heaviest) // 100)]

    def everything(rng: random.Random) -> Request:
        target = heaviest[rng.randrange(len(heaviest))]
        path = f"/fhir/DocumentReference?patient=Patient/{target.patient_id}&_count={EVERYTHING}"
        return make_request("everything", "GET", path, token=token(target), accept=FHIR_JSON)

    def read(rng: random.Random) -> Request:
        target = with_documents[rng.randrange(len(with_documents))]
        document = target.visible[rng.randrange(len(target.visible))]
        path = f"/fhir/DocumentReference/{document_resource_id(target.patient_id, document)}"
        return make_request("read", "GET", path, token=token(target), accept=FHIR_JSON)

    def retrieve(rng: random.Random) -> Request:
        target = with_pdfs[rng.randrange(len(with_pdfs))]
        document = target.pdfs[rng.randrange(len(target.pdfs))]
        path = f"/fhir/Binary/{document_resource_id(target.patient_id, document)}"
        return make_request("retrieve", "GET", path, token=token(target), accept=PDF)

    def search(rng: random.Random) -> Request:
        target = targets[rng.randrange(len(targets))]
        identifier = quote(f"{LU_MATRICULE}|{target.matricule}", safe="")
        path = f"/fhir/Patient?identifier={identifier}"
        return make_request("search", "GET", path, token=token(target), accept=FHIR_JSON)

    def publish(rng: random.Random) -> Request:
        target = targets[rng.randrange(len(targets))]
        body = provide_bundle(templates, next(serials), target.matricule)
        return make_request(
            "publish",
            "POST",
            "/fhir",
            token=tokens.feeder,
            body=body,
            content_type=FHIR_JSON,
            accept=FHIR_JSON,
        )

    def xds_find(rng: random.Random) -> Request:
        target = with_documents[rng.randrange(len(with_documents))]
        return make_request(
            "xds-find",
            "POST",
            "/xds/registry",
            token=token(target),
            body=xds.find_documents_envelope(target.matricule),
            content_type=xds.plain_content_type(xds.ITI18_ACTION),
            accept=xds.SOAP_XML,
        )

    def xds_publish(rng: random.Random) -> Request:
        target = targets[rng.randrange(len(targets))]
        body, content_type = xds.provide(templates.stamped_pdf(next(serials)), target.matricule)
        return make_request(
            "xds-publish",
            "POST",
            "/xds/repository",
            token=tokens.feeder,
            body=body,
            content_type=content_type,
            accept=xds.SOAP_XML,
        )

    def xds_retrieve(rng: random.Random) -> Request:
        target = with_pdfs[rng.randrange(len(with_pdfs))]
        body, content_type = xds.retrieve(target.pdfs[rng.randrange(len(target.pdfs))])
        return make_request(
            "xds-retrieve",
            "POST",
            "/xds/repository",
            token=token(target),
            body=body,
            content_type=content_type,
            accept=xds.SOAP_XML,
        )

    def mixed(rng: random.Random) -> Request:
        draw = rng.random()
        if draw < 0.80:
            return find(rng)
        if draw < 0.95:
            return retrieve(rng)
        return publish(rng)

    return {
        "publish": publish,
        "find": find,
        "xds-find": xds_find,
        "xds-publish": xds_publish,
        "xds-retrieve": xds_retrieve,
        "everything": everything,
        "read": read,
        "retrieve": retrieve,
        "search": search,
        "mixed": mixed,
    }


def acquaintances(population: Population, tokens: Tokens) -> list[Request]:
    """One find by each reachable patient's doctor: what a doctor who knows the patient did.

    A professional's first consultation of a dossier also tells the patient (a notice): sent
    before the measure, these make the workloads measure the doctor's usual consultation, not
    a first one.
    """
    return [
        make_request(
            "acquaintance",
            "GET",
            f"/fhir/DocumentReference?patient=Patient/{target.patient_id}",
            token=tokens.readers[target.reader],
            accept=FHIR_JSON,
        )
        for target in population.targets
    ]


def provide_bundle(templates: Templates, serial: int, matricule: str) -> bytes:
    """An ITI-65 transaction: a SubmissionSet, a DocumentReference and its 50 KB PDF Binary."""
    pdf = templates.stamped_pdf(serial)
    subject = {"reference": f"Patient?identifier={LU_MATRICULE}|{matricule}"}
    set_url, reference_url, binary_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
    now = moment.isoformat().replace("+00:00", "Z")
    created = (moment - dt.timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    submission: dict[str, Any] = {
        "resourceType": "List",
        "extension": [
            {"url": _SOURCE_ID, "valueIdentifier": {"value": "urn:oid:1.3.6.1.4.1.21367"}}
        ],
        "identifier": [{"use": "usual", "system": "urn:ietf:rfc:3986", "value": set_url}],
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": _SUBMISSION_SET, "code": "submissionset"}]},
        "subject": subject,
        "date": now,
        "entry": [{"item": {"reference": reference_url}}],
    }
    reference = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11502-2"}]},
        "subject": subject,
        "date": now,
        "content": [
            {
                "attachment": {
                    "contentType": PDF,
                    "language": "fr",
                    "size": len(pdf),
                    "hash": base64.b64encode(
                        hashlib.sha1(pdf, usedforsecurity=False).digest()
                    ).decode(),
                    "title": "Bilan sanguin",
                    "creation": created,
                    "url": binary_url,
                }
            }
        ],
    }
    binary = {"resourceType": "Binary", "contentType": PDF, "data": base64.b64encode(pdf).decode()}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": set_url,
                "resource": submission,
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": reference_url,
                "resource": reference,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": binary_url,
                "resource": binary,
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }
    return json.dumps(bundle).encode()


def check(kind: str, status: int, body: bytes, templates: Templates) -> str | None:
    """Why one answer of ``kind`` is not what the workload expects, or None if it is."""
    if status != 200:
        return f"{kind}: HTTP {status}: {body[:300]!r}"
    if kind.startswith("xds-"):
        return xds.check(kind, body, templates.by_mime[PDF])
    if kind == "retrieve":
        return _check_pdf(body, templates)
    resource = json.loads(body)
    expected = {
        "find": ("Bundle", "searchset"),
        "everything": ("Bundle", "searchset"),
        "search": ("Bundle", "searchset"),
        "publish": ("Bundle", "transaction-response"),
        "read": ("DocumentReference", None),
    }[kind]
    kind_of = resource.get("type") if expected[1] is not None else None
    if resource.get("resourceType") != expected[0] or kind_of != expected[1]:
        return f"{kind}: unexpected {resource.get('resourceType')} {kind_of}"
    if kind in ("find", "everything", "search") and not resource.get("entry"):
        return f"{kind}: an empty searchset (the policy refused, or nothing matched)"
    return None


def _check_pdf(body: bytes, templates: Templates) -> str | None:
    if not body.startswith(b"%PDF-") or len(body) != len(templates.by_mime[PDF]):
        return f"retrieve: not the {len(templates.by_mime[PDF])}-byte PDF ({len(body)} bytes)"
    return None
