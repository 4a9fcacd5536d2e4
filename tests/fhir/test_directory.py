"""The directory over FHIR: ``Practitioner``, ``PractitionerRole`` and ``Organization``.

http://hl7.org/fhir/R4/practitioner.html, practitionerrole.html, organization.html — read and
search for anyone authenticated whose token carries a scope on the resource; no patient data,
so no policy and no audit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.organization import Organization as FhirOrganization
from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole as FhirPractitionerRole
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation, OrganisationKind, Profession, Professional
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.patients import make_patient

VALIDATORS: dict[str, Any] = {
    "Practitioner": FhirPractitioner,
    "PractitionerRole": FhirPractitionerRole,
    "Organization": FhirOrganization,
}


@dataclass
class Directory:
    served: Served
    session: Session
    clock: FrozenClock
    hospital: Organisation
    lab: Organisation
    cardiologist: Professional
    nurse: Professional
    biologist: Professional
    patient: Actor

    def get(self, path: str, scope: str = "patient/*.rs", **params: Any) -> Any:
        headers = bearer(self.served, self.session, self.patient, self.clock, scope)
        return self.served.client.get(path, params=params, headers=headers)

    def ids(self, resource_type: str, **params: Any) -> list[str]:
        response = self.get(f"/fhir/{resource_type}", **params)
        assert response.status_code == 200, response.text
        bundle = response.json()
        Bundle.model_validate(bundle)
        return [entry["resource"]["id"] for entry in bundle["entry"]]


@pytest.fixture
def directory(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[Directory]:
    hospital = make_organisation(
        session, clock, kind=OrganisationKind.HOSPITAL, name="Centre Hospitalier Zénith"
    )
    lab = make_organisation(session, clock, name="Laboratoire Zéphyr")
    cardiologist = make_professional(
        session,
        clock,
        profession=Profession.SPECIALIST,
        specialty="cardiology",
        organisation_id=hospital.id,
        family="Zweig",
    )
    nurse = make_professional(
        session, clock, profession=Profession.NURSE, organisation_id=hospital.id, family="Zander"
    )
    biologist = make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id, family="Zorn"
    )
    patient = patient_actor(make_patient(session, clock))
    with serve(session, store, clock, wrapper) as served:
        yield Directory(
            served, session, clock, hospital, lab, cardiologist, nurse, biologist, patient
        )


class TestRead:
    def test_practitioner(self, directory: Directory) -> None:
        response = directory.get(f"/fhir/Practitioner/{directory.cardiologist.id}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        resource = response.json()
        FhirPractitioner.model_validate(resource)
        assert resource["identifier"] == [
            {
                "system": directory.cardiologist.identifier_system,
                "value": directory.cardiologist.identifier_value,
            }
        ]
        assert resource["name"] == [{"family": "Zweig", "given": ["Marc"]}]
        assert resource["qualification"][0]["code"]["coding"][0]["code"] == "specialist"

    def test_practitioner_role_says_profession_specialty_and_organisation(
        self, directory: Directory
    ) -> None:
        resource = directory.get(f"/fhir/PractitionerRole/{directory.cardiologist.id}").json()
        FhirPractitionerRole.model_validate(resource)
        assert resource["practitioner"]["reference"] == f"Practitioner/{directory.cardiologist.id}"
        assert resource["organization"]["reference"] == f"Organization/{directory.hospital.id}"
        assert resource["code"][0]["coding"][0]["code"] == "specialist"
        assert resource["specialty"][0]["coding"][0]["code"] == "cardiology"

    def test_organization(self, directory: Directory) -> None:
        resource = directory.get(f"/fhir/Organization/{directory.lab.id}").json()
        FhirOrganization.model_validate(resource)
        assert resource["name"] == "Laboratoire Zéphyr"
        assert resource["type"][0]["coding"][0]["code"] == "laboratory"

    @pytest.mark.parametrize("path", ["Practitioner/", "Organization/", "PractitionerRole/"])
    @pytest.mark.parametrize("resource_id", ["9b1d6f7e-0000-4000-8000-000000000000", "nope"])
    def test_unknown_is_not_found(self, directory: Directory, path: str, resource_id: str) -> None:
        response = directory.get(f"/fhir/{path}{resource_id}")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"


class TestSearch:
    def test_practitioners_by_each_parameter(self, directory: Directory) -> None:
        cardiologist, nurse = str(directory.cardiologist.id), str(directory.nurse.id)
        value = directory.nurse.identifier_value
        assert directory.ids("Practitioner", identifier=f"urn:oid:1.2.250.1.71.4.2.1|{value}") == [
            nurse
        ]
        assert directory.ids("Practitioner", identifier=value) == [nurse]
        assert directory.ids("Practitioner", family="zw") == [cardiologist]
        assert set(directory.ids("Practitioner", given="Marc", family="Z")) >= {
            cardiologist,
            nurse,
        }
        assert directory.ids("Practitioner", name="Zand") == [nurse]

    def test_roles_by_practitioner_organisation_role_and_specialty(
        self, directory: Directory
    ) -> None:
        hospital = f"Organization/{directory.hospital.id}"
        assert set(directory.ids("PractitionerRole", organization=hospital)) == {
            str(directory.cardiologist.id),
            str(directory.nurse.id),
        }
        assert directory.ids("PractitionerRole", organization=hospital, role="nurse") == [
            str(directory.nurse.id)
        ]
        assert directory.ids("PractitionerRole", specialty="cardiology") == [
            str(directory.cardiologist.id)
        ]
        assert directory.ids(
            "PractitionerRole", practitioner=f"Practitioner/{directory.biologist.id}"
        ) == [str(directory.biologist.id)]

    def test_organisations_by_identifier_name_and_type(self, directory: Directory) -> None:
        lab, hospital = str(directory.lab.id), str(directory.hospital.id)
        assert directory.ids("Organization", identifier=directory.lab.identifier_value) == [lab]
        assert directory.ids("Organization", name="centre hosp") == [hospital]
        assert lab in directory.ids("Organization", type="laboratory", name="Labo")
        assert hospital not in directory.ids("Organization", type="laboratory")

    def test_pages_follow_next_links(self, directory: Directory) -> None:
        first = directory.get("/fhir/Practitioner", family="Z", _count="2").json()
        assert len(first["entry"]) == 2
        assert "total" not in first
        next_url = next(link["url"] for link in first["link"] if link["relation"] == "next")
        headers = bearer(directory.served, directory.session, directory.patient, directory.clock)
        second = directory.served.client.get(next_url, headers=headers).json()
        assert len(second["entry"]) == 1
        assert [link["relation"] for link in second["link"]] == ["self", "previous"]

    @pytest.mark.parametrize(
        ("path", "params", "expression"),
        [
            ("Practitioner", {"birthdate": "1970"}, "birthdate"),
            ("PractitionerRole", {"role": "wizard"}, "role"),
            ("PractitionerRole", {"organization": "Patient/1"}, "organization"),
            ("Organization", {"type": "castle"}, "type"),
            ("Organization", {"_count": "1000"}, "_count"),
        ],
    )
    def test_bad_parameters_name_the_field(
        self, directory: Directory, path: str, params: dict[str, str], expression: str
    ) -> None:
        response = directory.get(f"/fhir/{path}", **params)
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == [expression]


class TestWhoMayRead:
    def test_a_token_is_required(self, directory: Directory) -> None:
        response = directory.served.client.get(f"/fhir/Practitioner/{directory.nurse.id}")
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_the_token_needs_a_scope_on_the_resource(self, directory: Directory) -> None:
        response = directory.get(f"/fhir/Organization/{directory.lab.id}", "user/Practitioner.rs")
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
        allowed = directory.get(f"/fhir/Practitioner/{directory.nurse.id}", "user/Practitioner.rs")
        assert allowed.status_code == 200

    @pytest.mark.parametrize("kind", ["professional", "operator"])
    def test_any_authenticated_actor_reads_it(self, directory: Directory, kind: str) -> None:
        actor = (
            professional_actor(directory.biologist) if kind == "professional" else operator_actor()
        )
        headers = bearer(directory.served, directory.session, actor, directory.clock)
        response = directory.served.client.get(
            f"/fhir/Practitioner/{directory.cardiologist.id}", headers=headers
        )
        assert response.status_code == 200


def test_the_capability_statement_declares_what_is_served(directory: Directory) -> None:
    """http://hl7.org/fhir/R4/capabilitystatement.html — built from the modules' declarations."""
    statement = directory.served.client.get("/fhir/metadata").json()
    resources = {entry["type"]: entry for entry in statement["rest"][0]["resource"]}
    for resource_type in ("Patient", "Practitioner", "PractitionerRole", "Organization"):
        interactions = [i["code"] for i in resources[resource_type]["interaction"]]
        assert interactions == ["read", "search-type"], resource_type
    consent = [i["code"] for i in resources["Consent"]["interaction"]]
    assert consent == ["read", "search-type", "create", "delete"]
    patient_params = {param["name"] for param in resources["Patient"]["searchParam"]}
    assert patient_params == {"identifier", "family", "given", "birthdate", "gender", "_count"}
    assert resources["Patient"]["supportedProfile"] == [
        "https://profiles.ihe.net/ITI/PDQm/StructureDefinition/IHE.PDQm.Patient"
    ]
