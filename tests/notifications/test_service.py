"""Notification services: notices in the patient's language, preferences, digests, the inbox,
and the e-mail outbox delivered to a real local SMTP server."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.directory.models import Professional
from carnet.notifications import internal as notifications_internal
from carnet.notifications import service as notifications
from carnet.notifications.errors import InvalidNotification, NotificationNotFound
from carnet.notifications.mailer import SmtpMailer
from carnet.notifications.models import (
    EmailStatus,
    NewDocuments,
    Notification,
    NotificationKind,
    RecipientKind,
)
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import Patient
from factories.directory import make_professional
from factories.patients import make_patient
from notifications.mailserver import HOST, SENDER, SmtpServer, free_port

REASON = "Patient inconscient aux urgences, allergies inconnues"


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock, email="lea.weber@example.lu")


@pytest.fixture
def doctor(session: Session, clock: FrozenClock) -> Professional:
    return make_professional(session, clock, family="Hoffmann")


def _first_access(session: Session, clock: FrozenClock, patient: Patient) -> Notification:
    return notifications.notify_first_access(
        session, patient_id=patient.id, professional_name="Dr Marc Schmit", clock=clock
    )


def _new_document(session: Session, clock: FrozenClock, patient: Patient) -> Notification | None:
    return notifications.notify_new_document(
        session,
        patient_id=patient.id,
        document_type_label_key="lab-report",
        author_name="Laboratoire Central Alzette",
        clock=clock,
    )


def _emergency(
    session: Session, clock: FrozenClock, patient: Patient, doctor: Professional | None
) -> list[Notification]:
    return notifications.notify_emergency_access(
        session,
        patient_id=patient.id,
        professional_name="Dr Anne Muller",
        reason=REASON,
        opened_at=clock.now(),
        expires_at=clock.now() + dt.timedelta(hours=24),
        treating_doctor_id=doctor.id if doctor else None,
        clock=clock,
    )


class TestNotify:
    def test_notice_waits_for_email_when_the_patient_has_an_address(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        notice = _first_access(session, clock, patient)
        assert notice.recipient_kind is RecipientKind.PATIENT
        assert notice.kind is NotificationKind.FIRST_ACCESS
        assert notice.email_status is EmailStatus.PENDING
        assert notice.email_attempts == 0
        assert notice.created_at == clock.now()
        assert notice.read_at is None
        assert notice.subject == "Un nouveau professionnel a consulté votre dossier"
        assert notice.body.startswith("Dr Marc Schmit a consulté votre dossier Carnet")
        assert notice.details() == {"professional_name": "Dr Marc Schmit"}

    def test_no_email_without_an_address(self, session: Session, clock: FrozenClock) -> None:
        notice = _first_access(session, clock, make_patient(session, clock, email=None))
        assert notice.email_status is EmailStatus.NOT_APPLICABLE

    def test_no_email_when_the_patient_switched_it_off(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        notifications_internal.set_preferences(
            session, patient_id=patient.id, new_documents="immediate", email=False, clock=clock
        )
        assert _first_access(session, clock, patient).email_status is EmailStatus.NOT_APPLICABLE

    @pytest.mark.parametrize(
        ("language", "subject"),
        [
            ("fr", "Votre dossier Carnet est ouvert"),
            ("en", "Your Carnet dossier is open"),
            ("de", "Ihre Carnet-Akte ist eröffnet"),
            ("lb", "Ihre Carnet-Akte ist eröffnet"),  # no Luxembourgish texts yet: German
            ("pt", "Votre dossier Carnet est ouvert"),  # no Portuguese texts yet: French
        ],
    )
    def test_written_in_the_patients_language(
        self, session: Session, clock: FrozenClock, language: str, subject: str
    ) -> None:
        patient = make_patient(session, clock, language=language)
        notice = notifications.notify_dossier_opened(
            session, patient_id=patient.id, opened_at=clock.now(), clock=clock
        )
        assert notice.subject == subject
        # Noon UTC on 1 June is 14:00 in Luxembourg (summer time).
        assert "01" in notice.body
        assert "14:00" in notice.body

    def test_a_text_field_missing_is_refused(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        with pytest.raises(InvalidNotification) as caught:
            notifications.notify(
                session,
                patient_id=patient.id,
                kind=NotificationKind.FIRST_ACCESS,
                data={},
                clock=clock,
            )
        assert caught.value.field == "professional_name"

    def test_a_naive_time_is_refused(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        with pytest.raises(InvalidNotification) as caught:
            notifications.notify_dossier_opened(
                session,
                patient_id=patient.id,
                opened_at=dt.datetime(2026, 6, 1),  # noqa: DTZ001 — naive on purpose
                clock=clock,
            )
        assert caught.value.field == "opened_at"

    def test_no_such_patient(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(PatientNotFound):
            notifications.notify_first_access(
                session, patient_id=uuid.uuid4(), professional_name="Dr Schmit", clock=clock
            )


class TestEmergencyAccess:
    def test_patient_and_treating_doctor_are_told(
        self, session: Session, clock: FrozenClock, patient: Patient, doctor: Professional
    ) -> None:
        to_patient, to_doctor = _emergency(session, clock, patient, doctor)

        assert to_patient.recipient_kind is RecipientKind.PATIENT
        assert to_patient.subject == "Accès d'urgence à votre dossier"
        assert "Dr Anne Muller a ouvert votre dossier Carnet en urgence" in to_patient.body
        assert "le 01/06/2026 à 14:00" in to_patient.body
        assert REASON in to_patient.body
        assert "prend fin le 02/06/2026 à 14:00" in to_patient.body
        assert to_patient.details()["reason"] == REASON
        assert to_patient.details()["opened_at"] == "2026-06-01T12:00:00+00:00"

        assert to_doctor.patient_id == patient.id
        assert to_doctor.recipient_kind is RecipientKind.PROFESSIONAL
        assert to_doctor.recipient_professional_id == doctor.id
        assert to_doctor.email_status is EmailStatus.NOT_APPLICABLE
        assert "Léa Weber, né(e) le 17/05/1980" in to_doctor.body
        assert "Dr Anne Muller" in to_doctor.body
        assert REASON in to_doctor.body

    def test_without_a_treating_doctor_only_the_patient(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        [notice] = _emergency(session, clock, patient, None)
        assert notice.recipient_kind is RecipientKind.PATIENT

    def test_in_german(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock, language="de")
        [notice] = _emergency(session, clock, patient, None)
        assert notice.subject == "Notfallzugriff auf Ihre Akte"
        assert "am 01.06.2026 um 14:00 Uhr im Notfall geöffnet" in notice.body

    def test_professionals_get_no_other_notice(
        self, session: Session, clock: FrozenClock, patient: Patient, doctor: Professional
    ) -> None:
        with pytest.raises(InvalidNotification):
            notifications.notify(
                session,
                patient_id=patient.id,
                kind=NotificationKind.FIRST_ACCESS,
                data={"professional_name": "Dr Schmit"},
                clock=clock,
                recipient_professional_id=doctor.id,
            )


class TestNewDocuments:
    def test_immediate_by_default(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        notice = _new_document(session, clock, patient)
        assert notice is not None
        assert notice.kind is NotificationKind.NEW_DOCUMENT
        assert notice.body.startswith(
            "Un document a été ajouté à votre dossier Carnet : "
            "Résultats d'analyses de laboratoire, par Laboratoire Central Alzette."
        )

    @pytest.mark.parametrize("choice", [NewDocuments.DIGEST, NewDocuments.OFF])
    def test_nothing_now_under_digest_or_off(
        self, session: Session, clock: FrozenClock, patient: Patient, choice: NewDocuments
    ) -> None:
        notifications_internal.set_preferences(
            session, patient_id=patient.id, new_documents=choice, email=True, clock=clock
        )
        assert _new_document(session, clock, patient) is None
        assert notifications_internal.inbox(session, patient_id=patient.id) == []

    def test_unknown_document_type(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        notifications_internal.set_preferences(
            session, patient_id=patient.id, new_documents="off", email=True, clock=clock
        )
        with pytest.raises(InvalidNotification) as caught:
            notifications.notify_new_document(
                session,
                patient_id=patient.id,
                document_type_label_key="horoscope",
                author_name="X",
                clock=clock,
            )
        assert caught.value.field == "document_type"


class TestDigests:
    @pytest.fixture
    def period(self, clock: FrozenClock) -> tuple[dt.datetime, dt.datetime]:
        return clock.now() - dt.timedelta(days=1), clock.now()

    def _digest_patient(
        self, session: Session, clock: FrozenClock, language: str = "fr"
    ) -> Patient:
        patient = make_patient(session, clock, language=language)
        notifications_internal.set_preferences(
            session, patient_id=patient.id, new_documents="digest", email=True, clock=clock
        )
        return patient

    def test_one_digest_per_subscriber_with_documents(
        self,
        session: Session,
        clock: FrozenClock,
        patient: Patient,
        period: tuple[dt.datetime, dt.datetime],
    ) -> None:
        french = self._digest_patient(session, clock)
        english = self._digest_patient(session, clock, language="en")
        quiet = self._digest_patient(session, clock)
        counts = {
            french.id: {"lab-report": 3, "prescription": 1},
            english.id: {"lab-report": 1},
            quiet.id: {"lab-report": 0},
            patient.id: {"lab-report": 2},  # chose immediate notices: no digest
        }
        since, until = period
        made = notifications_internal.build_digests(
            session, counts=counts, since=since, until=until, clock=clock
        )

        assert made == 2
        [digest] = notifications_internal.inbox(session, patient_id=french.id)
        assert digest.kind is NotificationKind.DOCUMENT_DIGEST
        assert digest.body == (
            "Depuis le 31/05/2026 à 14:00, votre dossier Carnet a reçu :\n"
            "- Ordonnance de médicaments : 1\n"
            "- Résultats d'analyses de laboratoire : 3\n\n"
            "Vous pouvez les lire depuis votre espace Carnet."
        )
        assert digest.details()["until"] == until.isoformat()
        [in_english] = notifications_internal.inbox(session, patient_id=english.id)
        assert "- Laboratory results: 1" in in_english.body
        assert notifications_internal.inbox(session, patient_id=quiet.id) == []
        assert notifications_internal.inbox(session, patient_id=patient.id) == []
        assert set(notifications_internal.patients_wanting_digest(session)) >= {
            french.id,
            english.id,
            quiet.id,
        }

    def test_running_twice_for_a_period_makes_no_second_digest(
        self, session: Session, clock: FrozenClock, period: tuple[dt.datetime, dt.datetime]
    ) -> None:
        subscriber = self._digest_patient(session, clock)
        counts = {subscriber.id: {"lab-report": 2}}
        since, until = period
        for expected in (1, 0):
            made = notifications_internal.build_digests(
                session, counts=counts, since=since, until=until, clock=clock
            )
            assert made == expected
        next_day = notifications_internal.build_digests(
            session,
            counts=counts,
            since=until,
            until=until + dt.timedelta(days=1),
            clock=clock,
        )
        assert next_day == 1
        assert len(notifications_internal.inbox(session, patient_id=subscriber.id)) == 2

    def test_a_period_must_end_after_it_starts(
        self, session: Session, clock: FrozenClock, period: tuple[dt.datetime, dt.datetime]
    ) -> None:
        since, until = period
        with pytest.raises(InvalidNotification) as caught:
            notifications_internal.build_digests(
                session, counts={}, since=until, until=since, clock=clock
            )
        assert caught.value.field == "until"


class TestInbox:
    def test_newest_first_and_unread_only(
        self, session: Session, clock: FrozenClock, patient: Patient, doctor: Professional
    ) -> None:
        first = _first_access(session, clock, patient)
        clock.advance(dt.timedelta(minutes=1))
        emergency, _to_doctor = _emergency(session, clock, patient, doctor)
        clock.advance(dt.timedelta(minutes=1))
        document = _new_document(session, clock, patient)

        # The treating doctor's notice is about this dossier, but not in the patient's inbox.
        assert notifications_internal.inbox(session, patient_id=patient.id) == [
            document,
            emergency,
            first,
        ]
        assert notifications_internal.inbox(session, patient_id=patient.id, limit=1) == [document]

        clock.advance(dt.timedelta(minutes=1))
        read = notifications_internal.mark_read(
            session, patient_id=patient.id, notification_id=emergency.id, clock=clock
        )
        assert read.read_at == clock.now()
        assert notifications_internal.inbox(session, patient_id=patient.id, unread_only=True) == [
            document,
            first,
        ]

    def test_marking_read_twice_keeps_the_first_time(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        notice = _first_access(session, clock, patient)
        first_read = clock.now()
        notifications_internal.mark_read(
            session, patient_id=patient.id, notification_id=notice.id, clock=clock
        )
        clock.advance(dt.timedelta(hours=1))
        again = notifications_internal.mark_read(
            session, patient_id=patient.id, notification_id=notice.id, clock=clock
        )
        assert again.read_at == first_read

    def test_another_inbox_notice_is_not_found(
        self, session: Session, clock: FrozenClock, patient: Patient, doctor: Professional
    ) -> None:
        other = make_patient(session, clock)
        theirs = _first_access(session, clock, other)
        _to_patient, to_doctor = _emergency(session, clock, patient, doctor)
        for notice_id in (theirs.id, to_doctor.id, uuid.uuid4()):
            with pytest.raises(NotificationNotFound):
                notifications_internal.mark_read(
                    session, patient_id=patient.id, notification_id=notice_id, clock=clock
                )

    def test_limit_must_be_positive(self, session: Session, patient: Patient) -> None:
        with pytest.raises(InvalidNotification):
            notifications_internal.inbox(session, patient_id=patient.id, limit=0)


class TestPreferences:
    def test_defaults_until_the_patient_chooses(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        assert notifications_internal.preferences(session, patient.id) == notifications.Preferences(
            new_documents=NewDocuments.IMMEDIATE, email=True, updated_at=None
        )
        clock.advance(dt.timedelta(days=1))
        chosen = notifications_internal.set_preferences(
            session, patient_id=patient.id, new_documents="digest", email=False, clock=clock
        )
        assert chosen == notifications.Preferences(NewDocuments.DIGEST, False, clock.now())
        changed = notifications_internal.set_preferences(
            session, patient_id=patient.id, new_documents=NewDocuments.OFF, email=True, clock=clock
        )
        assert (changed.new_documents, changed.email) == (NewDocuments.OFF, True)
        assert notifications_internal.preferences(session, patient.id) == changed

    def test_unknown_choice(self, session: Session, clock: FrozenClock, patient: Patient) -> None:
        with pytest.raises(InvalidNotification) as caught:
            notifications_internal.set_preferences(
                session, patient_id=patient.id, new_documents="hourly", email=True, clock=clock
            )
        assert caught.value.field == "new_documents"

    def test_no_such_patient(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(PatientNotFound):
            notifications_internal.set_preferences(
                session, patient_id=uuid.uuid4(), new_documents="off", email=True, clock=clock
            )


class TestDelivery:
    def test_sends_the_pending_email_once(
        self, session: Session, clock: FrozenClock, patient: Patient, smtp_server: SmtpServer
    ) -> None:
        notice = _first_access(session, clock, patient)

        report = notifications_internal.deliver_pending(session, smtp_server.mailer(), clock=clock)

        assert report == notifications_internal.DeliveryReport(sent=1)
        [message] = smtp_server.messages
        assert message["To"] == "lea.weber@example.lu"
        assert message["From"] == SENDER
        assert message["Subject"] == notice.subject
        assert message["Message-ID"] == f"<{notice.id}@notifications.carnet>"
        assert message["Auto-Submitted"] == "auto-generated"
        assert message["Content-Language"] == "fr"
        body = message.get_content()
        assert body.startswith("Bonjour,\n\nDr Marc Schmit a consulté votre dossier Carnet")
        assert "merci de ne pas y répondre" in body
        assert (notice.email_status, notice.emailed_at, notice.email_attempts) == (
            EmailStatus.SENT,
            clock.now(),
            1,
        )
        again = notifications_internal.deliver_pending(session, smtp_server.mailer(), clock=clock)
        assert again == notifications_internal.DeliveryReport()
        assert len(smtp_server.messages) == 1

    @pytest.mark.parametrize(
        ("language", "subject", "greeting"),
        [
            ("de", "Notfallzugriff auf Ihre Akte", "Guten Tag,"),
            ("en", "Emergency access to your dossier", "Hello,"),
        ],
    )
    def test_in_the_patients_language(
        self,
        session: Session,
        clock: FrozenClock,
        smtp_server: SmtpServer,
        language: str,
        subject: str,
        greeting: str,
    ) -> None:
        patient = make_patient(session, clock, language=language, email="anna@example.de")
        _emergency(session, clock, patient, None)
        notifications_internal.deliver_pending(session, smtp_server.mailer(), clock=clock)
        [message] = smtp_server.messages
        assert message["Subject"] == subject
        assert message["Content-Language"] == language
        assert message.get_content().startswith(greeting)
        # The reason is for the inbox only: e-mail is no place for clinical details.
        assert REASON not in message.get_content()
        assert "Carnet" in message.get_content()

    def test_no_email_for_the_doctor_nor_without_address(
        self,
        session: Session,
        clock: FrozenClock,
        patient: Patient,
        doctor: Professional,
        smtp_server: SmtpServer,
    ) -> None:
        _first_access(session, clock, make_patient(session, clock, email=None))
        _emergency(session, clock, patient, doctor)
        report = notifications_internal.deliver_pending(session, smtp_server.mailer(), clock=clock)
        assert report == notifications_internal.DeliveryReport(sent=1)
        assert [m["To"] for m in smtp_server.messages] == ["lea.weber@example.lu"]

    def test_address_removed_or_email_switched_off_since_the_notice(
        self, session: Session, clock: FrozenClock, smtp_server: SmtpServer
    ) -> None:
        moved = make_patient(session, clock, email="moved@example.lu")
        quiet = make_patient(session, clock, email="quiet@example.lu")
        notices = [_first_access(session, clock, moved), _first_access(session, clock, quiet)]
        moved.email = None
        notifications_internal.set_preferences(
            session, patient_id=quiet.id, new_documents="immediate", email=False, clock=clock
        )
        report = notifications_internal.deliver_pending(session, smtp_server.mailer(), clock=clock)
        assert report == notifications_internal.DeliveryReport(not_applicable=2)
        assert {n.email_status for n in notices} == {EmailStatus.NOT_APPLICABLE}
        assert smtp_server.messages == []

    def test_refused_email_is_retried_then_given_up_after_five_attempts(
        self, session: Session, clock: FrozenClock, patient: Patient, smtp_server: SmtpServer
    ) -> None:
        smtp_server.drop.refuse_data = "550 5.7.1 Refused"
        notice = _first_access(session, clock, patient)
        mailer = smtp_server.mailer()
        reports = []
        for delay in (*notifications_internal.RETRY_DELAYS, None):
            reports.append(notifications_internal.deliver_pending(session, mailer, clock=clock))
            if delay is not None:
                assert notice.email_retry_at == clock.now() + delay
                # Not yet due: the run leaves it alone.
                notifications_internal.deliver_pending(session, mailer, clock=clock)
                clock.advance(delay)
        assert reports == [notifications_internal.DeliveryReport(retrying=1)] * 4 + [
            notifications_internal.DeliveryReport(failed=1)
        ]
        assert (notice.email_status, notice.email_attempts, notice.email_retry_at) == (
            EmailStatus.FAILED,
            notifications_internal.MAX_EMAIL_ATTEMPTS,
            None,
        )
        assert notifications_internal.deliver_pending(session, mailer, clock=clock) == (
            notifications_internal.DeliveryReport()
        )

    def test_a_refused_recipient_does_not_hold_back_the_others(
        self, session: Session, clock: FrozenClock, smtp_server: SmtpServer
    ) -> None:
        gone = make_patient(session, clock, email="gone@example.lu")
        here = make_patient(session, clock, email="here@example.lu")
        smtp_server.drop.refused_recipients.add("gone@example.lu")
        refused = _first_access(session, clock, gone)
        clock.advance(dt.timedelta(seconds=1))
        delivered = _first_access(session, clock, here)
        report = notifications_internal.deliver_pending(session, smtp_server.mailer(), clock=clock)
        assert report == notifications_internal.DeliveryReport(sent=1, retrying=1)
        assert (refused.email_status, delivered.email_status) == (
            EmailStatus.PENDING,
            EmailStatus.SENT,
        )

    def test_a_server_down_stops_the_run_after_one_attempt(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        notices = [_first_access(session, clock, patient) for _ in range(3)]
        down = SmtpMailer(HOST, free_port(), sender=SENDER, timeout=2)
        report = notifications_internal.deliver_pending(session, down, clock=clock)
        assert report == notifications_internal.DeliveryReport(retrying=1, mailer_unavailable=True)
        assert sorted(n.email_attempts for n in notices) == [0, 0, 1]
        # Each run tries one notice; which one, among notices due at the same moment, is not
        # fixed. Enough runs that, whatever the order, one notice uses up its attempts.
        for _ in range(notifications_internal.MAX_EMAIL_ATTEMPTS * len(notices)):
            clock.advance(dt.timedelta(hours=3))
            notifications_internal.deliver_pending(session, down, clock=clock)
        assert EmailStatus.FAILED in {n.email_status for n in notices}

    def test_takes_at_most_limit(
        self, session: Session, clock: FrozenClock, patient: Patient, smtp_server: SmtpServer
    ) -> None:
        for _ in range(3):
            _first_access(session, clock, patient)
        report = notifications_internal.deliver_pending(
            session, smtp_server.mailer(), clock=clock, limit=2
        )
        assert report.sent == 2


def test_two_nodes_deliver_each_email_once(
    committing_engine: Engine, clock: FrozenClock, smtp_server: SmtpServer
) -> None:
    """Two delivery runs at once, on PostgreSQL: SKIP LOCKED gives each its own e-mails."""
    if committing_engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: there is one delivery node")
    sessions = session_factory(committing_engine)
    with unit_of_work(sessions) as session:
        patient = make_patient(session, clock, email="lea.weber@example.lu")
        for _ in range(6):
            _first_access(session, clock, patient)
    mailer = smtp_server.mailer()

    with sessions() as first, sessions() as second, first.begin():
        one = notifications_internal.deliver_pending(first, mailer, clock=clock, limit=4)
        with second.begin():
            # Waiting on the first node's locks would be the bug: fail fast instead.
            second.execute(text("SET LOCAL lock_timeout = '5s'"))
            two = notifications_internal.deliver_pending(second, mailer, clock=clock)

    assert (one.sent, two.sent) == (4, 2)
    message_ids = [message["Message-ID"] for message in smtp_server.messages]
    assert len(message_ids) == len(set(message_ids)) == 6
    with sessions() as session:
        statuses = session.scalars(
            select(Notification.email_status).where(Notification.patient_id == patient.id)
        )
        assert set(statuses) == {EmailStatus.SENT}
