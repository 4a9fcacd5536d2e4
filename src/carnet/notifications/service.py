"""Notification services: tell the patient what happened to their dossier.

Every function takes its session and never commits: the way in (or the job) owns the
transaction, so a notice is recorded together with the event it tells of, or not at all.
Notifications sit below ``access`` and ``documents``: their callers decide what deserves a
notice and who may read an inbox; the functions here take a ``patient_id`` already authorised.
The inbox, the digests and the outbox's delivery are in ``notifications.internal`` (no actor:
the jobs, and the door's ``access.notices``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.notifications import messages
from carnet.notifications.models import (
    EmailStatus,
    NewDocuments,
    Notification,
    NotificationKind,
    NotificationPreferences,
    RecipientKind,
)
from carnet.patients import service as patients
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import Patient

log = logging.getLogger(__name__)

# Digest ids are derived from the dossier and the period, so that building the same digest
# twice (a job re-run, two nodes at once) meets the primary key instead of a second notice.
_DIGEST_IDS = uuid.UUID("5f3a1c52-8d0e-4b1f-9a57-2c8e1d6b7f40")
# Bounds the ids sent in one IN (...) list: SQLite and psycopg both cap bound parameters.
_BATCH = 500


@dataclass(frozen=True)
class Preferences:
    """The patient's choices in force (the defaults until they choose)."""

    new_documents: NewDocuments = NewDocuments.IMMEDIATE
    email: bool = True
    updated_at: dt.datetime | None = None


# --- Notices -------------------------------------------------------------------------------


def notify(
    session: Session,
    *,
    patient_id: uuid.UUID,
    kind: NotificationKind,
    data: Mapping[str, object],
    clock: Clock,
    recipient_professional_id: uuid.UUID | None = None,
) -> Notification:
    """Record a notice about the dossier ``patient_id``, for the patient or a professional.

    The text is rendered now, in the patient's language (professionals: French), from ``data``,
    which is kept as JSON. The e-mail waits in the outbox (``pending``) when the patient has an
    address and has not switched e-mail off. Professionals have no address in the directory
    yet, so their notices are ``not-applicable`` for e-mail and wait in Carnet.
    Raises ``PatientNotFound``, ``ProfessionalNotFound``, or ``InvalidNotification`` when
    ``data`` lacks a field the text needs.
    """
    return _record(
        session,
        patient_id=patient_id,
        kind=kind,
        data=data,
        clock=clock,
        recipient_professional_id=recipient_professional_id,
        notification_id=uuid.uuid4(),
    )


def notify_new_document(
    session: Session,
    *,
    patient_id: uuid.UUID,
    document_type_label_key: str,
    author_name: str,
    clock: Clock,
    document_id: uuid.UUID | None = None,
) -> Notification | None:
    """Tell the patient of a new document of the catalogue type ``document_type_label_key``.

    ``document_id`` is kept with the notice so the inbox links to the document itself.

    Only when they chose ``immediate`` (the default); with ``digest`` the digest job counts it
    later, with ``off`` nothing is said. Returns the notice, or None when none was made.
    Raises ``InvalidNotification`` for a type not in the catalogue.
    """
    messages.document_type_label(document_type_label_key, messages.DEFAULT_LANGUAGE)
    if _preferences(session, patient_id).new_documents is not NewDocuments.IMMEDIATE:
        return None
    return notify(
        session,
        patient_id=patient_id,
        kind=NotificationKind.NEW_DOCUMENT,
        data={
            "document_type": document_type_label_key,
            "author_name": author_name,
            **({"document_id": document_id} if document_id is not None else {}),
        },
        clock=clock,
    )


def notify_emergency_access(
    session: Session,
    *,
    patient_id: uuid.UUID,
    professional_name: str,
    reason: str,
    opened_at: dt.datetime,
    expires_at: dt.datetime,
    treating_doctor_id: uuid.UUID | None,
    clock: Clock,
) -> list[Notification]:
    """Tell the patient, and their treating doctor if they have one, that the glass was broken.

    The notice names the professional, the time, the end of the access and the reason they
    stated. Returns the patient's notice, then the doctor's.
    """
    data: dict[str, object] = {
        "professional_name": professional_name,
        "reason": reason,
        "opened_at": opened_at,
        "expires_at": expires_at,
    }
    notices = [
        notify(
            session,
            patient_id=patient_id,
            kind=NotificationKind.EMERGENCY_ACCESS,
            data=data,
            clock=clock,
        )
    ]
    if treating_doctor_id is not None:
        patient = patients.get_patient(session, patient_id)
        # The doctor's notice must say whose dossier was opened.
        whose = {
            "patient_name": f"{patient.given} {patient.family}",
            "birth_date": patient.birth_date,
        }
        notices.append(
            notify(
                session,
                patient_id=patient_id,
                kind=NotificationKind.EMERGENCY_ACCESS,
                data=data | whose,
                clock=clock,
                recipient_professional_id=treating_doctor_id,
            )
        )
    return notices


def notify_first_access(
    session: Session, *, patient_id: uuid.UUID, professional_name: str, clock: Clock
) -> Notification:
    """Tell the patient that a professional opened their dossier for the first time."""
    return notify(
        session,
        patient_id=patient_id,
        kind=NotificationKind.FIRST_ACCESS,
        data={"professional_name": professional_name},
        clock=clock,
    )


def notify_dossier_opened(
    session: Session, *, patient_id: uuid.UUID, opened_at: dt.datetime, clock: Clock
) -> Notification:
    """Tell the patient that their dossier was opened for them (without their asking)."""
    return notify(
        session,
        patient_id=patient_id,
        kind=NotificationKind.DOSSIER_OPENED,
        data={"opened_at": opened_at},
        clock=clock,
    )


# --- Internals -----------------------------------------------------------------------------


def _preferences(session: Session, patient_id: uuid.UUID) -> Preferences:
    """The patient's notification choices (the defaults until they choose)."""
    row = session.get(NotificationPreferences, patient_id)
    if row is None:
        return Preferences()
    return Preferences(new_documents=row.new_documents, email=row.email, updated_at=row.updated_at)


def _record(
    session: Session,
    *,
    patient_id: uuid.UUID,
    kind: NotificationKind,
    data: Mapping[str, object],
    clock: Clock,
    recipient_professional_id: uuid.UUID | None,
    notification_id: uuid.UUID,
) -> Notification:
    # One row, not the patient with their dossier and identifiers: this runs on every publish.
    found = session.execute(_contacts().where(Patient.id == patient_id)).one_or_none()
    if found is None:
        raise PatientNotFound()
    _, address, patient_language, wanted = found
    if recipient_professional_id is None:
        recipient, language = RecipientKind.PATIENT, messages.language_for(patient_language)
        wants_email = _wants_email(address, wanted)
    else:
        directory.get_professional(session, recipient_professional_id)
        recipient, language = RecipientKind.PROFESSIONAL, messages.PROFESSIONAL_LANGUAGE
        wants_email = False
    rendered = messages.render(recipient, kind, language, data)
    notification = Notification(
        patient_id=patient_id,
        id=notification_id,
        recipient_kind=recipient,
        recipient_professional_id=recipient_professional_id,
        kind=kind,
        created_at=clock.now(),
        email_status=EmailStatus.PENDING if wants_email else EmailStatus.NOT_APPLICABLE,
        email_attempts=0,
        subject=rendered.subject,
        body=rendered.body,
        data=json.dumps(data, default=_json_value, ensure_ascii=False, sort_keys=True),
    )
    session.add(notification)
    session.flush()
    return notification


def _contacts() -> Select[uuid.UUID, str | None, str, bool]:
    """Each patient's id, address, language and e-mail choice (NULL where never chosen)."""
    return select(
        Patient.id, Patient.email, Patient.language, NotificationPreferences.email
    ).outerjoin(NotificationPreferences, NotificationPreferences.patient_id == Patient.id)


def _wants_email(address: str | None, wanted: bool | None) -> bool:
    # No choice recorded yet is the default: e-mail wanted (``Preferences``).
    return bool(address) and wanted is not False


def _digest_id(patient_id: uuid.UUID, since: dt.datetime, until: dt.datetime) -> uuid.UUID:
    period = f"{since.astimezone(dt.UTC).isoformat()}/{until.astimezone(dt.UTC).isoformat()}"
    return uuid.uuid5(_DIGEST_IDS, f"{patient_id}/{period}")


def _batches(ids: Iterable[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    batch: list[uuid.UUID] = []
    for item in ids:
        batch.append(item)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _json_value(value: object) -> str:
    if isinstance(value, dt.date):  # and datetimes
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be kept in a notice's data")
