"""A professional uploads a CDA document through the portal: it is checked as ITI-65's are, its
creation time is its header's, and a disagreement is refused on the form, naming both values."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.documents.models import Document
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor
from factories.auth import cheap_password_hashing, make_professional_login, serve
from factories.cda import CCD, fitted
from factories.portal import csrf_of, sign_in_professional


@dataclass
class Desk:
    client: httpx.Client
    session: Session
    patient: Patient
    matricule: str

    def upload(self, content: bytes, document_type: str) -> httpx.Response:
        url = f"/portal/professional/patients/{self.patient.id}/upload"
        form = self.client.get(url)
        assert form.status_code == 200, form.text
        return self.client.post(
            url,
            data={
                "csrf": csrf_of(form.text),
                "type": document_type,
                "title": "Patient Chart Summary",
                "confidentiality": "N",
            },
            files={"file": ("ccd.xml", content, "text/xml")},
            follow_redirects=False,
        )

    def documents(self) -> list[Document]:
        return list(
            self.session.scalars(select(Document).where(Document.patient_id == self.patient.id))
        )


@pytest.fixture
def desk(
    monkeypatch: pytest.MonkeyPatch,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    patient: Patient,
    matricule: str,
) -> Iterator[Desk]:
    cheap_password_hashing(monkeypatch)
    login = make_professional_login(session, clock, wrapper)
    access_rules.grant_access(
        session,
        open_dossier(
            session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
        ),
        level=GrantLevel.NORMAL,
        professional_id=login.professional.id,
    )
    with serve(session, store, clock, wrapper) as served:
        sign_in_professional(served.client, login, clock)
        yield Desk(served.client, session, patient, matricule)


def test_an_uploaded_cda_is_dated_by_its_header(desk: Desk) -> None:
    answer = desk.upload(fitted(CCD.read_bytes(), matricule=desk.matricule), "episode-summary")

    assert answer.status_code == 303, answer.text
    [stored] = desk.documents()
    assert stored.created_at == dt.datetime(2013, 8, 15, 18, 30, tzinfo=dt.UTC)
    assert stored.type_code == "34133-9"


def test_an_uploaded_cda_of_another_type_is_refused_naming_both(desk: Desk) -> None:
    answer = desk.upload(fitted(CCD.read_bytes(), matricule=desk.matricule), "consultation-note")

    assert answer.status_code == 422
    assert "http://loinc.org|11488-4" in answer.text
    assert "http://loinc.org|34133-9" in answer.text
    assert desk.documents() == []
