"""What the notifications domain does without an actor: the jobs' digests and e-mail delivery,
and the readers of a patient's inbox and choices.

Nothing here asks the policy or records an access: a job runs on its own authority (the daily
digest, the outbox), and the inbox is reached by the ways in only through the door
(``access.notices``, which takes the dossier opened for the patient or their representative).
That is why this module is ``internal``: the ways in may not import it (the patient-table lint
refuses it), and a job reaches it through ``lifecycle.jobs``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from typing import NamedTuple

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.notifications import messages
from carnet.notifications.errors import (
    InvalidNotification,
    MailerUnavailable,
    MessageRefused,
    NotificationNotFound,
)
from carnet.notifications.mailer import Mailer
from carnet.notifications.models import (
    EmailStatus,
    NewDocuments,
    Notification,
    NotificationKind,
    NotificationPreferences,
    RecipientKind,
)
from carnet.notifications.service import (
    Preferences,
    _batches,
    _contacts,
    _digest_id,
    _preferences,
    _record,
    _wants_email,
)
from carnet.patients import service as patients
from carnet.patients.models import Patient

log = logging.getLogger(__name__)

MAX_EMAIL_ATTEMPTS = 5
# Waits after the 1st, 2nd, 3rd and 4th failed attempt: together they ride out a mail server
# down for about two and a half hours before the e-mail is given up (the notice stays in the
# inbox either way).
RETRY_DELAYS = (
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
)


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery run did with the e-mails it took from the outbox.

    ``retrying``: failed now, tried again later; ``failed``: given up after the last attempt;
    ``not_applicable``: the patient has no address or switched e-mail off since the notice was
    made; ``mailer_unavailable``: the run stopped early because the mail server took nothing.
    """

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    not_applicable: int = 0
    mailer_unavailable: bool = False


# --- Digests -------------------------------------------------------------------------------


def patients_wanting_digest(session: Session) -> list[uuid.UUID]:
    """The patients who chose a digest of their new documents: whose counts the job needs."""
    # A scan of a one-row-per-patient table, once a day: no global index for it.
    return list(
        session.scalars(
            select(NotificationPreferences.patient_id).where(
                NotificationPreferences.new_documents == NewDocuments.DIGEST
            )
        )
    )


def build_digests(
    session: Session,
    *,
    counts: Mapping[uuid.UUID, Mapping[str, int]],
    since: dt.datetime,
    until: dt.datetime,
    clock: Clock,
) -> int:
    """Make one digest notice per patient who chose digests and got documents in the period.

    ``counts`` gives, per patient, the number of new documents of each catalogue type from
    ``since`` to ``until``; the caller computes it (the documents domain sits above this one).
    Patients who did not choose digests, or whose counts are all zero, are passed over. Safe to
    run again for the same period: a patient who has that period's digest is skipped. Returns
    the number of digests made.
    """
    for name, value in (("since", since), ("until", until)):
        if value.tzinfo is None:
            raise InvalidNotification("A digest period needs aware UTC times.", field=name)
    if since >= until:
        raise InvalidNotification("A digest period must end after it starts.", field="until")
    made = 0
    for batch in _batches(sorted(counts)):
        subscribers = set(
            session.scalars(
                select(NotificationPreferences.patient_id).where(
                    NotificationPreferences.patient_id.in_(batch),
                    NotificationPreferences.new_documents == NewDocuments.DIGEST,
                )
            )
        )
        due = {
            patient_id: _digest_id(patient_id, since, until)
            for patient_id in batch
            if patient_id in subscribers and any(n > 0 for n in counts[patient_id].values())
        }
        built = set(
            session.scalars(
                select(Notification.id).where(
                    Notification.patient_id.in_(due), Notification.id.in_(due.values())
                )
            )
        )
        for patient_id, digest_id in due.items():
            if digest_id in built:
                continue
            per_type = {key: n for key, n in counts[patient_id].items() if n > 0}
            _record(
                session,
                patient_id=patient_id,
                kind=NotificationKind.DOCUMENT_DIGEST,
                data={"since": since, "until": until, "counts": per_type},
                clock=clock,
                recipient_professional_id=None,
                notification_id=digest_id,
            )
            made += 1
    return made


# --- The inbox and preferences --------------------------------------------------------------


def inbox(
    session: Session, *, patient_id: uuid.UUID, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """The patient's notices, newest first (the treating doctor's are not in it).

    The caller has already decided that its actor may read this patient's inbox (the patient,
    or their representative): the way in asks the access layer first.
    """
    if limit < 1:
        raise InvalidNotification("Ask for at least one notice.", field="limit")
    query = select(Notification).where(
        Notification.patient_id == patient_id,
        Notification.recipient_kind == RecipientKind.PATIENT,
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(
        session.scalars(
            query.order_by(Notification.created_at.desc(), Notification.id).limit(limit)
        )
    )


def mark_read(
    session: Session, *, patient_id: uuid.UUID, notification_id: uuid.UUID, clock: Clock
) -> Notification:
    """Mark a notice of the patient's inbox read (once: a second call keeps the first time).

    The caller has authorised its actor on this inbox; ``NotificationNotFound`` if the notice
    is not in it.
    """
    notification = session.get(Notification, (patient_id, notification_id))
    if notification is None or notification.recipient_kind is not RecipientKind.PATIENT:
        raise NotificationNotFound()
    if notification.read_at is None:
        notification.read_at = clock.now()
        session.flush()
    return notification


def preferences(session: Session, patient_id: uuid.UUID) -> Preferences:
    """The patient's notification choices (the defaults until they choose)."""
    return _preferences(session, patient_id)


def set_preferences(
    session: Session,
    *,
    patient_id: uuid.UUID,
    new_documents: NewDocuments | str,
    email: bool,
    clock: Clock,
) -> Preferences:
    """Record how the patient hears of new documents and whether notices are also e-mailed.

    The caller has authorised its actor on this dossier. Raises ``PatientNotFound``, or
    ``InvalidNotification`` for an unknown ``new_documents`` choice.
    """
    try:
        choice = NewDocuments(new_documents)
    except ValueError as error:
        raise InvalidNotification(
            "Choose immediate, digest or off for new documents.", field="new_documents"
        ) from error
    patients.get_patient(session, patient_id)
    row = session.get(NotificationPreferences, patient_id)
    if row is None:
        row = NotificationPreferences(patient_id=patient_id)
        session.add(row)
    row.new_documents = choice
    row.email = email
    row.updated_at = clock.now()
    session.flush()
    return preferences(session, patient_id)


# --- The outbox ----------------------------------------------------------------------------


def deliver_pending(
    session: Session, mailer: Mailer, *, clock: Clock, limit: int = 100
) -> DeliveryReport:
    """Send up to ``limit`` of the oldest e-mails that are due, and record how each went.

    A failed e-mail is tried again after ``RETRY_DELAYS``, and given up (``failed``) after
    ``MAX_EMAIL_ATTEMPTS``. When the server takes nothing (``MailerUnavailable``) the run stops
    after counting that one attempt, rather than spending every e-mail's attempts on an outage.
    Commits nothing: the caller runs it in a transaction. On PostgreSQL the e-mails taken are
    locked (``FOR UPDATE SKIP LOCKED``) until that transaction ends, so nodes running it at the
    same time each take different ones; SQLite has one writer at a time anyway. An e-mail sent
    by a run whose transaction then rolls back is sent again by a later run, under the same
    ``Message-ID`` so that mail software can recognise the repeat.
    """
    now = clock.now()
    due = list(
        session.scalars(
            select(Notification)
            .where(
                Notification.email_status == EmailStatus.PENDING,
                or_(Notification.email_retry_at.is_(None), Notification.email_retry_at <= now),
            )
            .order_by(Notification.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    recipients = _recipients(
        session, {n.patient_id for n in due if n.recipient_kind is RecipientKind.PATIENT}
    )
    tally: Counter[str] = Counter()
    unavailable = False
    for notification in due:
        recipient = (
            recipients.get(notification.patient_id)
            if notification.recipient_kind is RecipientKind.PATIENT
            else None
        )
        if recipient is None:
            notification.email_status = EmailStatus.NOT_APPLICABLE
            tally["not_applicable"] += 1
            continue
        notification.email_attempts += 1
        try:
            mailer.send(_email(notification, recipient, now))
        except MailerUnavailable as error:
            tally[_after_failure(notification, now)] += 1
            log.warning(
                "E-mail of notification %s not delivered (attempt %d): %s",
                notification.id,
                notification.email_attempts,
                error,
            )
            if not isinstance(error, MessageRefused):
                unavailable = True
                break
        else:
            notification.email_status = EmailStatus.SENT
            notification.emailed_at = now
            notification.email_retry_at = None
            tally["sent"] += 1
    session.flush()
    return DeliveryReport(
        sent=tally["sent"],
        retrying=tally["retrying"],
        failed=tally["failed"],
        not_applicable=tally["not_applicable"],
        mailer_unavailable=unavailable,
    )


# --- Internals ---


class _Recipient(NamedTuple):
    address: str
    language: str


def _recipients(session: Session, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, _Recipient]:
    """The address and language of each patient who still wants e-mail."""
    found: dict[uuid.UUID, _Recipient] = {}
    for batch in _batches(sorted(patient_ids)):
        rows = session.execute(_contacts().where(Patient.id.in_(batch)))
        for patient_id, address, language, wanted in rows:
            if address and _wants_email(address, wanted):
                found[patient_id] = _Recipient(address, messages.language_for(language))
    return found


def _email(notification: Notification, recipient: _Recipient, now: dt.datetime) -> EmailMessage:
    message = EmailMessage()
    message["To"] = recipient.address
    message["Subject"] = notification.subject
    message["Date"] = format_datetime(now)
    # Stable across attempts, so that a message sent twice (see deliver_pending) reads as one.
    message["Message-ID"] = f"<{notification.id}@notifications.carnet>"
    # RFC 3834: an automatic message, which well-behaved autoresponders do not answer.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        messages.email_text(recipient.language, notification.body, kind=notification.kind)
    )
    # After set_content, which clears every Content-* header.
    message["Content-Language"] = recipient.language
    return message


def _after_failure(notification: Notification, now: dt.datetime) -> str:
    if notification.email_attempts >= MAX_EMAIL_ATTEMPTS:
        notification.email_status = EmailStatus.FAILED
        notification.email_retry_at = None
        return "failed"
    notification.email_retry_at = now + RETRY_DELAYS[notification.email_attempts - 1]
    return "retrying"
