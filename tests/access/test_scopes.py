"""SMART v2 scopes (and v1 compatibility): parsing and what they allow."""

from __future__ import annotations

import uuid

import pytest

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.policy import scope_allows
from carnet.access.scopes import Interaction, InvalidScope, allows, parse_scope, parse_scopes


@pytest.mark.parametrize(
    ("text", "letters"),
    [
        ("patient/DocumentReference.rs", "rs"),
        ("user/*.cruds", "cruds"),
        ("system/DocumentReference.c", "c"),
        ("user/Binary.read", "rs"),
        ("patient/*.write", "cud"),
        ("user/Patient.*", "cruds"),
        ("patient/Observation.rs?category=laboratory", "rs"),
    ],
)
def test_parses_v2_and_v1(text: str, letters: str) -> None:
    assert parse_scope(text).permissions == frozenset(letters)


@pytest.mark.parametrize(
    "text", ["patient/DocumentReference.sr", "user/docs.r", "admin/*.r", "user/*.x", "user/*.rr"]
)
def test_refuses_malformed(text: str) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(text)


def test_splits_resource_and_other_scopes() -> None:
    resources, others = parse_scopes("openid fhirUser launch/patient patient/Patient.r")
    assert others == {"openid", "fhirUser", "launch/patient"}
    assert [str(scope) for scope in resources] == ["patient/Patient.r"]


def test_unknown_non_resource_scope_is_refused() -> None:
    with pytest.raises(InvalidScope):
        parse_scopes("openid admin")


def test_allows_by_resource_interaction_and_context() -> None:
    scopes, _ = parse_scopes("patient/DocumentReference.rs system/Binary.r")
    assert allows(scopes, "DocumentReference", Interaction.SEARCH)
    assert not allows(scopes, "DocumentReference", Interaction.CREATE)
    assert allows(scopes, "Binary", Interaction.READ, context="system")
    assert not allows(scopes, "Binary", Interaction.READ, context="patient")


def test_patient_scopes_reach_the_launch_patient_only() -> None:
    own, other = uuid.uuid4(), uuid.uuid4()
    patient = Actor(
        kind=ActorKind.PATIENT,
        subject="Patient/x",
        assurance=Assurance.SUBSTANTIAL,
        scopes=parse_scopes("patient/DocumentReference.rs")[0],
        person_id=own,
        acting_for=own,
    )
    assert scope_allows(patient, "DocumentReference", Interaction.READ, own)
    assert not scope_allows(patient, "DocumentReference", Interaction.READ, other)
    professional_app = Actor(
        kind=ActorKind.PROFESSIONAL,
        subject="Practitioner/y",
        assurance=Assurance.HIGH,
        scopes=parse_scopes("patient/DocumentReference.rs")[0],
        launch_patient=other,
    )
    assert scope_allows(professional_app, "DocumentReference", Interaction.SEARCH, other)
    assert not scope_allows(professional_app, "DocumentReference", Interaction.SEARCH, own)
