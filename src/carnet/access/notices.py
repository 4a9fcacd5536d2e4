"""The patient's own notices, reached through the door: the inbox and how notices come.

The notifications domain sits below ``access``: it records notices for any dossier and leaves
who may read an inbox to its callers. Here that decision is the door's: the patient, or their
representative, opens the dossier to read their notices (``purposes.READ_NOTICES``, allowed on
a closed dossier too: reading one's notices is reading about one's access) or to choose how
they come (``purposes.SET_NOTICE_PREFERENCES``). The treating doctor's notices are not in it.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.notifications import internal as notifications
from carnet.notifications.models import NewDocuments, Notification
from carnet.notifications.service import Preferences


def inbox(
    session: Session, dossier: OpenedDossier, *, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """The patient's notices, newest first; ``InvalidNotification`` for a ``limit`` below 1."""
    dossier.require(purposes.READ_NOTICES)
    return notifications.inbox(
        session, patient_id=dossier.patient_id, unread_only=unread_only, limit=limit
    )


def mark_read(session: Session, dossier: OpenedDossier, notification_id: uuid.UUID) -> Notification:
    """Mark one notice of the patient's inbox read; ``NotificationNotFound`` if not in it."""
    dossier.require(purposes.READ_NOTICES)
    return notifications.mark_read(
        session,
        patient_id=dossier.patient_id,
        notification_id=notification_id,
        clock=dossier.clock,
    )


def preferences(session: Session, dossier: OpenedDossier) -> Preferences:
    """The patient's notification choices (the defaults until they choose)."""
    dossier.require(purposes.READ_NOTICES, purposes.SET_NOTICE_PREFERENCES)
    return notifications.preferences(session, dossier.patient_id)


def set_preferences(
    session: Session, dossier: OpenedDossier, *, new_documents: NewDocuments | str, email: bool
) -> Preferences:
    """Record how the patient hears of new documents and whether notices are also e-mailed.

    ``InvalidNotification`` for an unknown ``new_documents`` choice.
    """
    dossier.require(purposes.SET_NOTICE_PREFERENCES)
    return notifications.set_preferences(
        session,
        patient_id=dossier.patient_id,
        new_documents=new_documents,
        email=email,
        clock=dossier.clock,
    )
