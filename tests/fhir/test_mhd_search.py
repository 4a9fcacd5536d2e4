"""ITI-67 search parameters, POST _search, ITI-66 lists, DocumentReference read/vread, metadata."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.clock import FrozenClock
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata, SubmissionSetMetadata
from carnet.documents.models import Confidentiality, Document
from carnet.fhir.ids import document_resource_id
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_professional
from factories.documents import PATIENT_SUMMARY, make_document
from factories.patients import make_patient


@dataclass
class World:
    served: Served
    session: Session
    clock: FrozenClock
    me: Actor
    docs: dict[str, Document]

    def get(self, path: str, params: Any = None, scope: str = "patient/*.rs") -> Any:
        return self.served.client.get(
            path,
            params=params,
            headers=bearer(self.served, self.session, self.me, self.clock, scope),
        )

    def ids(self, bundle: dict[str, Any]) -> set[str]:
        by_resource = {
            document_resource_id(d.patient_id, d.id): name for name, d in self.docs.items()
        }
        return {
            by_resource[e["resource"]["id"]]
            for e in bundle["entry"]
            if e["search"]["mode"] == "match"
        }


@pytest.fixture
def world(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[World]:
    patient = make_patient(session, clock)
    author = professional_actor(make_professional(session, clock, family="Kieffer"))
    other_author = professional_actor(make_professional(session, clock, family="Reuter"))
    me = patient_actor(patient)
    docs = {
        "lab": make_document(
            session,
            store,
            clock,
            actor=author,
            patient_id=patient.id,
            practice_setting="laboratory",
        ),
        "summary": make_document(
            session,
            store,
            clock,
            actor=other_author,
            patient_id=patient.id,
            type_system=PATIENT_SUMMARY[0],
            type_code=PATIENT_SUMMARY[1],
            confidentiality=Confidentiality.RESTRICTED,
            service_start=clock.now() - dt.timedelta(days=40),
            service_end=clock.now() - dt.timedelta(days=39),
        ),
    }
    clock.advance(dt.timedelta(days=2))
    docs["later"] = make_document(
        session, store, clock, actor=author, patient_id=patient.id, format_code="urn:ihe:lab"
    )
    with serve(session, store, clock, wrapper) as served:
        yield World(served, session, clock, me, docs)


def _search(world: World, **params: str) -> dict[str, Any]:
    response = world.get(
        "/fhir/DocumentReference", {"patient": f"Patient/{world.me.person_id}", **params}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"lab", "summary", "later"}),
        ({"type": "http://loinc.org|60591-5"}, {"summary"}),
        ({"category": "laboratory"}, {"lab", "later"}),
        ({"setting": "laboratory"}, {"lab"}),
        ({"security-label": "R"}, {"summary"}),
        ({"format": "urn:ihe:lab"}, {"later"}),
        ({"author.family": "kief"}, {"lab", "later"}),
        ({"author.given": "marc", "author.family": "reu"}, {"summary"}),
        ({"date": "ge2026-06-02"}, {"later"}),
        ({"date": "lt2026-06-02"}, {"lab", "summary"}),
        ({"period": "le2026-04-30"}, {"summary"}),
        ({"_lastUpdated": "gt2026-06-02"}, {"later"}),
        ({"status": "current,superseded"}, {"lab", "summary", "later"}),
        ({"status": "entered-in-error"}, set()),
    ],
)
def test_search_parameters(world: World, params: dict[str, str], expected: set[str]) -> None:
    bundle = _search(world, **params)
    assert world.ids(bundle) == expected
    assert bundle["total"] == len(expected)


def test_id_sort_and_post_search(world: World) -> None:
    lab_id = document_resource_id(world.docs["lab"].patient_id, world.docs["lab"].id)
    assert world.ids(_search(world, _id=lab_id)) == {"lab"}
    oldest = _search(world, _sort="date")
    assert [e["resource"]["id"] for e in oldest["entry"]][-1] == document_resource_id(
        world.docs["later"].patient_id, world.docs["later"].id
    )
    headers = {
        **bearer(world.served, world.session, world.me, world.clock, "patient/*.rs"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    posted = world.served.client.post(
        "/fhir/DocumentReference/_search",
        content=f"patient=Patient/{world.me.person_id}&type=60591-5",
        headers=headers,
    )
    assert posted.status_code == 200
    assert world.ids(posted.json()) == {"summary"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"foo": "bar"}, "foo"),
        ({"date": "someday"}, "date"),
        ({"_sort": "title"}, "_sort"),
        ({"security-label": "X"}, "security-label"),
    ],
)
def test_bad_search_parameters(world: World, params: dict[str, str], field: str) -> None:
    response = world.get(
        "/fhir/DocumentReference", {"patient": f"Patient/{world.me.person_id}", **params}
    )
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == [field]


def test_read_and_vread(world: World) -> None:
    document = world.docs["lab"]
    resource_id = document_resource_id(document.patient_id, document.id)
    read = world.get(f"/fhir/DocumentReference/{resource_id}")
    assert read.status_code == 200
    body = read.json()
    version = body["meta"]["versionId"]
    assert read.headers["etag"] == f'W/"{version}"'
    assert "last-modified" in read.headers
    assert (
        world.get(f"/fhir/DocumentReference/{resource_id}/_history/{version}").json()["id"]
        == resource_id
    )
    assert world.get(f"/fhir/DocumentReference/{resource_id}/_history/1").status_code == 404
    assert world.get("/fhir/DocumentReference/not-an-id").status_code == 404


def test_find_lists(
    world: World, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
) -> None:
    author = professional_actor(make_professional(session, clock, family="Lists"))
    assert world.me.person_id is not None
    submission, added = publication.submit(
        session,
        open_dossier(session, author, world.me.person_id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        store,
        submission_set=SubmissionSetMetadata(source_id="urn:oid:1.2.3"),
        documents=[
            (
                DocumentMetadata(
                    type_system="http://loinc.org",
                    type_code="11502-2",
                    title="x",
                    mime_type="text/plain",
                    created_at=clock.now(),
                ),
                b"x",
            )
        ],
    )
    bundle = world.get(
        "/fhir/List", {"patient": f"Patient/{world.me.person_id}", "code": "submissionset"}
    ).json()
    (entry,) = bundle["entry"]
    assert entry["resource"]["identifier"][0]["value"] == submission.master_identifier
    assert (
        entry["resource"]["entry"][0]["item"]["reference"]
        == f"DocumentReference/{document_resource_id(world.me.person_id, added[0].id)}"
    )
    assert (
        world.get(
            "/fhir/List", {"patient": f"Patient/{world.me.person_id}", "code": "folder"}
        ).status_code
        == 422
    )


def test_capability_statement_lists_exactly_what_is_served(world: World) -> None:
    response = world.served.client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = response.json()
    assert statement["fhirVersion"] == "4.0.1"
    resources = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {"DocumentReference", "Binary", "List", "AuditEvent"} <= set(resources)
    interactions = {i["code"] for i in resources["DocumentReference"]["interaction"]}
    # patch: the author marks their document entered-in-error (JSON Patch on its status).
    assert interactions == {"read", "vread", "search-type", "patch"}
    assert {p["name"] for p in resources["DocumentReference"]["searchParam"]} >= {
        "patient",
        "type",
        "date",
        "author.family",
    }
    assert statement["rest"][0]["interaction"] == [{"code": "transaction"}]
    # Every declared search-type has a route: asking it answers something other than 404/405.
    routes = set(world.served.client.get("/openapi.json").json()["paths"])
    for type_name, resource in resources.items():
        codes = {i["code"] for i in resource["interaction"]}
        if "search-type" in codes:
            assert f"/fhir/{type_name}" in routes, type_name
        if "read" in codes:
            assert any(path.startswith(f"/fhir/{type_name}/{{") for path in routes), type_name
