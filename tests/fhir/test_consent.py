"""The patient's access rules as FHIR ``Consent``: list, read, create, delete — and their effect.

http://hl7.org/fhir/R4/consent.html (scope patient-privacy). Only the patient (or their
representative) reads and changes the rules; anyone else meets absence, recorded. A grant
written as a Consent opens the dossier to the professional; deleting it closes it again. The
official R4 Consent examples are valid FHIR, and each is refused for a reason named here.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent as FhirConsent
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.models import CareContactMethod
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation, OrganisationKind, Profession
from carnet.fhir.mapping.consent import parse_consent_id
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from conftest import DATASETS
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient

EXAMPLES = DATASETS / "hl7-fhir-r4-examples"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
PATIENT_SCOPE = "patient/*.cruds"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACTOR = "Consent.provision.actor[0].reference"
PERIOD_END = "Consent.provision.period.end"


@dataclass
class Dossier:
    served: Served
    session: Session
    clock: FrozenClock
    patient_id: uuid.UUID
    actors: dict[str, Actor]
    hospital: Organisation

    def headers(self, who: str, scope: str) -> dict[str, str]:
        return bearer(self.served, self.session, self.actors[who], self.clock, scope)

    def writing_scope(self, who: str) -> str:
        """Everything on Consent: in their own record for the patient, anywhere for others."""
        return PATIENT_SCOPE if who == "patient" else "user/*.cruds"

    def professional(self, who: str) -> uuid.UUID:
        professional_id = self.actors[who].professional_id
        assert professional_id is not None
        return professional_id

    def post(self, consent: Any, who: str = "patient", **headers: str) -> Any:
        self.clock.advance(dt.timedelta(seconds=1))  # each rule at its own instant
        return self.served.client.post(
            "/fhir/Consent",
            content=json.dumps(consent),
            headers={**FHIR_JSON, **self.headers(who, self.writing_scope(who)), **headers},
        )

    def delete(self, resource_id: str, who: str = "patient") -> Any:
        self.clock.advance(dt.timedelta(seconds=1))
        return self.served.client.delete(
            f"/fhir/Consent/{resource_id}", headers=self.headers(who, self.writing_scope(who))
        )

    def consents(self, who: str = "patient", scope: str = PATIENT_SCOPE) -> list[dict[str, Any]]:
        response = self.served.client.get(
            "/fhir/Consent",
            params={"patient": f"Patient/{self.patient_id}"},
            headers=self.headers(who, scope),
        )
        assert response.status_code == 200, response.text
        Bundle.model_validate(response.json())
        return [entry["resource"] for entry in response.json()["entry"]]

    def documents_seen_by(self, who: str) -> int:
        response = self.served.client.get(
            "/fhir/DocumentReference",
            params={"patient": f"Patient/{self.patient_id}"},
            headers=self.headers(who, "user/*.rs"),
        )
        total: int = response.json()["total"]
        return total

    def last_event(self) -> AuditEvent:
        return self.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_id == self.patient_id)
            .order_by(AuditEvent.seq.desc())
            .limit(1)
        ).one()

    def consent(self, provision: dict[str, Any], **fields: Any) -> dict[str, Any]:
        return {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{self.patient_id}"},
            "provision": provision,
            **fields,
        }


def actor(reference: str, role: str = "PRCP") -> dict[str, Any]:
    system = "v3-RoleCode" if role == "PCP" else "v3-ParticipationType"
    return {
        "role": {
            "coding": [{"system": f"http://terminology.hl7.org/CodeSystem/{system}", "code": role}]
        },
        "reference": {"reference": reference},
    }


def labels(*codes: str) -> list[dict[str, str]]:
    return [{"system": CONFIDENTIALITY, "code": code} for code in codes]


BTG = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "BTG"}]


@pytest.fixture
def dossier(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[Dossier]:
    patient = make_patient(session, clock)
    lab = make_organisation(session, clock)
    hospital = make_organisation(session, clock, kind=OrganisationKind.HOSPITAL, name="CHL")
    biologist = professional_actor(
        make_professional(session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id)
    )
    make_document(session, store, clock, actor=biologist, patient_id=patient.id)
    actors = {
        "patient": patient_actor(patient),
        "other": patient_actor(make_patient(session, clock, given="Zoe")),
        "gp": professional_actor(make_professional(session, clock, family="Generalist")),
        "nurse": professional_actor(
            make_professional(session, clock, profession=Profession.NURSE, family="Nurse")
        ),
        "emergency": professional_actor(
            make_professional(
                session,
                clock,
                profession=Profession.EMERGENCY_PHYSICIAN,
                organisation_id=hospital.id,
            )
        ),
    }
    with serve(session, store, clock, wrapper) as served:
        yield Dossier(served, session, clock, patient.id, actors, hospital)


class TestGrantRoundTrip:
    def test_a_grant_written_as_consent_opens_the_dossier_and_its_deletion_closes_it(
        self, dossier: Dossier
    ) -> None:
        assert dossier.documents_seen_by("gp") == 0
        gp = f"Practitioner/{dossier.professional('gp')}"
        created = dossier.post(
            dossier.consent({"type": "permit", "actor": [actor(gp)], "securityLabel": labels("N")})
        )
        assert created.status_code == 201, created.text
        resource = created.json()
        FhirConsent.model_validate(resource)
        assert created.headers["location"] == f"http://testserver/fhir/Consent/{resource['id']}"
        kind, patient_id, _ = parse_consent_id(resource["id"]) or (None, None, None)
        assert (kind and kind.value, patient_id) == ("g", dossier.patient_id)
        assert resource["provision"]["actor"][0]["reference"]["reference"] == gp
        event = dossier.last_event()
        assert (event.action, event.outcome) == (AuditAction.GRANT, AuditOutcome.ALLOWED)

        assert [c["id"] for c in dossier.consents()] == [resource["id"]]
        read = dossier.served.client.get(
            f"/fhir/Consent/{resource['id']}", headers=dossier.headers("patient", PATIENT_SCOPE)
        )
        assert read.json() == resource
        assert dossier.documents_seen_by("gp") == 1

        assert dossier.delete(resource["id"]).status_code == 204
        assert dossier.documents_seen_by("gp") == 0
        assert dossier.consents() == []
        gone = dossier.served.client.get(
            f"/fhir/Consent/{resource['id']}", headers=dossier.headers("patient", PATIENT_SCOPE)
        )
        assert gone.status_code == 404
        assert dossier.delete(resource["id"]).status_code == 404

    def test_an_extended_grant_to_an_organisation_until_a_date(self, dossier: Dossier) -> None:
        consent = dossier.consent(
            {
                "type": "permit",
                "period": {"end": "2026-12-31"},
                "actor": [actor(f"Organization/{dossier.hospital.id}")],
                "securityLabel": labels("N", "R"),
            }
        )
        resource = dossier.post(consent).json()
        assert resource["provision"]["period"]["end"] == "2027-01-01T00:00:00Z"
        assert [label["code"] for label in resource["provision"]["securityLabel"]] == ["N", "R"]
        # What Carnet answers can be sent back as it is: one grant per grantee, so the same rule
        # sent again is the rule in force, not a second one beside it.
        again = dossier.post({k: v for k, v in resource.items() if k != "id"}).json()
        assert again["id"] == resource["id"]
        assert again["provision"] == resource["provision"]
        assert [c["id"] for c in dossier.consents()] == [resource["id"]]


class TestOtherRules:
    def test_a_block_shuts_out_a_professional_with_a_grant(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        dossier.post(dossier.consent({"type": "permit", "actor": [actor(gp)]}))
        block = dossier.post(dossier.consent({"type": "deny", "actor": [actor(gp)]})).json()
        assert block["id"].startswith("b")
        assert block["policyRule"]["coding"][0]["code"] == "OPTOUT"
        assert dossier.documents_seen_by("gp") == 0
        # The block ended the grant: lifting it does not quietly give the access back.
        assert dossier.delete(block["id"]).status_code == 204
        assert dossier.documents_seen_by("gp") == 0

    def test_the_treating_doctor(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        designation = dossier.post(dossier.consent({"type": "permit", "actor": [actor(gp, "PCP")]}))
        assert designation.status_code == 201
        assert designation.json()["id"].startswith("t")
        assert dossier.documents_seen_by("gp") == 1
        nurse = f"Practitioner/{dossier.professional('nurse')}"
        refused = dossier.post(dossier.consent({"type": "permit", "actor": [actor(nurse, "PCP")]}))
        assert refused.status_code == 422
        assert refused.json()["issue"][0]["expression"] == ["Consent.provision.actor[0].reference"]
        assert dossier.delete(designation.json()["id"]).status_code == 204
        assert dossier.documents_seen_by("gp") == 0

    def test_emergency_opposition_and_its_withdrawal(self, dossier: Dossier) -> None:
        opposed = dossier.post(dossier.consent({"type": "deny", "purpose": BTG})).json()
        assert opposed["id"].startswith("e")

        def break_glass() -> object:
            return access_care.break_glass(
                dossier.session,
                open_dossier(
                    dossier.session,
                    dossier.actors["emergency"],
                    dossier.patient_id,
                    purposes.BREAK_GLASS,
                    clock=dossier.clock,
                ),
                reason="Unconscious at the station",
            )

        with pytest.raises(AccessDenied):
            break_glass()
        assert dossier.delete(opposed["id"]).status_code == 204
        assert [c["id"] for c in dossier.consents()] == []
        assert break_glass()

    def test_emergency_widening(self, dossier: Dossier) -> None:
        widened = dossier.post(
            dossier.consent({"type": "permit", "purpose": BTG, "securityLabel": labels("N", "R")})
        ).json()
        assert widened["provision"]["type"] == "permit"
        (listed,) = dossier.consents()
        assert listed == widened

    def test_an_open_care_contact_is_listed_and_can_be_ended(self, dossier: Dossier) -> None:
        access_care.record_care_contact(
            dossier.session,
            open_dossier(
                dossier.session,
                dossier.actors["gp"],
                dossier.patient_id,
                purposes.RECORD_CARE_CONTACT,
                clock=dossier.clock,
            ),
            method=CareContactMethod.CARD,
        )
        (contact,) = dossier.consents()
        assert contact["id"].startswith("c")
        assert contact["provision"]["purpose"][0]["code"] == "TREAT"
        assert dossier.documents_seen_by("gp") == 1
        assert dossier.delete(contact["id"]).status_code == 204
        assert dossier.documents_seen_by("gp") == 0
        # A care contact is not the patient's to create.
        again = dossier.post({k: v for k, v in contact.items() if k != "id"})
        assert again.json()["issue"][0]["expression"] == ["Consent.provision.purpose[0]"]


class TestOnlyThePatient:
    def test_a_professional_cannot_write_the_rules_and_is_recorded(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        response = dossier.post(dossier.consent({"type": "permit", "actor": [actor(gp)]}), "gp")
        assert response.status_code == 404
        refusal = dossier.last_event()
        assert (refusal.action, refusal.outcome) == (AuditAction.GRANT, AuditOutcome.DENIED)
        assert refusal.agent_professional_id == dossier.professional("gp")

    def test_others_see_no_rules_and_are_recorded(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        dossier.post(dossier.consent({"type": "permit", "actor": [actor(gp)]}))
        assert dossier.consents("gp", "user/*.rs") == []
        assert dossier.consents("other", "user/*.rs") == []
        refusal = dossier.last_event()
        assert (refusal.action, refusal.outcome) == (
            AuditAction.ACCESS_OVERVIEW,
            AuditOutcome.DENIED,
        )

    def test_nobody_else_deletes_them(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        grant = dossier.post(dossier.consent({"type": "permit", "actor": [actor(gp)]})).json()
        assert dossier.delete(grant["id"], "other").status_code == 404
        assert dossier.delete(grant["id"], "gp").status_code == 404
        assert dossier.documents_seen_by("gp") == 1
        assert dossier.delete("not-a-consent-id").status_code == 404

    def test_the_token_needs_consent_scopes(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        response = dossier.served.client.post(
            "/fhir/Consent",
            content=json.dumps(dossier.consent({"type": "permit", "actor": [actor(gp)]})),
            headers={**FHIR_JSON, **dossier.headers("patient", "patient/*.rs")},
        )
        assert response.status_code == 403


def _set_actor(consent: dict[str, Any], reference: str) -> None:
    consent["provision"]["actor"][0]["reference"]["reference"] = reference


# What is wrong with a grant (name), how to make it so, and the expression that must name it.
MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], object], str]] = [
    ("no scope", lambda c: c.pop("scope"), "Consent.scope"),
    ("unknown element", lambda c: c.update(colour="blue"), "Consent.colour"),
    ("draft", lambda c: c.update(status="draft"), "Consent.status"),
    ("research scope", lambda c: c["scope"]["coding"][0].update(code="research"), "Consent.scope"),
    ("no patient", lambda c: c.pop("patient"), "Consent.patient.reference"),
    (
        "foreign patient",
        lambda c: c.update(patient={"reference": "Patient/f001"}),
        "Consent.patient.reference",
    ),
    ("no provision", lambda c: c.pop("provision"), "Consent.provision"),
    ("no type", lambda c: c["provision"].pop("type"), "Consent.provision.type"),
    ("no actor", lambda c: c["provision"].pop("actor"), "Consent.provision.actor"),
    ("unknown practitioner", lambda c: _set_actor(c, f"Practitioner/{uuid.uuid4()}"), ACTOR),
    ("a device", lambda c: _set_actor(c, "Device/1"), ACTOR),
    (
        "secret",
        lambda c: c["provision"].update(securityLabel=labels("V")),
        "Consent.provision.securityLabel[0]",
    ),
    ("ended", lambda c: c["provision"].update(period={"end": "2020-01-01"}), PERIOD_END),
    ("a year", lambda c: c["provision"].update(period={"end": "2030"}), PERIOD_END),
    (
        "starts later",
        lambda c: c["provision"].update(period={"start": "2030-01-01"}),
        "Consent.provision.period.start",
    ),
    (
        "a mask",
        lambda c: c["provision"].update(
            data=[{"meaning": "instance", "reference": {"reference": "DocumentReference/x"}}]
        ),
        "Consent.provision.data",
    ),
    (
        "disclose",
        lambda c: c["provision"].update(action=[{"coding": [{"code": "disclose"}]}]),
        "Consent.provision.action[0]",
    ),
    (
        "research purpose",
        lambda c: c["provision"].update(purpose=[{"code": "HRESCH"}]),
        "Consent.provision.purpose[0]",
    ),
    (
        "emergency naming someone",
        lambda c: c["provision"].update(purpose=BTG),
        "Consent.provision.actor",
    ),
    (
        "block an organisation",
        lambda c: c["provision"].update(type="deny", actor=[actor(f"Organization/{uuid.uuid4()}")]),
        ACTOR,
    ),
]


class TestInvalidConsents:
    def test_each_fault_is_named(self, dossier: Dossier) -> None:
        gp = f"Practitioner/{dossier.professional('gp')}"
        for name, change, expression in MUTATIONS:
            consent = dossier.consent({"type": "permit", "actor": [actor(gp)]})
            change(consent)
            response = dossier.post(consent)
            assert response.status_code == 422, (name, response.text)
            issue = response.json()["issue"][0]
            assert (issue["code"], issue["expression"]) == ("invalid", [expression]), name
        assert dossier.consents() == []

    def test_an_organisation_grant_needs_an_end_date(self, dossier: Dossier) -> None:
        consent = dossier.consent(
            {"type": "permit", "actor": [actor(f"Organization/{dossier.hospital.id}")]}
        )
        response = dossier.post(consent)
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["Consent.provision.period.end"]

    @pytest.mark.parametrize(
        ("content", "media_type", "status"),
        [
            (b"{not json", "application/fhir+json", 422),
            (b"<Consent/>", "application/fhir+xml", 415),
        ],
        ids=["not-json", "xml"],
    )
    def test_the_body_is_fhir_json(
        self, dossier: Dossier, content: bytes, media_type: str, status: int
    ) -> None:
        headers = {"Content-Type": media_type, **dossier.headers("patient", PATIENT_SCOPE)}
        response = dossier.served.client.post("/fhir/Consent", content=content, headers=headers)
        assert response.status_code == status
        assert response.json()["resourceType"] == "OperationOutcome"

    def test_the_search_needs_a_patient(self, dossier: Dossier) -> None:
        response = dossier.served.client.get(
            "/fhir/Consent", headers=dossier.headers("patient", PATIENT_SCOPE)
        )
        assert response.status_code == 422
        assert response.json()["issue"][0]["expression"] == ["patient"]


# Each official R4 example (hl7.fhir.r4.examples 4.0.1) and why Carnet refuses it.
OFFICIAL_EXAMPLES = {
    # A nested provision denying the custodian organisation: one rule per Consent here.
    "Emergency": "Consent.provision.provision",
    # Opt-out of an organisation: Carnet blocks professionals, not organisations.
    "Out": "Consent.provision.actor[0].reference",
    # A period and nobody named: a permit must name whom it lets in.
    "basic": "Consent.provision.actor",
    "notTime": "Consent.provision.actor",
    # Two actors (the custodian and a grantee) in one provision.
    "grantor": "Consent.provision.actor",
    # Opt-in for an organisation without an end: organisations are granted until a date.
    "notAuthor": "Consent.provision.period.end",
    # Consent to "correct" the record: Carnet's rules are about access only.
    "notOrg": "Consent.provision.action[1]",
    "notThem": "Consent.provision.action[1]",
    # A rule about one resource (a mask): not written as Consent yet.
    "notThis": "Consent.provision.data",
    # Nested provisions by security label, author or resource class.
    "pkb": "Consent.provision.provision",
    "signature": "Consent.provision.provision",
    "smartonfhir": "Consent.provision.provision",
}


def _ours(value: Any, references: dict[str, str]) -> Any:
    """The example with its references turned into this dossier's patient and directory."""
    if isinstance(value, dict):
        return {key: _ours(item, references) for key, item in value.items()}
    if isinstance(value, list):
        return [_ours(item, references) for item in value]
    if isinstance(value, str) and value.split("/")[0] in references and "/" in value:
        return references[value.split("/")[0]]
    return value


def test_every_official_example_is_covered() -> None:
    found = {
        path.stem.removeprefix("Consent-consent-example-")
        for path in EXAMPLES.glob("Consent-*.json")
    }
    assert found == set(OFFICIAL_EXAMPLES)


@pytest.mark.parametrize(("name", "expression"), sorted(OFFICIAL_EXAMPLES.items()))
def test_official_examples_are_valid_fhir_and_refused_for_a_named_reason(
    dossier: Dossier, name: str, expression: str
) -> None:
    example = json.loads((EXAMPLES / f"Consent-consent-example-{name}.json").read_text("utf-8"))
    FhirConsent.model_validate(copy.deepcopy(example))
    references = {
        "Patient": f"Patient/{dossier.patient_id}",
        "Practitioner": f"Practitioner/{dossier.professional('gp')}",
        "Organization": f"Organization/{dossier.hospital.id}",
    }
    response = dossier.post(_ours(example, references))
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [expression]
    assert dossier.consents() == []
