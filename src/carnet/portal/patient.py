"""The patient portal: the home page and the notices; the other pages live beside it
(``patient_documents``, ``patient_access``, ``patient_history``, ``patient_dossier``) and
join this router.

A patient acts on their own dossier or, having chosen to, on that of someone they represent
(``visit.patient_id``); every page says whose dossier it shows. Everything goes through the
domain services with ``visit.actor``: the policy decides and the audit trail records.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access import notices as own_notices
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.errors import InvalidInput
from carnet.essentials import service as essentials_service
from carnet.essentials.service import Essentials
from carnet.notifications.models import NewDocuments, Notification, NotificationKind
from carnet.portal import (
    patient_access,
    patient_documents,
    patient_dossier,
    patient_health,
    patient_history,
    patient_masks,
    patient_representatives,
)
from carnet.portal.error_words import said
from carnet.portal.patient_context import whose_dossier
from carnet.portal.visits import CheckedForm, PatientVisit, form_text, parse_id

router = APIRouter(prefix="/portal/patient", include_in_schema=False)

LATEST_DOCUMENTS = 5
INBOX_SIZE = 100
NOTIFICATIONS_PAGE = "/portal/patient/notifications"


@router.get("")
def home(visit: PatientVisit) -> Response:
    """Whose dossier, its state, the essential data, the latest documents, unread notices."""
    latest: list[patient_documents.Entry] = []
    total = 0
    unread = 0
    essentials: Essentials | None = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit, with_patient=True)
        if whose.readable:
            latest, total = patient_documents.latest_entries(session, visit, LATEST_DOCUMENTS)
            essentials = essentials_service.read_essentials(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.READ_ESSENTIALS,
                    clock=visit.platform.clock,
                ),
            )
        if whose.state != "opposed":
            dossier = open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.READ_NOTICES,
                clock=visit.platform.clock,
            )
            unread = len(own_notices.inbox(session, dossier, unread_only=True, limit=INBOX_SIZE))
    return visit.render(
        "patient/home.html",
        whose=whose,
        latest=latest,
        total=total,
        unread=unread,
        unread_capped=unread >= INBOX_SIZE,
        essentials=essentials,
        document_url_prefix="/portal/patient/documents/",
    )


# --- notifications -----------------------------------------------------------------------------


@router.get("/notifications")
def notifications(visit: PatientVisit) -> Response:
    """The inbox, newest first (emergency accesses stand out), and the notice preferences."""
    inbox = []
    preferences = None
    with visit.transaction() as session:
        whose = whose_dossier(session, visit)
        if whose.state != "opposed":
            dossier = open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.READ_NOTICES,
                clock=visit.platform.clock,
            )
            inbox = own_notices.inbox(session, dossier, limit=INBOX_SIZE)
            preferences = own_notices.preferences(session, dossier)
    return visit.render(
        "patient/notifications.html",
        whose=whose,
        inbox=inbox,
        links={notice.id: link for notice in inbox if (link := _notice_link(notice))},
        preferences=preferences,
        choices=[choice.value for choice in NewDocuments],
    )


def _notice_link(notice: Notification) -> tuple[str, str] | None:
    """Where a notice leads in the portal, and what it leads to (the template words it): the
    new document itself, the access page for an emergency access, the history for a first
    consultation."""
    if notice.kind is NotificationKind.NEW_DOCUMENT:
        document_id = json.loads(notice.data).get("document_id")
        if document_id:
            return f"/portal/patient/documents/{document_id}", "document"
        return "/portal/patient/documents", "documents"
    if notice.kind is NotificationKind.DOCUMENT_DIGEST:
        return "/portal/patient/documents", "documents"
    if notice.kind is NotificationKind.EMERGENCY_ACCESS:
        return "/portal/patient/access", "access"
    if notice.kind is NotificationKind.FIRST_ACCESS:
        return "/portal/patient/history", "history"
    return None


@router.post("/notifications/{notification_id}/read")
def mark_read(visit: PatientVisit, notification_id: str, form: CheckedForm) -> Response:
    """Mark one notice read."""
    with visit.transaction() as session:
        own_notices.mark_read(
            session,
            open_dossier(
                session,
                visit.actor,
                visit.patient_id,
                purposes.READ_NOTICES,
                clock=visit.platform.clock,
            ),
            parse_id(notification_id),
        )
    return visit.redirect(
        NOTIFICATIONS_PAGE, flash=visit.gettext("Marked as read."), kind="success"
    )


@router.post("/notifications/preferences")
def notification_preferences(visit: PatientVisit, form: CheckedForm) -> Response:
    """How the patient hears of new documents, and whether notices are also e-mailed."""
    clock = visit.platform.clock
    try:
        with visit.transaction() as session:
            own_notices.set_preferences(
                session,
                open_dossier(
                    session,
                    visit.actor,
                    visit.patient_id,
                    purposes.SET_NOTICE_PREFERENCES,
                    clock=clock,
                ),
                new_documents=form_text(form, "new_documents"),
                email=form_text(form, "email") == "yes",
            )
    except InvalidInput as error:
        return visit.redirect(NOTIFICATIONS_PAGE, flash=said(error, visit.language), kind="error")
    return visit.redirect(
        NOTIFICATIONS_PAGE, flash=visit.gettext("Your preferences are saved."), kind="success"
    )


router.include_router(patient_documents.router)
router.include_router(patient_access.router)
router.include_router(patient_representatives.router)
router.include_router(patient_health.router)
router.include_router(patient_masks.router)
router.include_router(patient_history.router)
router.include_router(patient_dossier.router)
