"""Reading documents: list and read content — and their refusals (``documents.reading``)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.clock import FrozenClock
from carnet.documents import reading, visibility
from carnet.documents.errors import (
    InvalidDocument,
)
from carnet.patients.models import Patient
from carnet.storage import ContentCorrupted, FilesystemDocumentStore
from factories.actors import professional_actor
from factories.directory import make_professional
from factories.documents import PATIENT_SUMMARY, make_document
from factories.patients import make_patient


def _store_files(store: FilesystemDocumentStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


class TestListDocuments:
    def test_newest_first_with_filters(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
        me: Actor,
    ) -> None:
        gp = make_professional(session, clock)
        old = make_document(
            session,
            store,
            clock,
            actor=author,
            patient_id=patient.id,
            created_at=clock.now() - dt.timedelta(days=30),
        )
        new = make_document(
            session, store, clock, actor=professional_actor(gp), patient_id=patient.id
        )
        summary = make_document(
            session,
            store,
            clock,
            actor=author,
            patient_id=patient.id,
            type_system=PATIENT_SUMMARY[0],
            type_code=PATIENT_SUMMARY[1],
            created_at=clock.now() - dt.timedelta(days=10),
        )
        other = make_patient(session, clock, given="Paul")
        make_document(session, store, clock, actor=author, patient_id=other.id)

        assert [
            d.id
            for d in reading.list_documents(
                session, open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
            ).documents
        ] == [
            new.id,
            summary.id,
            old.id,
        ]
        by_type = reading.DocumentFilter(type_codes=[PATIENT_SUMMARY[1]])
        assert [
            d.id
            for d in reading.list_documents(
                session,
                open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                by_type,
            ).documents
        ] == [summary.id]
        by_class = reading.DocumentFilter(class_codes=["laboratory"])
        assert [
            d.id
            for d in reading.list_documents(
                session,
                open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                by_class,
            ).documents
        ] == [
            new.id,
            old.id,
        ]
        recent = reading.DocumentFilter(
            created_from=clock.now() - dt.timedelta(days=15), created_to=clock.now()
        )
        assert [
            d.id
            for d in reading.list_documents(
                session,
                open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                recent,
            ).documents
        ] == [
            new.id,
            summary.id,
        ]
        by_author = reading.DocumentFilter(author_professional_id=gp.id)
        assert [
            d.id
            for d in reading.list_documents(
                session,
                open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                by_author,
            ).documents
        ] == [new.id]
        page = reading.DocumentFilter(limit=1, offset=1)
        assert [
            d.id
            for d in reading.list_documents(
                session,
                open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                page,
            ).documents
        ] == [summary.id]

    def test_status_filter(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
        me: Actor,
    ) -> None:
        kept = make_document(session, store, clock, actor=author, patient_id=patient.id)
        withdrawn = make_document(session, store, clock, actor=author, patient_id=patient.id)
        visibility.mark_entered_in_error(
            session,
            open_dossier(session, author, patient.id, purposes.MANAGE_DOCUMENT, clock=clock),
            withdrawn.id,
        )
        assert [
            d.id
            for d in reading.list_documents(
                session, open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
            ).documents
        ] == [kept.id]
        everything = reading.DocumentFilter(statuses=())
        # The patient no longer sees what was withdrawn; its author still does.
        assert (
            len(
                reading.list_documents(
                    session,
                    open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                    everything,
                ).documents
            )
            == 1
        )
        assert (
            len(
                reading.list_documents(
                    session,
                    open_dossier(session, author, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                    everything,
                ).documents
            )
            == 2
        )

    @pytest.mark.parametrize(
        ("limit", "offset", "field"), [(0, 0, "limit"), (1001, 0, "limit"), (10, -1, "offset")]
    )
    def test_bad_paging(
        self,
        session: Session,
        clock: FrozenClock,
        patient: Patient,
        me: Actor,
        limit: int,
        offset: int,
        field: str,
    ) -> None:
        with pytest.raises(InvalidDocument) as caught:
            reading.list_documents(
                session,
                open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
                reading.DocumentFilter(limit=limit, offset=offset),
            )
        assert caught.value.field == field


class TestReadContent:
    def test_unknown_document(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        with pytest.raises(AccessDenied, match="No such dossier or document"):
            reading.read_content(
                session,
                open_dossier(session, author, patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock),
                uuid.uuid4(),
                store,
            )

    def test_document_of_another_patient_is_not_found(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        other = make_patient(session, clock, given="Paul")
        document = make_document(session, store, clock, actor=author, patient_id=other.id)
        with pytest.raises(AccessDenied):
            reading.read_content(
                session,
                open_dossier(session, author, patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock),
                document.id,
                store,
            )

    def test_tampered_content_is_detected(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        patient: Patient,
        author: Actor,
    ) -> None:
        document = make_document(session, store, clock, actor=author, patient_id=patient.id)
        (path,) = _store_files(store)
        raw = bytearray(path.read_bytes())
        raw[-5] ^= 0x01
        path.write_bytes(bytes(raw))
        with pytest.raises(ContentCorrupted):
            reading.read_content(
                session,
                open_dossier(session, author, patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock),
                document.id,
                store,
            )
