"""Who tells the patient what: the services that raise notices, and the server that mails them."""

from __future__ import annotations

import time
import uuid
from email.message import EmailMessage

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.app import create_app
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.directory.models import Profession
from carnet.documents import reading
from carnet.notifications import internal as notifications_internal
from carnet.notifications.models import Notification, NotificationKind
from carnet.platform import Platform
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor, system_actor
from factories.auth import settings
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient
from notifications.mailserver import SmtpServer


def _kinds(session: Session, patient_id: uuid.UUID) -> list[str]:
    return [
        n.kind.value for n in reversed(notifications_internal.inbox(session, patient_id=patient_id))
    ]


def test_new_documents_from_others_are_announced(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock
) -> None:
    patient = make_patient(session, clock)
    lab = make_organisation(session, clock)
    make_document(session, store, clock, actor=system_actor(lab), patient_id=patient.id)
    make_document(session, store, clock, actor=patient_actor(patient), patient_id=patient.id)
    assert _kinds(session, patient.id) == [NotificationKind.NEW_DOCUMENT.value]
    (notice,) = notifications_internal.inbox(session, patient_id=patient.id)
    assert lab.name in notice.body


def test_first_access_by_a_professional_is_told_once(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock
) -> None:
    patient = make_patient(session, clock)
    gp = make_professional(session, clock)
    me, doctor = patient_actor(patient), professional_actor(gp)
    access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=gp.id,
    )
    reading.list_documents(
        session, open_dossier(session, doctor, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
    )
    reading.list_documents(
        session, open_dossier(session, doctor, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
    )
    assert _kinds(session, patient.id) == [NotificationKind.FIRST_ACCESS.value]


def test_emergency_access_is_told_to_the_patient_and_the_treating_doctor(
    session: Session, clock: FrozenClock
) -> None:
    patient = make_patient(session, clock)
    gp = make_professional(session, clock)
    access_rules.designate_treating_doctor(
        session,
        open_dossier(
            session,
            patient_actor(patient),
            patient.id,
            purposes.DESIGNATE_TREATING_DOCTOR,
            clock=clock,
        ),
        gp.id,
    )
    emergency = professional_actor(
        make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
    )
    access_care.break_glass(
        session,
        open_dossier(session, emergency, patient.id, purposes.BREAK_GLASS, clock=clock),
        reason="Road accident, unconscious",
    )
    sent = session.scalars(select(Notification).where(Notification.patient_id == patient.id))
    kinds = {(n.recipient_kind, n.kind.value, n.recipient_professional_id) for n in sent}
    assert kinds == {
        ("patient", "emergency-access", None),
        ("professional", "emergency-access", gp.id),
    }


def test_the_server_mails_an_emergency_notice_within_seconds(
    committing_engine: Engine,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    smtp_server: SmtpServer,
) -> None:
    sessions = session_factory(committing_engine)
    with unit_of_work(sessions) as session:
        patient_id = make_patient(session, clock, email="lea@example.lu").id
        emergency = professional_actor(
            make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        )
    platform = Platform(
        settings=settings(smtp_url=f"smtp://127.0.0.1:{smtp_server.port}"),
        engine=committing_engine,
        sessions=sessions,
        store=store,
        clock=clock,
        key_wrapper=wrapper,
    )
    with TestClient(create_app(platform=platform)):
        with unit_of_work(sessions) as session:
            access_care.break_glass(
                session,
                open_dossier(session, emergency, patient_id, purposes.BREAK_GLASS, clock=clock),
                reason="Road accident, unconscious",
            )
        messages: list[EmailMessage] = []
        deadline = time.monotonic() + 15
        while not messages and time.monotonic() < deadline:
            time.sleep(0.2)
            messages = smtp_server.messages
    (message,) = messages
    assert message["To"] == "lea@example.lu"
    # The reason stays in the inbox: e-mail is no place for clinical details.
    assert "Road accident" not in message.get_content()
    assert "urgence" in message.get_content()
