"""ITI-78 Mobile Patient Demographics Query, through real tokens and the real policy.

https://profiles.ihe.net/ITI/PDQm/ITI-78.html — ``Patient`` read and search. Demographics are
patient data: a professional reads them under a live basis only; without one they may identify
one person (by national identifier, or by family name, given name and birth date together) and
get the identification alone; a feeding system finds patients by identifier only. Refusals look
like absence and are recorded.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient as FhirPatient
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access import rules as access_rules
from carnet.access.actors import Actor, Assurance
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel, RepresentationKind
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.audit.service import chain_of
from carnet.clock import FrozenClock
from carnet.patients import identifiers
from carnet.patients.models import Patient, Sex
from carnet.patients.service import PatientCriteria
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from factories.actors import operator_actor, patient_actor, professional_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.patients import make_patient

FHIR_JSON = "application/fhir+json"
SUBSETTED = "SUBSETTED"


@dataclass
class Population:
    served: Served
    session: Session
    clock: FrozenClock
    lea: Patient
    zoe: Patient  # same family name and birth date as Léa
    actors: dict[str, Actor]

    def get(self, who: str, path: str, scope: str = "user/*.rs", **params: Any) -> Any:
        headers = bearer(self.served, self.session, self.actors[who], self.clock, scope)
        return self.served.client.get(path, params=params, headers=headers)

    def search(self, who: str, scope: str = "user/*.rs", **params: Any) -> Any:
        return self.get(who, "/fhir/Patient", scope, **params)

    def matches(self, who: str, scope: str = "user/*.rs", **params: Any) -> list[dict[str, Any]]:
        response = self.search(who, scope, **params)
        assert response.status_code == 200, response.text
        bundle = response.json()
        Bundle.model_validate(bundle)
        return [entry["resource"] for entry in bundle["entry"]]

    def lea_identifier(self) -> str:
        (identifier,) = self.lea.identifiers
        return f"{identifier.system}|{identifier.value}"

    def events(self, chain: uuid.UUID) -> list[AuditEvent]:
        return list(
            self.session.scalars(
                select(AuditEvent).where(AuditEvent.chain_id == chain).order_by(AuditEvent.seq)
            )
        )


@pytest.fixture
def population(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[Population]:
    lea = make_patient(session, clock, address_line="12 rue du Fossé", postal_code="L-4123")
    zoe = make_patient(session, clock, given="Zoe", sex=Sex.OTHER)
    lab = make_organisation(session, clock)
    actors = {
        "lea": patient_actor(lea),
        "zoe": patient_actor(zoe),
        "stranger": professional_actor(make_professional(session, clock, family="Fremd")),
        "doctor": professional_actor(make_professional(session, clock, family="Doktor")),
        "lab": system_actor(lab, scopes="system/*.rs"),
        "operator": operator_actor(),
    }
    access_rules.grant_access(
        session,
        open_dossier(session, actors["lea"], lea.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=actors["doctor"].professional_id,
    )
    with serve(session, store, clock, wrapper) as served:
        yield Population(served, session, clock, lea, zoe, actors)


def _is_subsetted(resource: dict[str, Any]) -> bool:
    return any(tag["code"] == SUBSETTED for tag in resource["meta"].get("tag", []))


class TestRead:
    def test_the_patient_reads_all_their_demographics(self, population: Population) -> None:
        response = population.get("lea", f"/fhir/Patient/{population.lea.id}", "patient/*.rs")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(FHIR_JSON)
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["last-modified"] == "Mon, 01 Jun 2026 12:00:00 GMT"
        resource = response.json()
        FhirPatient.model_validate(resource)
        assert resource["id"] == str(population.lea.id)
        assert resource["identifier"][0]["system"] == identifiers.LU_MATRICULE
        assert resource["name"] == [{"use": "official", "family": "Weber", "given": ["Léa"]}]
        assert resource["gender"] == "female"
        assert resource["birthDate"] == "1980-05-17"
        assert resource["active"] is True
        assert resource["telecom"] == [
            {"system": "email", "value": "lea.weber@example.lu", "use": "home"}
        ]
        assert resource["address"][0]["line"] == ["12 rue du Fossé"]
        assert resource["address"][0]["country"] == "LU"
        assert resource["communication"][0]["language"]["coding"][0]["code"] == "fr"
        assert not _is_subsetted(resource)

    def test_a_professional_with_a_grant_reads_them(self, population: Population) -> None:
        response = population.get("doctor", f"/fhir/Patient/{population.lea.id}")
        assert response.status_code == 200
        assert response.json()["telecom"][0]["value"] == "lea.weber@example.lu"

    @pytest.mark.parametrize("who", ["stranger", "zoe", "lab", "operator"])
    def test_anyone_else_is_told_not_found_and_the_refusal_recorded(
        self, population: Population, who: str
    ) -> None:
        response = population.get(who, f"/fhir/Patient/{population.lea.id}")
        assert response.status_code == 404
        assert response.json()["issue"][0]["code"] == "not-found"
        assert "Weber" not in response.text
        refusal = population.events(population.lea.id)[-1]
        assert (refusal.action, refusal.outcome) == (AuditAction.READ, AuditOutcome.DENIED)
        assert refusal.agent_subject == population.actors[who].agent.subject

    @pytest.mark.parametrize("resource_id", [str(uuid.uuid4()), "not-a-uuid"])
    def test_unknown_and_malformed_ids_are_not_found(
        self, population: Population, resource_id: str
    ) -> None:
        assert population.get("doctor", f"/fhir/Patient/{resource_id}").status_code == 404

    def test_the_read_is_recorded_in_the_dossier(self, population: Population) -> None:
        population.get("doctor", f"/fhir/Patient/{population.lea.id}")
        read = population.events(population.lea.id)[-1]
        assert (read.action, read.outcome) == (AuditAction.READ, AuditOutcome.ALLOWED)
        assert '"resource": "Patient"' in read.details

    def test_weak_sign_in_must_step_up(self, population: Population) -> None:
        population.actors["weak"] = replace(population.actors["doctor"], assurance=Assurance.LOW)
        response = population.get("weak", f"/fhir/Patient/{population.lea.id}")
        assert response.status_code == 401
        assert 'error="insufficient_user_authentication"' in response.headers["www-authenticate"]

    def test_the_scope_must_cover_patient(self, population: Population) -> None:
        response = population.get(
            "doctor", f"/fhir/Patient/{population.lea.id}", "user/DocumentReference.rs"
        )
        assert response.status_code == 403
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


class TestProfessionalWithoutBasis:
    def test_finds_one_person_by_national_identifier_but_only_identifies_them(
        self, population: Population
    ) -> None:
        (found,) = population.matches("stranger", identifier=population.lea_identifier())
        FhirPatient.model_validate(found)
        assert found["id"] == str(population.lea.id)
        assert _is_subsetted(found)
        assert set(found) == {
            "resourceType",
            "id",
            "meta",
            "identifier",
            "name",
            "gender",
            "birthDate",
        }

    def test_finds_one_person_by_whole_names_and_birth_date(self, population: Population) -> None:
        (found,) = population.matches(
            "stranger", family="WEBER", given="léa", birthdate="1980-05-17"
        )
        assert found["id"] == str(population.lea.id)
        assert _is_subsetted(found)

    @pytest.mark.parametrize(
        "params",
        [
            {"family": "Weber"},
            {"family": "Weber", "birthdate": "1980-05-17"},
            {"family": "Web", "given": "Lé", "birthdate": "1980-05-17"},  # no beginnings
            {"birthdate": "1980-05-17", "gender": "female"},
            {},
        ],
        ids=["family", "family-birthdate", "prefixes", "birthdate-gender", "nothing"],
    )
    def test_cannot_browse_the_population(
        self, population: Population, params: dict[str, str]
    ) -> None:
        assert population.matches("stranger", **params) == []

    def test_a_search_that_finds_nobody_is_recorded_on_the_actor(
        self, population: Population
    ) -> None:
        population.matches("stranger", family="Weber")
        chain = chain_of(population.actors["stranger"].agent, None)
        (event,) = population.events(chain)
        assert event.action is AuditAction.SEARCH
        assert event.patient_id is None

    def test_a_search_that_finds_someone_is_recorded_in_their_dossier(
        self, population: Population
    ) -> None:
        population.matches("stranger", identifier=population.lea_identifier())
        event = population.events(population.lea.id)[-1]
        assert (event.action, event.outcome) == (AuditAction.SEARCH, AuditOutcome.ALLOWED)
        assert event.agent_professional_id == population.actors["stranger"].professional_id

    def test_a_blocked_professional_finds_nobody(self, population: Population) -> None:
        stranger = population.actors["stranger"].professional_id
        assert stranger is not None
        access_rules.block_professional(
            population.session,
            open_dossier(
                population.session,
                population.actors["lea"],
                population.lea.id,
                purposes.BLOCK_PROFESSIONAL,
                clock=population.clock,
            ),
            stranger,
        )
        assert population.matches("stranger", identifier=population.lea_identifier()) == []

    def test_still_cannot_read_the_patient_they_found(self, population: Population) -> None:
        population.matches("stranger", identifier=population.lea_identifier())
        assert population.get("stranger", f"/fhir/Patient/{population.lea.id}").status_code == 404


class TestProfessionalWithBasis:
    def test_a_loose_search_reaches_their_patients_only_in_full(
        self, population: Population
    ) -> None:
        (found,) = population.matches("doctor", family="Weber")
        assert found["id"] == str(population.lea.id)
        assert not _is_subsetted(found)
        assert found["telecom"]

    def test_identifying_someone_else_gives_the_identification_only(
        self, population: Population
    ) -> None:
        (found,) = population.matches("doctor", family="Weber", given="Zoe", birthdate="1980-05-17")
        assert found["id"] == str(population.zoe.id)
        assert _is_subsetted(found)

    def test_a_revoked_grant_ends_the_basis(self, population: Population) -> None:
        lea = population.actors["lea"]
        overview = access_rules.access_overview(
            population.session,
            open_dossier(
                population.session,
                lea,
                population.lea.id,
                purposes.READ_ACCESS_RULES,
                clock=population.clock,
            ),
        )
        access_rules.revoke_grant(
            population.session,
            open_dossier(
                population.session,
                lea,
                population.lea.id,
                purposes.REVOKE_ACCESS,
                clock=population.clock,
            ),
            overview.grants[0].id,
        )
        assert population.matches("doctor", family="Weber") == []


class TestOthers:
    def test_a_feeding_system_finds_by_identifier_only(self, population: Population) -> None:
        (found,) = population.matches(
            "lab", "system/Patient.rs", identifier=population.lea_identifier()
        )
        assert _is_subsetted(found)
        by_name = population.matches(
            "lab", "system/Patient.rs", family="Weber", given="Léa", birthdate="1980-05-17"
        )
        assert by_name == []
        chain = chain_of(population.actors["lab"].agent, None)
        refused = population.events(chain)[-1]
        assert (refused.action, refused.outcome) == (AuditAction.SEARCH, AuditOutcome.DENIED)
        assert refused.reason == "a feeding system finds patients by identifier only"

    def test_a_patient_finds_only_themself(self, population: Population) -> None:
        (found,) = population.matches("lea", "patient/*.rs", family="Weber")
        assert found["id"] == str(population.lea.id)
        assert not _is_subsetted(found)

    def test_an_operator_finds_nobody(self, population: Population) -> None:
        assert population.matches("operator", identifier=population.lea_identifier()) == []

    def test_gender_narrows_the_search(self, population: Population) -> None:
        found = population.matches("doctor", family="Weber", given="Zoe", birthdate="1980-05-17")
        assert len(found) == 1
        narrowed = population.matches(
            "doctor", family="Weber", given="Zoe", birthdate="1980-05-17", gender="female"
        )
        assert narrowed == []

    def test_post_search_takes_a_form(self, population: Population) -> None:
        headers = bearer(
            population.served, population.session, population.actors["stranger"], population.clock
        )
        response = population.served.client.post(
            "/fhir/Patient/_search",
            data={"identifier": population.lea_identifier()},
            headers=headers,
        )
        assert response.status_code == 200
        assert [e["resource"]["id"] for e in response.json()["entry"]] == [str(population.lea.id)]

    def test_count_caps_the_answer(self, population: Population) -> None:
        access_rules.grant_access(
            population.session,
            open_dossier(
                population.session,
                population.actors["zoe"],
                population.zoe.id,
                purposes.GRANT_ACCESS,
                clock=population.clock,
            ),
            level=GrantLevel.NORMAL,
            professional_id=population.actors["doctor"].professional_id,
        )
        assert len(population.matches("doctor", family="Weber")) == 2
        assert len(population.matches("doctor", family="Weber", _count="1")) == 1


class TestBadParameters:
    @pytest.mark.parametrize(
        ("params", "expression"),
        [
            ({"identifier": "1980051700123"}, "identifier"),
            ({"identifier": f"{identifiers.LU_MATRICULE}|1980051700124"}, "identifier"),
            ({"identifier": "urn:example:unknown|123"}, "identifier"),
            ({"birthdate": "17/05/1980"}, "birthdate"),
            ({"gender": "f"}, "gender"),
            ({"name": "Weber"}, "name"),
            ({"_count": "0"}, "_count"),
            ({"_count": "101"}, "_count"),
        ],
    )
    def test_name_the_parameter_at_fault(
        self, population: Population, params: dict[str, str], expression: str
    ) -> None:
        response = population.search("stranger", **params)
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert issue["code"] == "invalid"
        assert issue["expression"] == [expression]


def test_a_representative_finds_the_person_they_represent(
    session: Session, clock: FrozenClock
) -> None:
    """Service level: tokens do not carry representation yet; the rule is in the service."""
    parent = make_patient(session, clock, given="Anne")
    child = make_patient(session, clock, given="Tom", birth_date=dt.date(2015, 3, 2))
    access_representation.record_representation(
        session,
        open_dossier(
            session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
        ),
        parent.id,
        kind=RepresentationKind.PARENT,
    )
    found = access_identification.find_patients(
        session, patient_actor(parent), PatientCriteria(family="Weber"), clock=clock
    )
    assert [(item.patient.given, item.full) for item in found] == [("Anne", True), ("Tom", True)]
