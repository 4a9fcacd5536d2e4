"""The IHE MHD, ANS (France) and HL7 FHIR R4 example resources, posted to Carnet.

Each example is sent as its authors wrote it, only pointed at a patient Carnet knows (the
examples name patients of their own). Carnet accepts it and serves it back, or refuses it for a
reason named here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from conftest import DATASETS
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_professional
from factories.patients import make_patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


def _load(relative: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATASETS / relative).read_text(encoding="utf-8-sig"))
    return data


def _point_at(bundle: dict[str, Any], patient_id: uuid.UUID) -> dict[str, Any]:
    """The same bundle, about our patient; a Patient entry of the example is left out."""
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    for entry in entries:
        if "subject" in entry["resource"]:
            entry["resource"]["subject"] = {"reference": f"Patient/{patient_id}"}
    return {**bundle, "entry": entries}


@pytest.fixture
def carnet(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[tuple[Served, Actor, Actor]]:
    patient = make_patient(session, clock)
    author = professional_actor(make_professional(session, clock))
    with serve(session, store, clock, wrapper) as served:
        yield served, author, patient_actor(patient)


# (example, expected status, the field the refusal names, or None when accepted)
EXAMPLES = [
    ("ihe-iti-mhd/json/provide-bundle-with-fhir-document.json", 200, None),
    # The ANS example's attachment.hash is not the SHA-1 of its sample content (placeholder).
    (
        "ans-pdsm/json/draft-iti65__Bundle-bundle-exemple-comprehensiveprovidedocument-replace.json",
        422,
        "attachment.hash",
    ),
    # It replaces a document Carnet never received: the target is not in this dossier.
    ("ans-pdsm/json/draft-iti65__Bundle-Bundle-CRBio-Replace.json", 422, "relatesTo[0].target"),
]


@pytest.mark.parametrize(
    ("example", "status", "field"), EXAMPLES, ids=[e[0].split("/")[-1][:40] for e in EXAMPLES]
)
def test_provide_bundle_examples(
    carnet: tuple[Served, Actor, Actor],
    session: Session,
    clock: FrozenClock,
    example: str,
    status: int,
    field: str | None,
) -> None:
    served, author, patient = carnet
    assert patient.person_id is not None
    bundle = _point_at(_load(example), patient.person_id)
    response = served.client.post(
        "/fhir",
        json=bundle,
        headers={**FHIR_JSON, **bearer(served, session, author, clock, "user/DocumentReference.c")},
    )
    assert response.status_code == status, response.text
    if field is not None:
        assert response.json()["issue"][0]["expression"][0].endswith(field)
        return
    found = served.client.get(
        "/fhir/DocumentReference",
        params={"patient": f"Patient/{patient.person_id}"},
        headers=bearer(served, session, patient, clock, "patient/*.rs"),
    ).json()
    assert found["total"] == sum(
        1 for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"
    )
    served_back = found["entry"][0]["resource"]
    original = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    )
    assert served_back["masterIdentifier"]["value"] == original["masterIdentifier"]["value"]
    assert served_back["type"]["coding"][0]["code"] == original["type"]["coding"][0]["code"]


@pytest.mark.parametrize(
    "example",
    [
        "hl7-fhir-r4-examples/DocumentReference-example.json",
        "ans-pdsm/json/DocumentReference-exemple-pdsm-documentreference.json",
        "ans-pdsm/json/DocumentReference-PDSmSimplifiedExample.json",
    ],
)
def test_document_reference_examples_are_valid_fhir_but_need_their_content(
    carnet: tuple[Served, Actor, Actor], session: Session, clock: FrozenClock, example: str
) -> None:
    """A lone DocumentReference pointing at content elsewhere cannot be published: Carnet keeps
    the content itself. Wrapped in an ITI-65 bundle without it, it is refused for that reason."""
    served, author, patient = carnet
    assert patient.person_id is not None
    reference = _load(example)
    reference["subject"] = {"reference": f"Patient/{patient.person_id}"}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:1",
                "resource": {
                    "resourceType": "List",
                    "status": "current",
                    "mode": "working",
                    "code": {"coding": [{"code": "submissionset"}]},
                    "subject": {"reference": f"Patient/{patient.person_id}"},
                },
            },
            {"fullUrl": "urn:uuid:2", "resource": reference},
        ],
    }
    response = served.client.post(
        "/fhir",
        json=bundle,
        headers={**FHIR_JSON, **bearer(served, session, author, clock, "user/DocumentReference.c")},
    )
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"][0].endswith(
        ("attachment.url", "attachment.data", "content", "attachment.hash")
    )
