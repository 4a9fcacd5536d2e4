"""Who the patient's access history names: themself, their representative, or another
patient — never another person as "the patient" or "a representative"."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.models import RepresentationKind
from carnet.access.representation import record_representation
from carnet.audit import service as audit_trail
from carnet.clock import FrozenClock
from carnet.documents import reading
from carnet.documents.models import Document
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.auth import Served, make_patient_login
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient
from factories.portal import sign_in_patient


def _refused(session: Session, clock: FrozenClock, attempt: Callable[[], object]) -> None:
    """Run a refused attempt and record it as its way in would."""
    with pytest.raises(AccessDenied) as denied:
        attempt()
    assert denied.value.refusal is not None
    audit_trail.record_refusal(session, denied.value.refusal, clock=clock)


def _history_rows(web: Served) -> str:
    page = web.client.get("/portal/patient/history")
    assert page.status_code == 200
    return page.text


def _signed_in_with_a_document(
    web: Served,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> tuple[Patient, Document]:
    login = make_patient_login(session, clock, wrapper)
    sign_in_patient(web.client, login, clock)
    author = professional_actor(make_professional(session, clock, family="Schmit"))
    document = make_document(session, store, clock, actor=author, patient_id=login.patient.id)
    return login.patient, document


def test_another_patients_refused_attempt_is_named_another_patient(
    web: Served,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> None:
    patient, document = _signed_in_with_a_document(web, session, store, clock, wrapper)
    someone = patient_actor(make_patient(session, clock, given="Zoé"))
    _refused(
        session,
        clock,
        lambda: reading.get_document(
            session,
            open_dossier(session, someone, patient.id, purposes.READ_DOCUMENTS, clock=clock),
            document.id,
        ),
    )

    text = _history_rows(web)

    assert "Another patient" in text
    assert "The patient" not in text
    assert "A representative" not in text


def test_a_false_claim_to_represent_is_another_patient_a_true_one_a_representative(
    web: Served,
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
) -> None:
    patient, _ = _signed_in_with_a_document(web, session, store, clock, wrapper)
    claimant = make_patient(session, clock, given="Zoé")
    parent = make_patient(session, clock, given="Marie")
    record_representation(
        session,
        open_dossier(
            session, operator_actor(), patient.id, purposes.RECORD_REPRESENTATION, clock=clock
        ),
        parent.id,
        kind=RepresentationKind.GUARDIAN,
    )
    _refused(
        session,
        clock,
        lambda: reading.list_documents(
            session,
            open_dossier(
                session,
                patient_actor(claimant, acting_for=patient),
                patient.id,
                purposes.FIND_DOCUMENTS,
                clock=clock,
            ),
        ),
    )
    reading.list_documents(
        session,
        open_dossier(
            session,
            patient_actor(parent, acting_for=patient),
            patient.id,
            purposes.FIND_DOCUMENTS,
            clock=clock,
        ),
    )

    text = _history_rows(web)

    assert text.count("Another patient") == 1
    assert text.count("A representative") == 1
