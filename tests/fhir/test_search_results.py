"""The result parameters every search takes, and token search without a system (issue 21).

http://hl7.org/fhir/R4/search.html — ``_summary=count`` (search.html#summary: the total, no
entries), ``_total`` (search.html#total: ``none``, ``estimate``, ``accurate``), ``_elements``
(search.html#elements: the elements named, ``id`` and ``meta``, tagged ``SUBSETTED``), and a
token without a system (search.html#token: ``identifier=<value>`` matches in any system),
through ITI-67 (https://profiles.ihe.net/ITI/MHD/ITI-67.html), PDQm ITI-78
(https://profiles.ihe.net/ITI/PDQm/ITI-78.html), the directory and AuditEvent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.directory.models import Professional
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from factories.actors import patient_actor, professional_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient

SUBSETTED = "SUBSETTED"


@dataclass
class World:
    served: Served
    session: Session
    clock: FrozenClock
    patient: Patient
    colleagues: list[Professional]
    actors: dict[str, Actor]

    def get(self, who: str, path: str, **params: Any) -> Any:
        scope = "patient/*.rs" if who == "patient" else "user/*.rs"
        headers = bearer(self.served, self.session, self.actors[who], self.clock, scope)
        return self.served.client.get(path, params=params, headers=headers)

    def bundle(self, who: str, path: str, **params: Any) -> dict[str, Any]:
        response = self.get(who, path, **params)
        assert response.status_code == 200, response.text
        bundle: dict[str, Any] = response.json()
        Bundle.model_validate(bundle)
        return bundle

    def documents(self, **params: Any) -> dict[str, Any]:
        return self.bundle(
            "patient", "/fhir/DocumentReference", patient=f"Patient/{self.patient.id}", **params
        )

    @property
    def matricule(self) -> str:
        (identifier,) = self.patient.identifiers
        return identifier.value


@pytest.fixture
def world(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[World]:
    patient = make_patient(session, clock)
    lab = make_organisation(session, clock)
    for _ in range(3):
        make_document(session, store, clock, actor=system_actor(lab), patient_id=patient.id)
    colleagues = [make_professional(session, clock, family="Zimmer") for _ in range(3)]
    actors = {
        "patient": patient_actor(patient),
        "stranger": professional_actor(make_professional(session, clock, family="Fremd")),
    }
    with serve(session, store, clock, wrapper) as served:
        yield World(served, session, clock, patient, colleagues, actors)


class TestSummaryCount:
    def test_documents_are_counted_without_entries(self, world: World) -> None:
        bundle = world.documents(_summary="count")
        assert bundle["total"] == 3
        assert "entry" not in bundle
        assert [link["relation"] for link in bundle["link"]] == ["self"]

    def test_a_paged_directory_search_counts_every_match(self, world: World) -> None:
        bundle = world.bundle("stranger", "/fhir/Practitioner", family="Zimmer", _summary="count")
        assert bundle["total"] == 3
        assert "entry" not in bundle

    def test_patients_found_are_counted(self, world: World) -> None:
        bundle = world.bundle("patient", "/fhir/Patient", _summary="count")
        assert bundle["total"] == 1
        assert "entry" not in bundle

    def test_the_audit_trail_is_counted(self, world: World) -> None:
        world.documents()
        bundle = world.bundle(
            "patient", "/fhir/AuditEvent", patient=f"Patient/{world.patient.id}", _summary="count"
        )
        assert bundle["total"] >= 1
        assert "entry" not in bundle


class TestTotal:
    def test_none_leaves_the_total_out(self, world: World) -> None:
        bundle = world.documents(_total="none")
        assert "total" not in bundle
        assert len(bundle["entry"]) == 3

    def test_accurate_counts_a_directory_search_that_pages(self, world: World) -> None:
        bundle = world.bundle(
            "stranger", "/fhir/Practitioner", family="Zimmer", _count="2", _total="accurate"
        )
        assert bundle["total"] == 3
        assert len(bundle["entry"]) == 2
        assert "next" in [link["relation"] for link in bundle["link"]]

    def test_estimate_answers_what_is_known(self, world: World) -> None:
        paged = world.bundle(
            "stranger", "/fhir/Practitioner", family="Zimmer", _count="2", _total="estimate"
        )
        assert "total" not in paged  # counting would cost a second query
        assert world.documents(_total="estimate")["total"] == 3


class TestElements:
    def test_resources_keep_the_elements_named_and_the_mandatory_ones(self, world: World) -> None:
        bundle = world.documents(_elements="type")
        for entry in bundle["entry"]:
            resource = entry["resource"]
            # status and content: a DocumentReference holds them (1..1, 1..*), asked or not.
            assert set(resource) == {"resourceType", "id", "meta", "type", "status", "content"}
            assert SUBSETTED in [tag["code"] for tag in resource["meta"]["tag"]]

    def test_the_page_links_repeat_them(self, world: World) -> None:
        bundle = world.documents(_elements="status", _count="1")
        following = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
        assert "_elements=status" in following


class TestTokenWithoutSystem:
    def test_a_patient_is_found_by_identifier_value_alone(self, world: World) -> None:
        bundle = world.bundle("stranger", "/fhir/Patient", identifier=world.matricule)
        assert [entry["resource"]["id"] for entry in bundle["entry"]] == [str(world.patient.id)]

    def test_documents_are_found_by_patient_identifier_value_alone(self, world: World) -> None:
        bundle = world.bundle(
            "patient", "/fhir/DocumentReference", **{"patient.identifier": world.matricule}
        )
        assert bundle["total"] == 3

    def test_a_value_no_system_takes_is_refused_naming_the_parameter(self, world: World) -> None:
        response = world.get("stranger", "/fhir/Patient", identifier="12345")
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert issue["code"] == "invalid"
        assert issue["expression"] == ["identifier"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"_summary": "text"}, "_summary"),
        ({"_total": "exact"}, "_total"),
        ({"_elements": "content.attachment"}, "_elements"),
        ({"_count": "1001"}, "_count"),
        ({"_offset": "-1"}, "_offset"),
        ({"type:text": "lab"}, "type:text"),
    ],
)
def test_bad_result_parameters_name_the_field(
    world: World, params: dict[str, str], field: str
) -> None:
    response = world.get(
        "patient", "/fhir/DocumentReference", patient=f"Patient/{world.patient.id}", **params
    )
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [field]


def test_a_non_repeating_parameter_given_twice_is_refused(world: World) -> None:
    response = world.served.client.get(
        f"/fhir/List?patient=Patient/{world.patient.id}&patient=Patient/{world.patient.id}",
        headers=bearer(world.served, world.session, world.actors["patient"], world.clock),
    )
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"] == ["patient"]
