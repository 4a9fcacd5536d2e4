"""Access that comes from care: a care contact with the patient present, and emergency access.

A care contact opens a normal access window, its length by profession (as in Austria's ELGA)
unless the patient chose one; presence is shown by a one-time code the patient issues here, or
by their card. Breaking the glass opens a dossier for a bounded time, with a stated reason, and
tells the patient and their treating doctor at once. Each takes the dossier opened at the door
for its purpose: recording a care contact and breaking the glass are decided on their own terms
(``Action.RECORD_CARE_CONTACT``, ``Action.BREAK_GLASS``), as the professional has no basis
before the act.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor, Assurance
from carnet.access.door import OpenedDossier
from carnet.access.errors import AccessRuleNotFound, InvalidAccessRule
from carnet.access.models import (
    CareContact,
    CareContactCode,
    CareContactMethod,
    EmergencyAccess,
    TreatingDoctor,
)
from carnet.access.rules import MAX_CARE_CONTACT_DAYS, current_preferences, keep_rule
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Profession
from carnet.notifications import service as notices

# Care-contact windows per profession (days), as in Austria's ELGA; the patient may change them.
CARE_CONTACT_DAYS = {Profession.PHARMACIST.value: 3}
DEFAULT_CARE_CONTACT_DAYS = 90
EMERGENCY_DURATION = dt.timedelta(hours=24)
CARE_CONTACT_CODE_LIFETIME = dt.timedelta(minutes=15)
_MIN_REASON = 10


def issue_care_contact_code(session: Session, dossier: OpenedDossier) -> str:
    """A one-time code the patient shows a professional (15 minutes); stored as a hash."""
    dossier.require(purposes.ISSUE_CARE_CONTACT_CODE)
    patient_id, now = dossier.patient_id, dossier.clock.now()
    code = f"{secrets.randbelow(10**8):08d}"
    session.add(
        CareContactCode(
            patient_id=patient_id,
            id=uuid.uuid4(),
            code_hash=_hash_code(patient_id, code),
            issued_at=now,
            expires_at=now + CARE_CONTACT_CODE_LIFETIME,
        )
    )
    session.flush()
    dossier.record(session, AuditAction.CARE_CONTACT_CODE)
    return code


# --- The professional's side ---------------------------------------------------------------


def record_care_contact(
    session: Session,
    dossier: OpenedDossier,
    *,
    method: CareContactMethod,
    code: str | None = None,
) -> CareContact:
    """Record a care contact with the patient present; opens a normal access window.

    Presence is shown by the patient's one-time code, or by their card read in the
    professional's own software — accepted only from a professional signed in with their card.
    """
    dossier.require(purposes.RECORD_CARE_CONTACT)
    actor, patient_id, now = dossier.actor, dossier.patient_id, dossier.clock.now()
    if method is CareContactMethod.CODE:
        _consume_code(session, patient_id, code or "", now)
    elif actor.assurance < Assurance.HIGH:
        raise InvalidAccessRule(
            "A card-based care contact needs a sign-in with the professional card.",
            field="method",
        )
    preferences = current_preferences(session, patient_id)
    if not preferences.care_contacts_enabled:
        raise InvalidAccessRule("The patient switched care-contact access off.", field="method")
    days = preferences.care_contact_days or CARE_CONTACT_DAYS.get(
        actor.profession or "", DEFAULT_CARE_CONTACT_DAYS
    )
    assert actor.professional_id is not None  # guaranteed by the policy for this action
    contact = CareContact(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=actor.professional_id,
        method=method,
        recorded_at=now,
        window_ends_at=now + dt.timedelta(days=days),
    )
    keep_rule(
        session,
        dossier,
        contact,
        action=AuditAction.CARE_CONTACT,
        details={"method": method.value, "window_ends_at": contact.window_ends_at},
    )
    return contact


def adjust_care_contact(
    session: Session, dossier: OpenedDossier, contact_id: uuid.UUID, *, ends_at: dt.datetime
) -> CareContact:
    """The patient shortens (or ends, with a past date) or extends a care-contact window.

    A window never reaches beyond 365 days from the contact.
    """
    dossier.require(purposes.ADJUST_CARE_CONTACT)
    now = dossier.clock.now()
    contact = session.get(CareContact, (dossier.patient_id, contact_id))
    if contact is None or contact.ended_at is not None:
        raise AccessRuleNotFound("open care contact")
    if ends_at > contact.recorded_at + dt.timedelta(days=MAX_CARE_CONTACT_DAYS):
        raise InvalidAccessRule(
            f"A care-contact window lasts at most {MAX_CARE_CONTACT_DAYS} days.", field="ends_at"
        )
    if ends_at <= now:
        contact.ended_at = now
        contact.ended_by = dossier.actor.subject
    else:
        contact.window_ends_at = ends_at
    keep_rule(
        session,
        dossier,
        contact,
        action=AuditAction.CARE_CONTACT,
        details={"adjusted_to": ends_at, "ended": contact.ended_at is not None},
    )
    return contact


def break_glass(
    session: Session,
    dossier: OpenedDossier,
    *,
    reason: str,
    duration: dt.timedelta = EMERGENCY_DURATION,
) -> EmergencyAccess:
    """Open a dossier in an emergency, with a stated reason, for a bounded time."""
    dossier.require(purposes.BREAK_GLASS)
    actor, patient_id, clock = dossier.actor, dossier.patient_id, dossier.clock
    if len(reason.strip()) < _MIN_REASON:
        raise InvalidAccessRule(
            f"State the reason for emergency access (at least {_MIN_REASON} characters).",
            field="reason",
        )
    now = clock.now()
    assert actor.professional_id is not None  # guaranteed by the policy for this action
    access = EmergencyAccess(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=actor.professional_id,
        reason=reason.strip(),
        opened_at=now,
        expires_at=now + duration,
    )
    session.add(access)
    session.flush()
    audit_trail.record(
        session,
        agent=actor.agent,
        action=AuditAction.BREAK_GLASS,
        clock=clock,
        patient_id=patient_id,
        reason=access.reason,
        entity_ids=[access.id],
        details={"expires_at": access.expires_at},
    )
    # The patient and their treating doctor are told at once (delivered by the outbox).
    doctor = directory.get_professional(session, actor.professional_id)
    treating = session.scalar(
        select(TreatingDoctor.professional_id).where(
            TreatingDoctor.patient_id == patient_id, TreatingDoctor.ended_at.is_(None)
        )
    )
    notices.notify_emergency_access(
        session,
        patient_id=patient_id,
        professional_name=f"{doctor.given} {doctor.family}",
        reason=access.reason,
        opened_at=access.opened_at,
        expires_at=access.expires_at,
        treating_doctor_id=treating,
        clock=clock,
    )
    return access


def emergency_access_in_force(  # patient-data: the actor's own access
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> EmergencyAccess | None:
    """The actor's own emergency access to this dossier that is still running, if any.

    Tells a professional about their own break-the-glass only (when it ends, for the banner);
    it reveals nothing of the dossier, so it is not an access to audit.
    """
    if actor.professional_id is None:
        return None
    return session.scalar(
        select(EmergencyAccess)
        .where(
            EmergencyAccess.patient_id == patient_id,
            EmergencyAccess.professional_id == actor.professional_id,
            EmergencyAccess.expires_at > clock.now(),
        )
        .order_by(EmergencyAccess.expires_at.desc())
        .limit(1)
    )


def emergency_accesses_ended(session: Session, *, since: dt.datetime, until: dt.datetime) -> int:
    """How many emergency accesses ran out after ``since`` and up to ``until``, all dossiers.

    An emergency access ends by itself at ``expires_at`` (the policy compares it with the
    time of each request); the jobs report how many did, for the agency's oversight.
    """
    return (
        session.scalar(
            select(func.count()).where(
                EmergencyAccess.expires_at > since, EmergencyAccess.expires_at <= until
            )
        )
        or 0
    )


def _consume_code(session: Session, patient_id: uuid.UUID, code: str, now: dt.datetime) -> None:
    wanted = _hash_code(patient_id, code)
    for candidate in session.scalars(
        select(CareContactCode).where(
            CareContactCode.patient_id == patient_id,
            CareContactCode.used_at.is_(None),
            CareContactCode.expires_at > now,
        )
    ):
        if hmac.compare_digest(candidate.code_hash, wanted):
            candidate.used_at = now
            return
    raise InvalidAccessRule("The patient's code is wrong or expired.", field="code")


def _hash_code(patient_id: uuid.UUID, code: str) -> str:
    # Salted by the patient id: the same code for two patients hashes differently.
    return hashlib.sha256(f"{patient_id}:{code}".encode()).hexdigest()
