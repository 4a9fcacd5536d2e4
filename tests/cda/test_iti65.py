"""A CDA document published through ITI-65 (MHD Provide Document Bundle) over HTTP, refused
with an OperationOutcome naming the field when it disagrees, and retrieved through ITI-68.

https://profiles.ihe.net/ITI/MHD/ITI-65.html — the documents service checks every CDA document,
whichever way it comes in; here the way in is the FHIR API with a feeding system's token.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.documents.models import Document
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.cda import CCD, fitted
from factories.directory import make_organisation
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass
class Hospital:
    served: Served
    session: Session
    clock: FrozenClock
    system: Actor
    patient: Actor
    matricule: str

    def provide(self, content: bytes, **attachment: Any) -> Any:
        """POST an ITI-65 bundle of one CDA document, its metadata the CCD's header's."""
        fields = {
            "contentType": "text/xml",
            "language": "en-US",
            "title": "Patient Chart Summary",
            "creation": "2013-08-15T18:30:00Z",
            "data": base64.b64encode(content).decode(),
            **attachment,
        }
        loinc = fields.pop("loinc", "34133-9")
        bundle = provide_bundle(
            by_identifier(self.matricule),
            inline=True,
            type={"coding": [{"system": "http://loinc.org", "code": loinc}]},
            content=[{"attachment": fields}],
        )
        token = bearer(
            self.served,
            self.session,
            self.system,
            self.clock,
            "system/DocumentReference.cru",
        )
        return self.served.client.post("/fhir", json=bundle, headers={**FHIR_JSON, **token})

    def stored(self) -> int:
        return self.session.scalar(select(func.count()).select_from(Document)) or 0


@pytest.fixture
def hospital(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Hospital]:
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    system = system_actor(make_organisation(session, clock), scopes="system/DocumentReference.cru")
    with serve(session, store, clock, wrapper) as served:
        yield Hospital(served, session, clock, system, patient_actor(patient), matricule)


def test_a_cda_document_is_published_and_retrieved_as_it_came(hospital: Hospital) -> None:
    content = fitted(CCD.read_bytes(), matricule=hospital.matricule)

    answer = hospital.provide(content)

    assert answer.status_code == 200, answer.text
    (document,) = hospital.session.scalars(select(Document))
    assert (document.type_code, document.mime_type, document.language) == (
        "34133-9",
        "text/xml",
        "en-US",
    )
    binary = next(
        entry["response"]["location"]
        for entry in answer.json()["entry"]
        if entry["response"]["location"].startswith("Binary/")
    )
    me = bearer(hospital.served, hospital.session, hospital.patient, hospital.clock, "patient/*.rs")
    retrieved = hospital.served.client.get(f"/fhir/{binary}", headers=me)
    assert retrieved.status_code == 200
    assert retrieved.content == content
    assert retrieved.headers["content-type"].startswith("text/xml")


@pytest.mark.parametrize(
    ("attachment", "expression", "words"),
    [
        (
            {"loinc": "11488-4"},
            "type",
            "The type http://loinc.org|11488-4 is not the CDA header's code "
            "http://loinc.org|34133-9.",
        ),
        (
            {"creation": "2013-08-16T18:30:00Z"},
            "created_at",
            "The creation time 2013-08-16T18:30:00+00:00 is not the CDA header's effectiveTime "
            "201308151030-0800.",
        ),
        (
            {"language": "de"},
            "language",
            "The language de is not the CDA header's languageCode en-US.",
        ),
    ],
    ids=["type", "creation", "language"],
)
def test_metadata_that_disagrees_with_the_header_is_refused_naming_both(
    hospital: Hospital, attachment: dict[str, str], expression: str, words: str
) -> None:
    content = fitted(CCD.read_bytes(), matricule=hospital.matricule)

    answer = hospital.provide(content, **attachment)

    assert answer.status_code == 422, answer.text
    issue = answer.json()["issue"][0]
    assert (issue["code"], issue["expression"], issue["diagnostics"]) == (
        "invalid",
        [expression],
        words,
    )
    assert hospital.stored() == 0


def test_a_document_about_someone_else_is_refused(hospital: Hospital) -> None:
    answer = hospital.provide(CCD.read_bytes())

    assert answer.status_code == 422, answer.text
    issue = answer.json()["issue"][0]
    assert issue["expression"] == ["subject"]
    assert "2.16.840.1.113883.4.1^444222222" in issue["diagnostics"]
    assert hospital.stored() == 0


def test_a_cda_with_a_doctype_is_refused_before_it_is_read(hospital: Hospital) -> None:
    content = fitted(CCD.read_bytes(), matricule=hospital.matricule).replace(
        b"<ClinicalDocument",
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><ClinicalDocument',
        1,
    )

    answer = hospital.provide(content)

    assert answer.status_code == 422, answer.text
    assert "DOCTYPE" in answer.json()["issue"][0]["diagnostics"]
    assert hospital.stored() == 0
