"""Marking a document entered-in-error — and its refusals (``documents.visibility``)."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.clock import FrozenClock
from carnet.documents import reading, visibility
from carnet.documents.errors import (
    DocumentNotCurrent,
)
from carnet.documents.models import DocumentStatus
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.documents import make_document


class TestMarkEnteredInError:
    def test_marks_and_keeps(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        document = make_document(session, store, clock, actor=author, patient_id=patient.id)
        visibility.mark_entered_in_error(
            session,
            open_dossier(session, author, patient.id, purposes.MANAGE_DOCUMENT, clock=clock),
            document.id,
        )
        session.expire_all()
        stored = reading.get_document(
            session,
            open_dossier(session, author, patient.id, purposes.READ_DOCUMENTS, clock=clock),
            document.id,
        )
        assert stored.status is DocumentStatus.ENTERED_IN_ERROR
        with pytest.raises(DocumentNotCurrent):
            visibility.mark_entered_in_error(
                session,
                open_dossier(session, author, patient.id, purposes.MANAGE_DOCUMENT, clock=clock),
                document.id,
            )
