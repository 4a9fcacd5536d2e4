"""How many statements a professional's consultation costs: the hot paths' round trips, counted.

Not a timing: a count, the same on every machine. On PostgreSQL a read, a find and a retrieve
each take the policy (one statement), the document or the page, and the audit record (two: the
chain head advanced, then the event appended and the head sealed in one WITH). The token's
revocation is answered from memory and a pooled connection is not pinged before use. A change
that adds a round trip to every consultation should fail here, and say so on purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from carnet.access import service as access
from carnet.access.actors import Actor
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.directory.models import Profession
from carnet.fhir.ids import document_resource_id
from carnet.storage import FilesystemDocumentStore, KeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient

# The audit record's event and seal are one statement on PostgreSQL, two on SQLite.
EXPECTED = {"postgresql": 4, "sqlite": 5}


@dataclass
class Dossier:
    served: Served
    session: Session
    clock: FrozenClock
    gp: Actor
    patient_id: uuid.UUID
    document_id: uuid.UUID

    def token(self, actor: Actor) -> dict[str, str]:
        return bearer(self.served, self.session, actor, self.clock, "user/*.rs")


@pytest.fixture
def dossier(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: KeyWrapper
) -> Iterator[Dossier]:
    patient = make_patient(session, clock)
    lab = make_organisation(session, clock)
    biologist = make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
    )
    gp = professional_actor(make_professional(session, clock))
    document = make_document(
        session, store, clock, actor=professional_actor(biologist), patient_id=patient.id
    )
    access.grant_access(
        session,
        patient_actor(patient),
        patient.id,
        level=GrantLevel.NORMAL,
        professional_id=gp.professional_id,
        clock=clock,
    )
    with serve(session, store, clock, wrapper) as served:
        yield Dossier(served, session, clock, gp, patient.id, document.id)


@contextmanager
def _statements(d: Dossier) -> Iterator[list[str]]:
    engine = d.session.get_bind().engine
    seen: list[str] = []

    def count(*args: Any) -> None:
        statement = str(args[2])
        if not statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _consult(d: Dossier, path: str, **params: str) -> list[str]:
    headers = d.token(d.gp)
    # The first consultation also tells the patient: that one costs more, once.
    assert d.served.client.get(path, params=params, headers=headers).status_code == 200
    with _statements(d) as seen:
        assert d.served.client.get(path, params=params, headers=headers).status_code == 200
    return seen


def _dialect(d: Dossier) -> str:
    return d.session.get_bind().dialect.name


def test_a_read_costs_the_policy_the_document_and_the_audit(dossier: Dossier) -> None:
    resource_id = document_resource_id(dossier.patient_id, dossier.document_id)
    seen = _consult(dossier, f"/fhir/DocumentReference/{resource_id}")
    assert len(seen) == EXPECTED[_dialect(dossier)], "\n".join(seen)
    assert seen[0].startswith("SELECT dossiers.state")


def test_a_find_costs_the_policy_the_page_and_the_audit(dossier: Dossier) -> None:
    seen = _consult(dossier, "/fhir/DocumentReference", patient=f"Patient/{dossier.patient_id}")
    assert len(seen) == EXPECTED[_dialect(dossier)], "\n".join(seen)


def test_a_retrieve_costs_the_policy_the_document_and_the_audit(dossier: Dossier) -> None:
    resource_id = document_resource_id(dossier.patient_id, dossier.document_id)
    seen = _consult(dossier, f"/fhir/Binary/{resource_id}")
    assert len(seen) == EXPECTED[_dialect(dossier)], "\n".join(seen)
