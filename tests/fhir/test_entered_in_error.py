"""An author's correction over FHIR: ``PATCH /fhir/DocumentReference/{id}`` marking it
entered-in-error (http://hl7.org/fhir/R4/http.html#patch with a JSON Patch, RFC 6902).

The document stays, marked; only its author may, and only this one change is taken.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B.documentreference import DocumentReference
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.documents.models import Document, DocumentStatus
from carnet.fhir.ids import document_resource_id
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient

JSON_PATCH = {"Content-Type": "application/json-patch+json"}
WITHDRAWAL = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]


@dataclass
class Published:
    served: Served
    session: Session
    clock: FrozenClock
    document: Document
    author: Actor
    colleague: Actor

    @property
    def url(self) -> str:
        resource_id = document_resource_id(self.document.patient_id, self.document.id)
        return f"/fhir/DocumentReference/{resource_id}"

    def patch(self, body: Any, who: Actor | None = None, if_match: str | None = None) -> Any:
        headers = {"If-Match": if_match} if if_match else {}
        return self.served.client.patch(
            self.url,
            content=json.dumps(body),
            headers={
                **JSON_PATCH,
                **bearer(self.served, self.session, who or self.author, self.clock, "user/*.cruds"),
                **headers,
            },
        )

    def status(self) -> DocumentStatus:
        self.session.refresh(self.document)
        return self.document.status

    def events(self) -> list[AuditEvent]:
        return list(
            self.session.scalars(
                select(AuditEvent)
                .where(
                    AuditEvent.chain_id == self.document.patient_id,
                    AuditEvent.action == AuditAction.STATUS_CHANGE,
                )
                .order_by(AuditEvent.seq)
            )
        )


@pytest.fixture
def published(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[Published]:
    patient = make_patient(session, clock)
    author = professional_actor(make_professional(session, clock, family="Kieffer"))
    colleague = professional_actor(make_professional(session, clock, family="Schmit"))
    # The colleague reads the dossier (a grant), but did not write the document.
    access_rules.grant_access(
        session,
        open_dossier(
            session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
        ),
        level=GrantLevel.EXTENDED,
        professional_id=colleague.professional_id,
    )
    document = make_document(session, store, clock, actor=author, patient_id=patient.id)
    with serve(session, store, clock, wrapper) as served:
        yield Published(served, session, clock, document, author, colleague)


class TestEnteredInError:
    def test_the_author_withdraws_it_and_gets_the_new_metadata(self, published: Published) -> None:
        read = published.served.client.get(
            published.url,
            headers=bearer(
                published.served, published.session, published.author, published.clock, "user/*.rs"
            ),
        )
        published.clock.advance(dt.timedelta(minutes=5))
        answer = published.patch(WITHDRAWAL, if_match=read.headers["etag"])
        assert answer.status_code == 200, answer.text
        resource = DocumentReference.model_validate(answer.json())
        assert resource.status == "entered-in-error"
        assert answer.headers["etag"] != read.headers["etag"]
        assert published.status() is DocumentStatus.ENTERED_IN_ERROR
        [event] = published.events()
        assert event.outcome is AuditOutcome.ALLOWED

    def test_a_colleague_who_reads_it_cannot_withdraw_it(self, published: Published) -> None:
        answer = published.patch(WITHDRAWAL, who=published.colleague)
        assert answer.status_code == 404
        assert published.status() is DocumentStatus.CURRENT
        assert [e.outcome for e in published.events()] == [AuditOutcome.DENIED]

    def test_twice_is_a_conflict(self, published: Published) -> None:
        assert published.patch(WITHDRAWAL).status_code == 200
        again = published.patch(WITHDRAWAL)
        assert again.status_code == 409
        assert again.json()["resourceType"] == "OperationOutcome"

    def test_an_old_version_is_412_and_nothing_changes(self, published: Published) -> None:
        answer = published.patch(WITHDRAWAL, if_match='W/"1"')
        assert answer.status_code == 412
        assert published.status() is DocumentStatus.CURRENT

    @pytest.mark.parametrize(
        "body",
        [
            [{"op": "replace", "path": "/status", "value": "superseded"}],
            [{"op": "replace", "path": "/description", "value": "x"}],
            {"status": "entered-in-error"},
            [],
        ],
    )
    def test_any_other_change_is_422(self, published: Published, body: Any) -> None:
        answer = published.patch(body)
        assert answer.status_code == 422
        assert answer.json()["issue"][0]["expression"] == ["Patch"]
        assert published.status() is DocumentStatus.CURRENT

    def test_a_body_that_is_not_a_json_patch_is_415(self, published: Published) -> None:
        answer = published.served.client.patch(
            published.url,
            content=json.dumps(WITHDRAWAL),
            headers={
                "Content-Type": "application/fhir+json",
                **bearer(
                    published.served,
                    published.session,
                    published.author,
                    published.clock,
                    "user/*.cruds",
                ),
            },
        )
        assert answer.status_code == 415

    def test_an_unknown_document_is_404(self, published: Published) -> None:
        answer = published.served.client.patch(
            "/fhir/DocumentReference/"
            + document_resource_id(published.document.patient_id, uuid.uuid4()),
            content=json.dumps(WITHDRAWAL),
            headers={
                **JSON_PATCH,
                **bearer(
                    published.served,
                    published.session,
                    published.author,
                    published.clock,
                    "user/*.cruds",
                ),
            },
        )
        assert answer.status_code == 404
