"""The patient portal: the home page and the notices; the other pages live beside it
(``patient_documents``, ``patient_access``, ``patient_history``, ``patient_dossier``) and
join this router.

A patient acts on their own dossier or, having chosen to, on that of someone they represent
(``visit.patient_id``); every page says whose dossier it shows. Everything goes through the
domain services with ``visit.actor``: the policy decides and the audit trail records.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.policy import Action
from carnet.audit.models import AuditAction
from carnet.errors import InvalidInput
from carnet.essentials import service as essentials_service
from carnet.essentials.service import Essentials
from carnet.notifications import service as notices
from carnet.notifications.models import NewDocuments
from carnet.portal import patient_access, patient_documents, patient_dossier, patient_history
from carnet.portal.patient_context import whose_dossier
from carnet.portal.visits import CheckedForm, PatientVisit, Visit, form_text, parse_id

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
                session, visit.actor, visit.patient_id, clock=visit.platform.clock
            )
        if whose.state != "opposed":
            _authorize_inbox(session, visit, AuditAction.READ)
            unread = len(
                notices.inbox(
                    session, patient_id=visit.patient_id, unread_only=True, limit=INBOX_SIZE
                )
            )
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


def _authorize_inbox(session: Session, visit: Visit, audit: AuditAction) -> None:
    """The policy's word before the inbox is read or changed: the patient or representative.

    The notifications domain leaves that decision to its callers; reading one's notices is
    reading about one's access (``READ_ACCESS``), allowed on a closed dossier too.
    """
    access_guard.authorize(
        session,
        visit.actor,
        visit.patient_id,
        Action.READ_ACCESS,
        now=visit.platform.clock.now(),
        audit=audit,
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
            _authorize_inbox(session, visit, AuditAction.READ)
            inbox = notices.inbox(session, patient_id=visit.patient_id, limit=INBOX_SIZE)
            preferences = notices.preferences(session, visit.patient_id)
    return visit.render(
        "patient/notifications.html",
        whose=whose,
        inbox=inbox,
        preferences=preferences,
        choices=[choice.value for choice in NewDocuments],
    )


@router.post("/notifications/{notification_id}/read")
def mark_read(visit: PatientVisit, notification_id: str, form: CheckedForm) -> Response:
    """Mark one notice read."""
    with visit.transaction() as session:
        _authorize_inbox(session, visit, AuditAction.READ)
        notices.mark_read(
            session,
            patient_id=visit.patient_id,
            notification_id=parse_id(notification_id),
            clock=visit.platform.clock,
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
            access_guard.authorize(
                session,
                visit.actor,
                visit.patient_id,
                Action.MANAGE_ACCESS,
                now=clock.now(),
                audit=AuditAction.PREFERENCES,
            )
            notices.set_preferences(
                session,
                patient_id=visit.patient_id,
                new_documents=form_text(form, "new_documents"),
                email=form_text(form, "email") == "yes",
                clock=clock,
            )
    except InvalidInput as error:
        return visit.redirect(NOTIFICATIONS_PAGE, flash=error.message, kind="error")
    return visit.redirect(
        NOTIFICATIONS_PAGE, flash=visit.gettext("Your preferences are saved."), kind="success"
    )


router.include_router(patient_documents.router)
router.include_router(patient_access.router)
router.include_router(patient_history.router)
router.include_router(patient_dossier.router)
