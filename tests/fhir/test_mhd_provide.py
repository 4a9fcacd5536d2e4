"""ITI-65 Provide Document Bundle: all or nothing, through real tokens and the policy.

https://profiles.ihe.net/ITI/MHD/ITI-65.html
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.clock import FrozenClock
from carnet.directory.models import Profession
from carnet.documents.models import Document
from carnet.patients.models import DossierState
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Feed:
    served: Served
    session: Session
    clock: FrozenClock
    store: FilesystemDocumentStore
    lab: Actor
    patient: Actor
    matricule: str

    def post(self, bundle: dict[str, Any], actor: Actor | None = None, **headers: str) -> Any:
        auth = bearer(
            self.served, self.session, actor or self.lab, self.clock, "system/DocumentReference.cru"
        )
        return self.served.client.post(
            "/fhir", json=bundle, headers={**FHIR_JSON, **auth, **headers}
        )

    def documents(self) -> list[Document]:
        return list(self.session.scalars(select(Document).order_by(Document.submitted_at)))

    def stored_files(self) -> list[Path]:
        return (
            [p for p in self.store.root.rglob("*") if p.is_file()]
            if self.store.root.exists()
            else []
        )


@pytest.fixture
def feed(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Feed]:
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    lab = system_actor(make_organisation(session, clock), scopes="system/DocumentReference.cru")
    with serve(session, store, clock, wrapper) as served:
        yield Feed(served, session, clock, store, lab, patient_actor(patient), matricule)


class TestPublish:
    def test_publishes_documents_and_answers_locations(self, feed: Feed) -> None:
        bundle = provide_bundle(by_identifier(feed.matricule), contents=[b"first", b"second"])
        response = feed.post(bundle)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["resourceType"] == "Bundle"
        assert answer["type"] == "transaction-response"
        locations = [e["response"]["location"] for e in answer["entry"]]
        assert locations[0].startswith("List/")
        assert sum(1 for loc in locations if loc.startswith("DocumentReference/")) == 2
        assert all(e["response"]["status"] == "201 Created" for e in answer["entry"])
        stored = feed.documents()
        assert len(stored) == 2
        assert {d.size for d in stored} == {5, 6}
        # ...and the patient finds and retrieves them.
        me = bearer(feed.served, feed.session, feed.patient, feed.clock, "patient/*.rs")
        found = feed.served.client.get(
            "/fhir/DocumentReference",
            params={"patient": f"Patient/{feed.patient.person_id}"},
            headers=me,
        ).json()
        assert found["total"] == 2
        binary = next(loc for loc in locations if loc.startswith("Binary/"))
        content = feed.served.client.get(f"/fhir/{binary}", headers=me)
        assert content.content in (b"first", b"second")

    def test_inline_content(self, feed: Feed) -> None:
        response = feed.post(provide_bundle(by_identifier(feed.matricule), inline=True))
        assert response.status_code == 200, response.text
        assert len(feed.documents()) == 1

    def test_patient_by_id(self, feed: Feed) -> None:
        response = feed.post(provide_bundle(f"Patient/{feed.patient.person_id}"))
        assert response.status_code == 200, response.text

    def test_replaces_supersedes_the_earlier_document(self, feed: Feed) -> None:
        first = feed.post(provide_bundle(by_identifier(feed.matricule))).json()
        location = next(
            e["response"]["location"]
            for e in first["entry"]
            if e["response"]["location"].startswith("DocumentReference/")
        )
        previous_id = location.split("/")[1]
        replacement = provide_bundle(
            by_identifier(feed.matricule),
            contents=[b"corrected"],
            relatesTo=[
                {"code": "replaces", "target": {"reference": f"DocumentReference/{previous_id}"}}
            ],
        )
        assert feed.post(replacement).status_code == 200
        statuses = sorted(d.status.value for d in feed.documents())
        assert statuses == ["current", "superseded"]

    def test_a_professional_publishes_as_author(
        self, feed: Feed, session: Session, clock: FrozenClock
    ) -> None:
        doctor = professional_actor(make_professional(session, clock))
        auth = bearer(feed.served, session, doctor, clock, "user/DocumentReference.c")
        response = feed.served.client.post(
            "/fhir",
            json=provide_bundle(by_identifier(feed.matricule)),
            headers={**FHIR_JSON, **auth},
        )
        assert response.status_code == 200, response.text
        (document,) = feed.documents()
        assert document.author_professional_id == doctor.professional_id


class TestAllOrNothing:
    def test_one_bad_entry_stores_nothing(self, feed: Feed) -> None:
        bundle = provide_bundle(by_identifier(feed.matricule), contents=[b"good", b"bad"])
        bad = next(
            i
            for i, e in enumerate(bundle["entry"])
            if e["resource"]["resourceType"] == "DocumentReference" and i > 1
        )
        bundle["entry"][bad]["resource"]["content"][0]["attachment"]["size"] = 999
        response = feed.post(bundle)
        assert response.status_code == 422
        issue = response.json()["issue"][0]
        assert issue["expression"] == [f"Bundle.entry[{bad}].resource.content[0].attachment.size"]
        assert feed.documents() == []
        assert feed.session.scalar(select(func.count()).select_from(Document)) == 0

    def test_the_same_bundle_twice_is_refused_the_second_time(self, feed: Feed) -> None:
        bundle = provide_bundle(by_identifier(feed.matricule))
        assert feed.post(bundle).status_code == 200
        again = feed.post(copy.deepcopy(bundle))
        assert again.status_code == 409
        assert again.json()["issue"][0]["code"] == "duplicate"
        assert len(feed.documents()) == 1

    @pytest.mark.parametrize(
        ("damage", "expression"),
        [
            (
                lambda b: b["entry"][1]["resource"].update(bogus=True),
                "Bundle.entry[1].resource.bogus",
            ),
            (
                lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(hash="AAAA"),
                "Bundle.entry[1].resource.content[0].attachment.hash",
            ),
            (
                lambda b: b["entry"][1]["resource"]["type"]["coding"][0].update(code="00000-0"),
                "type",
            ),
            (
                lambda b: b["entry"][1]["resource"].update(status="superseded"),
                "Bundle.entry[1].resource.status",
            ),
            (lambda b: b.update(type="batch"), "Bundle.type"),
            (lambda b: b["entry"].pop(0), "Bundle.entry"),
            (
                lambda b: b["entry"][1]["resource"]["content"][0]["attachment"].update(
                    url="urn:uuid:nowhere"
                ),
                "Bundle.entry[1].resource.content[0].attachment.url",
            ),
        ],
    )
    def test_invalid_bundles_name_the_fault(self, feed: Feed, damage: Any, expression: str) -> None:
        bundle = provide_bundle(by_identifier(feed.matricule))
        damage(bundle)
        response = feed.post(bundle)
        assert response.status_code == 422, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == [expression]
        assert feed.documents() == []

    def test_wrong_media_type(self, feed: Feed) -> None:
        auth = bearer(feed.served, feed.session, feed.lab, feed.clock, "system/DocumentReference.c")
        response = feed.served.client.post(
            "/fhir", content=b"<Bundle/>", headers={**auth, "Content-Type": "application/fhir+xml"}
        )
        assert response.status_code == 415
        assert response.json()["issue"][0]["code"] == "not-supported"

    def test_dossier_not_active(self, feed: Feed, session: Session, clock: FrozenClock) -> None:
        matricule = make_matricule()
        make_patient(session, clock, matricule=matricule, state=DossierState.INVITED, given="Inv")
        response = feed.post(provide_bundle(by_identifier(matricule)))
        assert response.status_code == 409
        assert "invited" in response.json()["issue"][0]["diagnostics"]
        assert feed.stored_files() == []

    def test_unknown_patient_looks_like_not_found(self, feed: Feed) -> None:
        response = feed.post(provide_bundle(by_identifier(make_matricule())))
        assert response.status_code == 404

    def test_a_token_without_create_scope(self, feed: Feed) -> None:
        auth = bearer(
            feed.served, feed.session, feed.lab, feed.clock, "system/DocumentReference.rs"
        )
        response = feed.served.client.post(
            "/fhir",
            json=provide_bundle(by_identifier(feed.matricule)),
            headers={**FHIR_JSON, **auth},
        )
        assert response.status_code == 403
        assert feed.documents() == []

    def test_a_pharmacist_blocked_by_the_patient_cannot_publish(
        self, feed: Feed, session: Session, clock: FrozenClock
    ) -> None:
        from carnet.access import rules as access_rules

        pharmacist = professional_actor(
            make_professional(session, clock, profession=Profession.PHARMACIST)
        )
        assert pharmacist.professional_id is not None
        assert feed.patient.person_id is not None
        access_rules.block_professional(
            session,
            open_dossier(
                session,
                feed.patient,
                feed.patient.person_id,
                purposes.BLOCK_PROFESSIONAL,
                clock=clock,
            ),
            pharmacist.professional_id,
        )
        auth = bearer(feed.served, session, pharmacist, clock, "user/DocumentReference.c")
        response = feed.served.client.post(
            "/fhir",
            json=provide_bundle(by_identifier(feed.matricule)),
            headers={**FHIR_JSON, **auth},
        )
        assert response.status_code == 404
        assert feed.documents() == []
