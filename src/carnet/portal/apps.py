"""The apps a person let into their Carnet: what each may do, since when, and "Revoke".

Third-party apps are approved on the consent screen (``carnet.oauth.consent``); this page is
where the person takes that back. Revoking removes the approval and revokes the refresh
tokens the app holds for them (``carnet.auth.approvals.revoke``, audited): the app must ask
again, and the person sees the consent screen again. The same page serves patients and
professionals; an approval belongs to the person, not to a dossier they act on.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.auth import approvals
from carnet.auth.tokens import TokenAuthority
from carnet.portal.visits import CheckedForm, PatientVisit, ProfessionalVisit, Visit
from carnet.web.i18n import translations
from carnet.web.scope_words import describe

router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("/patient/apps")
def patient_apps(visit: PatientVisit) -> Response:
    """The apps the patient approved."""
    return _apps(visit, "/portal/patient/apps")


@router.post("/patient/apps/{client_id}/revoke")
def revoke_patient_app(visit: PatientVisit, form: CheckedForm, client_id: str) -> Response:
    """Withdraw an app's access to the patient's Carnet."""
    del form  # checked for its CSRF token: nothing else in it
    return _revoke(visit, client_id, "/portal/patient/apps")


@router.get("/professional/apps")
def professional_apps(visit: ProfessionalVisit) -> Response:
    """The apps the professional approved."""
    return _apps(visit, "/portal/professional/apps")


@router.post("/professional/apps/{client_id}/revoke")
def revoke_professional_app(
    visit: ProfessionalVisit, form: CheckedForm, client_id: str
) -> Response:
    """Withdraw an app's access to the professional's Carnet."""
    del form
    return _revoke(visit, client_id, "/portal/professional/apps")


def _apps(visit: Visit, here: str) -> Response:
    with visit.transaction() as session:
        apps = approvals.approved_apps(session, visit.actor)
    gettext = translations(visit.language).gettext
    return visit.render(
        "apps.html",
        apps=[(app, describe(app.scope, gettext)) for app in apps],
        here=here,
    )


def _revoke(visit: Visit, client_id: str, here: str) -> Response:
    platform = visit.platform
    with visit.transaction() as session:
        approvals.revoke(session, visit.actor, client_id, clock=platform.clock)
    # The revoked access tokens are refused by this worker from the next request on.
    authority: TokenAuthority = visit.request.app.state.authority
    authority.revocations.mark_stale()
    return visit.redirect(here, flash=visit.gettext("The app's access is withdrawn."))
