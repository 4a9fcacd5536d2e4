"""Closure keeps each author's own documents and nothing else; representatives come and go."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, AccessRuleNotFound
from carnet.access.models import GrantLevel, RepresentationKind
from carnet.access.representation import record_representation, revoke_representation
from carnet.access.rules import grant_access
from carnet.audit.models import AuditAction, AuditEvent
from carnet.clock import FrozenClock
from carnet.documents import reading
from carnet.lifecycle import service
from carnet.storage import FilesystemDocumentStore
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient


class TestClosure:
    def test_after_closure_an_author_reads_their_own_document_and_nobody_else_does(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        me = patient_actor(patient)
        writer = professional_actor(make_professional(session, clock, family="Hoffmann"))
        colleague = make_professional(session, clock, family="Muller")
        reader = professional_actor(colleague)
        own = make_document(session, store, clock, actor=writer, patient_id=patient.id)
        others = make_document(session, store, clock, actor=reader, patient_id=patient.id)
        grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.NORMAL,
            professional_id=colleague.id,
        )
        assert reading.get_document(
            session,
            open_dossier(session, reader, patient.id, purposes.READ_DOCUMENTS, clock=clock),
            own.id,
        )

        service.close(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )

        document, content = reading.read_content(
            session,
            open_dossier(session, writer, patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock),
            own.id,
            store,
        )
        assert (document.id, content) == (own.id, store.get(own.content_key))
        listed = reading.list_documents(
            session, open_dossier(session, writer, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
        )
        assert [d.id for d in listed.documents] == [own.id]  # not the colleague's
        with pytest.raises(AccessDenied):
            reading.get_document(
                session,
                open_dossier(session, reader, patient.id, purposes.READ_DOCUMENTS, clock=clock),
                own.id,
            )
        assert reading.get_document(
            session,
            open_dossier(session, reader, patient.id, purposes.READ_DOCUMENTS, clock=clock),
            others.id,
        )
        with pytest.raises(AccessDenied):
            reading.list_documents(
                session, open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
            )

    def test_a_reopened_dossier_is_readable_again(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        me = patient_actor(patient)
        writer = professional_actor(make_professional(session, clock))
        make_document(session, store, clock, actor=writer, patient_id=patient.id)
        service.close(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )
        service.activate(
            session, open_dossier(session, me, patient.id, purposes.MANAGE_DOSSIER, clock=clock)
        )
        assert (
            reading.list_documents(
                session, open_dossier(session, me, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
            ).total
            == 1
        )


class TestRepresentatives:
    def test_a_parents_access_starts_when_recorded_and_ends_at_majority(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        parent = make_patient(session, clock)
        child = make_patient(session, clock, birth_date=dt.date(2010, 6, 3), given="Mia")
        for_child = patient_actor(parent, acting_for=child)
        writer = professional_actor(make_professional(session, clock))
        make_document(session, store, clock, actor=writer, patient_id=child.id)
        with pytest.raises(AccessDenied):
            reading.list_documents(
                session,
                open_dossier(session, for_child, child.id, purposes.FIND_DOCUMENTS, clock=clock),
            )

        record_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            parent.id,
            kind=RepresentationKind.PARENT,
        )
        assert (
            reading.list_documents(
                session,
                open_dossier(session, for_child, child.id, purposes.FIND_DOCUMENTS, clock=clock),
            ).total
            == 1
        )

        clock.advance(dt.datetime(2028, 6, 3, tzinfo=dt.UTC) - clock.now())  # 18th birthday
        with pytest.raises(AccessDenied):
            reading.list_documents(
                session,
                open_dossier(session, for_child, child.id, purposes.FIND_DOCUMENTS, clock=clock),
            )

    def test_a_guardianship_ends_when_revoked_and_both_are_recorded(
        self, session: Session, clock: FrozenClock
    ) -> None:
        guardian = make_patient(session, clock)
        ward = make_patient(session, clock, given="Paul")
        link = record_representation(
            session,
            open_dossier(
                session, operator_actor(), ward.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            guardian.id,
            kind=RepresentationKind.GUARDIAN,
        )
        for_ward = patient_actor(guardian, acting_for=ward)
        service.dossier_history(
            session, open_dossier(session, for_ward, ward.id, purposes.MANAGE_DOSSIER, clock=clock)
        )

        clock.advance(dt.timedelta(days=40))
        revoke_representation(
            session,
            open_dossier(
                session,
                operator_actor("operator-2"),
                ward.id,
                purposes.RECORD_REPRESENTATION,
                clock=clock,
            ),
            link.id,
        )
        assert (link.revoked_at, link.revoked_by) == (clock.now(), "operator:operator-2")
        with pytest.raises(AccessDenied):
            service.dossier_history(
                session,
                open_dossier(session, for_ward, ward.id, purposes.MANAGE_DOSSIER, clock=clock),
            )
        events = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.chain_id == ward.id,
                AuditEvent.action == AuditAction.REPRESENTATION,
            )
            .order_by(AuditEvent.seq)
        ).all()
        assert [json.loads(e.details).get("revoked", False) for e in events] == [False, True]
        with pytest.raises(AccessRuleNotFound):
            revoke_representation(
                session,
                open_dossier(
                    session, operator_actor(), ward.id, purposes.RECORD_REPRESENTATION, clock=clock
                ),
                link.id,
            )

    def test_only_the_agency_revokes_a_representation(
        self, session: Session, clock: FrozenClock
    ) -> None:
        guardian = make_patient(session, clock)
        ward = make_patient(session, clock)
        link = record_representation(
            session,
            open_dossier(
                session, operator_actor(), ward.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            guardian.id,
            kind=RepresentationKind.GUARDIAN,
        )
        with pytest.raises(AccessDenied):
            revoke_representation(
                session,
                open_dossier(
                    session,
                    patient_actor(guardian, acting_for=ward),
                    ward.id,
                    purposes.RECORD_REPRESENTATION,
                    clock=clock,
                ),
                link.id,
            )
