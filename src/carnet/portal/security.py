"""The Security page: a signed-in person's passkeys, listed, added and removed.

For every kind of account (patient, professional, operator): the passkeys are the person's
own, never those of someone they represent. Adding or removing one needs a strong sign-in, so
that a stolen password alone cannot plant a passkey (which signs in more strongly than the
password did). The ceremony is ``carnet.auth.passkeys``'s, bound to this browser session by
its CSRF token; ``static/passkeys.js`` talks to the authenticator.
"""

from __future__ import annotations

import json

from fastapi import APIRouter
from fastapi.responses import Response

from carnet.access.guard import require_strong
from carnet.auth import passkeys
from carnet.auth.errors import PasskeyRefused
from carnet.portal.visits import AnyVisit, CheckedForm, Visit, form_text, parse_id

router = APIRouter(prefix="/portal")

SECURITY_PAGE = "/portal/security"


@router.get("/security")
def security(visit: AnyVisit) -> Response:
    """The person's passkeys, and the form that adds one (its ceremony ready to run)."""
    require_strong(visit.actor)
    with visit.transaction() as session:
        account = passkeys.account_of(session, visit.actor)
        registered = passkeys.list_passkeys(session, account)
        ceremony = passkeys.begin_registration(
            session,
            visit.request.app.state.authority,
            account,
            binding=visit.csrf,
            clock=visit.platform.clock,
        )
    return visit.render(
        "security.html",
        passkeys=registered,
        passkey_creation=json.loads(ceremony.options_json),
        passkey_state=ceremony.state,
    )


@router.post("/security/passkeys")
def add_passkey(visit: AnyVisit, form: CheckedForm) -> Response:
    """Keep the passkey the authenticator just made, once its answer verifies."""
    require_strong(visit.actor)
    try:
        with visit.transaction() as session:
            passkey = passkeys.finish_registration(
                session,
                visit.request.app.state.authority,
                state=form_text(form, "passkey_state"),
                response=form_text(form, "credential"),
                name=form_text(form, "passkey_name"),
                binding=visit.csrf,
                clock=visit.platform.clock,
                network_address=visit.actor.network_address,
            )
            # The account is checked again: the state names it, the session must be it.
            account = passkeys.account_of(session, visit.actor)
            if (passkey.holder, passkey.subject_id) != (account.holder, account.subject_id):
                raise PasskeyRefused("This passkey request was made for another account.")
            name = passkey.name
    except PasskeyRefused as refused:
        return _failed(visit, refused, kept={"passkey_name": form_text(form, "passkey_name")})
    return visit.redirect(
        SECURITY_PAGE,
        flash=visit.gettext("The passkey “%(name)s” was added.", name=name),
        kind="success",
    )


@router.post("/security/passkeys/{passkey_id}/remove")
def remove_passkey(visit: AnyVisit, form: CheckedForm, passkey_id: str) -> Response:
    """Remove one of the person's passkeys: it signs in no more."""
    require_strong(visit.actor)
    try:
        with visit.transaction() as session:
            passkeys.remove_passkey(
                session,
                passkeys.account_of(session, visit.actor),
                parse_id(passkey_id),
                clock=visit.platform.clock,
                network_address=visit.actor.network_address,
            )
    except PasskeyRefused as refused:
        return _failed(visit, refused)
    return visit.redirect(
        SECURITY_PAGE, flash=visit.gettext("The passkey was removed."), kind="success"
    )


def _failed(
    visit: Visit, refused: PasskeyRefused, *, kept: dict[str, str] | None = None
) -> Response:
    return visit.redirect(
        SECURITY_PAGE,
        flash=visit.gettext(
            "The passkey could not be added or removed: %(reason)s", reason=refused.message
        ),
        kind="error",
        kept=kept,
    )
