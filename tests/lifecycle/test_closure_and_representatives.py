"""Closure keeps each author's own documents and nothing else; representatives come and go."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

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
            me,
            patient.id,
            level=GrantLevel.NORMAL,
            professional_id=colleague.id,
            clock=clock,
        )
        assert reading.get_document(session, reader, patient.id, own.id, clock=clock)

        service.close(session, me, patient.id, clock=clock)

        document, content = reading.read_content(
            session, store, writer, patient.id, own.id, clock=clock
        )
        assert (document.id, content) == (own.id, store.get(own.content_key))
        listed = reading.list_documents(session, writer, patient.id, clock=clock)
        assert [d.id for d in listed.documents] == [own.id]  # not the colleague's
        with pytest.raises(AccessDenied):
            reading.get_document(session, reader, patient.id, own.id, clock=clock)
        assert reading.get_document(session, reader, patient.id, others.id, clock=clock)
        with pytest.raises(AccessDenied):
            reading.list_documents(session, me, patient.id, clock=clock)

    def test_a_reopened_dossier_is_readable_again(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        me = patient_actor(patient)
        writer = professional_actor(make_professional(session, clock))
        make_document(session, store, clock, actor=writer, patient_id=patient.id)
        service.close(session, me, patient.id, clock=clock)
        service.activate(session, me, patient.id, clock=clock)
        assert reading.list_documents(session, me, patient.id, clock=clock).total == 1


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
            reading.list_documents(session, for_child, child.id, clock=clock)

        record_representation(
            session,
            operator_actor(),
            child.id,
            parent.id,
            kind=RepresentationKind.PARENT,
            clock=clock,
        )
        assert reading.list_documents(session, for_child, child.id, clock=clock).total == 1

        clock.advance(dt.datetime(2028, 6, 3, tzinfo=dt.UTC) - clock.now())  # 18th birthday
        with pytest.raises(AccessDenied):
            reading.list_documents(session, for_child, child.id, clock=clock)

    def test_a_guardianship_ends_when_revoked_and_both_are_recorded(
        self, session: Session, clock: FrozenClock
    ) -> None:
        guardian = make_patient(session, clock)
        ward = make_patient(session, clock, given="Paul")
        link = record_representation(
            session,
            operator_actor(),
            ward.id,
            guardian.id,
            kind=RepresentationKind.GUARDIAN,
            clock=clock,
        )
        for_ward = patient_actor(guardian, acting_for=ward)
        service.dossier_history(session, for_ward, ward.id, clock=clock)

        clock.advance(dt.timedelta(days=40))
        revoke_representation(session, operator_actor("operator-2"), ward.id, link.id, clock=clock)
        assert (link.revoked_at, link.revoked_by) == (clock.now(), "operator:operator-2")
        with pytest.raises(AccessDenied):
            service.dossier_history(session, for_ward, ward.id, clock=clock)
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
            revoke_representation(session, operator_actor(), ward.id, link.id, clock=clock)

    def test_only_the_agency_revokes_a_representation(
        self, session: Session, clock: FrozenClock
    ) -> None:
        guardian = make_patient(session, clock)
        ward = make_patient(session, clock)
        link = record_representation(
            session,
            operator_actor(),
            ward.id,
            guardian.id,
            kind=RepresentationKind.GUARDIAN,
            clock=clock,
        )
        with pytest.raises(AccessDenied):
            revoke_representation(
                session, patient_actor(guardian, acting_for=ward), ward.id, link.id, clock=clock
            )
