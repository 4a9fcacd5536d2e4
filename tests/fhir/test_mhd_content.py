"""What a publisher may store and how it is handed back: images that are what they claim,
subjects that are Carnet's own patients (ITI-65), retrieved bytes that cannot run on Carnet's
origin (ITI-68).

https://profiles.ihe.net/ITI/MHD/ITI-65.html, https://profiles.ihe.net/ITI/MHD/ITI-68.html
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.clock import FrozenClock
from carnet.documents import publication
from carnet.documents.errors import InvalidDocument
from carnet.documents.models import Document
from carnet.fhir.ids import document_resource_id
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation
from factories.documents import lab_metadata
from factories.mhd import provide_bundle
from factories.patients import make_patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
WEBP = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00"
HTML = b"<html><script>alert(document.cookie)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@dataclass
class Feed:
    served: Served
    session: Session
    clock: FrozenClock
    lab: Actor
    patient: Actor

    def post(self, bundle: dict[str, Any]) -> Any:
        auth = bearer(
            self.served, self.session, self.lab, self.clock, "system/DocumentReference.cru"
        )
        return self.served.client.post("/fhir", json=bundle, headers={**FHIR_JSON, **auth})

    def retrieve(self, document: Document, **headers: str) -> Any:
        resource_id = document_resource_id(document.patient_id, document.id)
        auth = bearer(self.served, self.session, self.patient, self.clock, "patient/*.rs")
        return self.served.client.get(f"/fhir/Binary/{resource_id}", headers={**auth, **headers})

    def publish(self, mime_type: str, content: bytes) -> Document:
        """A document published through the service, as a feed that predates the checks did."""
        assert self.patient.person_id is not None
        return publication.add_document(
            self.session,
            open_dossier(
                self.session,
                self.lab,
                self.patient.person_id,
                purposes.PUBLISH_DOCUMENTS,
                clock=self.clock,
            ),
            self.served.platform.store,
            metadata=lab_metadata(self.clock, mime_type=mime_type),
            content=content,
        )

    def documents(self) -> list[Document]:
        return list(self.session.scalars(select(Document)))


@pytest.fixture
def feed(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Feed]:
    patient = make_patient(session, clock)
    lab = system_actor(make_organisation(session, clock), scopes="system/DocumentReference.cru")
    with serve(session, store, clock, wrapper) as served:
        yield Feed(served, session, clock, lab, patient_actor(patient))


def _bundle_of(feed: Feed, mime_type: str, content: bytes, **changes: Any) -> dict[str, Any]:
    bundle = provide_bundle(f"Patient/{feed.patient.person_id}", contents=[content], **changes)
    bundle["entry"][1]["resource"]["content"][0]["attachment"]["contentType"] = mime_type
    return bundle


class TestImagesAreWhatTheyClaim:
    @pytest.mark.parametrize(
        ("mime_type", "content"),
        [("image/png", PNG), ("image/jpeg", JPEG), ("image/gif", GIF), ("image/webp", WEBP)],
    )
    def test_a_true_image_is_published(self, feed: Feed, mime_type: str, content: bytes) -> None:
        response = feed.post(_bundle_of(feed, mime_type, content))
        assert response.status_code == 200, response.text

    @pytest.mark.parametrize(
        ("mime_type", "content"),
        [("image/png", HTML), ("image/png", JPEG), ("image/jpeg", SVG), ("image/gif", b"GIF8")],
    )
    def test_a_false_image_is_refused_naming_the_content_type(
        self, feed: Feed, mime_type: str, content: bytes
    ) -> None:
        bundle = _bundle_of(feed, mime_type, content)

        response = feed.post(bundle)

        assert response.status_code == 422, response.text
        issue = response.json()["issue"][0]
        assert issue["expression"] == ["Bundle.entry[1].resource.content[0].attachment.contentType"]
        assert mime_type in issue["diagnostics"]
        assert feed.documents() == []

    def test_every_way_in_is_refused_by_the_service(self, feed: Feed) -> None:
        with pytest.raises(InvalidDocument) as refused:
            feed.publish("image/png", HTML)
        assert refused.value.field == "mime_type"


class TestRemoteSubjects:
    @pytest.mark.parametrize(("remote_on", "index"), [((1,), 1), ((0,), 0), ((0, 1), 1)])
    def test_another_servers_patient_is_refused_naming_the_field(
        self, feed: Feed, remote_on: tuple[int, ...], index: int
    ) -> None:
        # The same id as a Carnet patient's: still another server's patient.
        remote = f"https://other.example/fhir/Patient/{feed.patient.person_id}"
        bundle = provide_bundle(f"Patient/{feed.patient.person_id}")
        for entry in remote_on:
            bundle["entry"][entry]["resource"]["subject"] = {"reference": remote}

        response = feed.post(bundle)

        assert response.status_code == 422, response.text
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["expression"] == [f"Bundle.entry[{index}].resource.subject"]
        assert feed.documents() == []

    def test_carnets_own_absolute_patient_url_is_its_patient(self, feed: Feed) -> None:
        own = f"http://testserver/fhir/Patient/{feed.patient.person_id}"
        response = feed.post(provide_bundle(own))
        assert response.status_code == 200, response.text
        assert len(feed.documents()) == 1


class TestRetrievedBytesCannotRun:
    @pytest.mark.parametrize(
        ("mime_type", "content"),
        [("text/html", HTML), ("image/svg+xml", SVG), ("application/xml", b"<a/>")],
    )
    def test_active_content_is_a_sandboxed_attachment(
        self, feed: Feed, mime_type: str, content: bytes
    ) -> None:
        response = feed.retrieve(feed.publish(mime_type, content))
        assert response.status_code == 200
        assert response.content == content
        assert response.headers["content-security-policy"] == "sandbox"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["content-disposition"] == "attachment"

    def test_a_passive_type_is_sandboxed_but_not_an_attachment(self, feed: Feed) -> None:
        response = feed.retrieve(feed.publish("image/png", PNG))
        assert response.headers["content-security-policy"] == "sandbox"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "content-disposition" not in response.headers

    def test_the_binary_resource_is_sandboxed_too(self, feed: Feed) -> None:
        document = feed.publish("text/html", HTML)
        response = feed.retrieve(document, Accept="application/fhir+json")
        assert response.json()["resourceType"] == "Binary"
        assert response.headers["content-security-policy"] == "sandbox"
        assert response.headers["x-content-type-options"] == "nosniff"
