"""The patient's rules on their dossier, and the controls the patient (or their representative) has.

Grant and revoke, block and lift, designate and end the treating doctor, set the standing
preferences (emergency opposition or widening, care contacts) and withdraw the emergency
choice, mask a document from one professional; and the overview of what is in force. Each asks
the policy first, through the guard, and records the change on the dossier's audit trail.
Nothing is deleted: ending a rule stamps it, so its history stays readable.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.access.errors import AccessRuleNotFound, InvalidAccessRule
from carnet.access.guard import Preferences, authorize, record_action
from carnet.access.models import (
    AccessPreferences,
    Block,
    CareContact,
    DocumentMask,
    EmergencyAccess,
    Grant,
    GrantLevel,
    Representation,
    TreatingDoctor,
)
from carnet.access.policy import Action
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Profession

MAX_CARE_CONTACT_DAYS = 365


def current_preferences(session: Session, patient_id: uuid.UUID) -> Preferences:
    """The patient's choices in force (the defaults until they choose)."""
    row = preferences_in_force(session, patient_id)
    if row is None:
        return Preferences()
    return Preferences(
        emergency_opposed=row.emergency_opposed,
        emergency_widened=row.emergency_widened,
        care_contacts_enabled=row.care_contacts_enabled,
        care_contact_days=row.care_contact_days,
    )


@dataclass(frozen=True)
class AccessOverview:
    """Who may open the dossier now, and until when: what the patient sees in "my access"."""

    grants: list[Grant]
    care_contacts: list[CareContact]
    treating_doctor: TreatingDoctor | None
    blocks: list[Block]
    emergency_accesses: list[EmergencyAccess]
    preferences: Preferences


def access_overview(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> AccessOverview:
    """The rules in force on the dossier (the patient, or their representative, asks)."""
    now = clock.now()
    authorize(
        session, actor, patient_id, Action.READ_ACCESS, now=now, audit=AuditAction.ACCESS_OVERVIEW
    )
    record_action(session, actor, AuditAction.ACCESS_OVERVIEW, patient_id, clock)
    return AccessOverview(
        grants=list(
            session.scalars(
                select(Grant)
                .where(
                    Grant.patient_id == patient_id,
                    Grant.revoked_at.is_(None),
                    (Grant.ends_at.is_(None)) | (Grant.ends_at > now),
                )
                .order_by(Grant.starts_at)
            )
        ),
        care_contacts=list(
            session.scalars(
                select(CareContact)
                .where(
                    CareContact.patient_id == patient_id,
                    CareContact.ended_at.is_(None),
                    CareContact.window_ends_at > now,
                )
                .order_by(CareContact.recorded_at)
            )
        ),
        treating_doctor=session.scalar(
            select(TreatingDoctor).where(
                TreatingDoctor.patient_id == patient_id, TreatingDoctor.ended_at.is_(None)
            )
        ),
        blocks=list(
            session.scalars(
                select(Block).where(Block.patient_id == patient_id, Block.lifted_at.is_(None))
            )
        ),
        emergency_accesses=list(
            session.scalars(
                select(EmergencyAccess).where(
                    EmergencyAccess.patient_id == patient_id, EmergencyAccess.expires_at > now
                )
            )
        ),
        preferences=current_preferences(session, patient_id),
    )


# --- The patient's controls ----------------------------------------------------------------


def grant_access(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    *,
    level: GrantLevel,
    clock: Clock,
    professional_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    ends_at: dt.datetime | None = None,
) -> Grant:
    """Grant a named professional or organisation access; organisations need an end date."""
    now = clock.now()
    authorize(session, actor, patient_id, Action.MANAGE_ACCESS, now=now, audit=AuditAction.GRANT)
    if (professional_id is None) == (organisation_id is None):
        raise InvalidAccessRule(
            "Grant access to one professional or one organisation.", field="grantee"
        )
    if professional_id is not None:
        directory.get_professional(session, professional_id)
    if organisation_id is not None:
        directory.get_organisation(session, organisation_id)
        if ends_at is None:
            raise InvalidAccessRule(
                "A grant to an organisation needs an end date.", field="ends_at"
            )
    if ends_at is not None and ends_at <= now:
        raise InvalidAccessRule("The end date is already past.", field="ends_at")
    grant = Grant(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=professional_id,
        organisation_id=organisation_id,
        level=level,
        starts_at=now,
        ends_at=ends_at,
        granted_by=actor.subject,
    )
    keep_rule(
        session,
        grant,
        actor=actor,
        action=AuditAction.GRANT,
        patient_id=patient_id,
        clock=clock,
        details={
            "level": level.value,
            "professional": professional_id,
            "organisation": organisation_id,
            "ends_at": ends_at,
        },
    )
    return grant


def revoke_grant(
    session: Session, actor: Actor, patient_id: uuid.UUID, grant_id: uuid.UUID, *, clock: Clock
) -> Grant:
    """End a grant now; it stays in the history."""
    authorize_control(session, actor, patient_id, audit=AuditAction.REVOKE, clock=clock)
    grant = session.get(Grant, (patient_id, grant_id))
    if grant is None or grant.revoked_at is not None:
        raise AccessRuleNotFound("live grant")
    grant.revoked_at = clock.now()
    grant.revoked_by = actor.subject
    keep_rule(
        session, grant, actor=actor, action=AuditAction.REVOKE, patient_id=patient_id, clock=clock
    )
    return grant


def block_professional(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    professional_id: uuid.UUID,
    *,
    clock: Clock,
) -> Block:
    """Bar a professional from the dossier, emergencies included (idempotent)."""
    authorize_control(session, actor, patient_id, audit=AuditAction.BLOCK, clock=clock)
    directory.get_professional(session, professional_id)
    existing = _block_in_force(session, patient_id, professional_id)
    if existing is not None:
        return existing
    block = Block(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=professional_id,
        created_at=clock.now(),
        created_by=actor.subject,
    )
    keep_rule(
        session,
        block,
        actor=actor,
        action=AuditAction.BLOCK,
        patient_id=patient_id,
        clock=clock,
        details={"professional": professional_id},
    )
    return block


def lift_block(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    professional_id: uuid.UUID,
    *,
    clock: Clock,
) -> None:
    """Lift the patient's block on a professional."""
    authorize_control(session, actor, patient_id, audit=AuditAction.UNBLOCK, clock=clock)
    block = _block_in_force(session, patient_id, professional_id)
    if block is None:
        raise AccessRuleNotFound("block")
    block.lifted_at = clock.now()
    block.lifted_by = actor.subject
    keep_rule(
        session,
        block,
        actor=actor,
        action=AuditAction.UNBLOCK,
        patient_id=patient_id,
        clock=clock,
        details={"professional": professional_id},
    )


def _block_in_force(
    session: Session, patient_id: uuid.UUID, professional_id: uuid.UUID
) -> Block | None:
    """The patient's block on this professional that is not lifted, if any (one at a time)."""
    return session.scalar(
        select(Block).where(
            Block.patient_id == patient_id,
            Block.professional_id == professional_id,
            Block.lifted_at.is_(None),
        )
    )


def designate_treating_doctor(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    professional_id: uuid.UUID,
    *,
    clock: Clock,
) -> TreatingDoctor:
    """Make a doctor the treating doctor (extended access); ends the previous designation."""
    now = clock.now()
    authorize(
        session, actor, patient_id, Action.MANAGE_ACCESS, now=now, audit=AuditAction.DESIGNATE
    )
    doctor = directory.get_professional(session, professional_id)
    if doctor.profession not in (Profession.GENERAL_PRACTITIONER, Profession.SPECIALIST):
        raise InvalidAccessRule(
            "The treating doctor must be a general practitioner or a specialist.",
            field="professional",
        )
    _end_designations(session, actor, patient_id, now)
    designation = TreatingDoctor(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=professional_id,
        designated_at=now,
        designated_by=actor.subject,
    )
    keep_rule(
        session,
        designation,
        actor=actor,
        action=AuditAction.DESIGNATE,
        patient_id=patient_id,
        clock=clock,
        details={"professional": professional_id},
    )
    return designation


def set_preferences(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    preferences: Preferences,
    *,
    clock: Clock,
) -> AccessPreferences:
    """Record the patient's standing choices: emergency opposition or widening, care contacts."""
    authorize_control(session, actor, patient_id, audit=AuditAction.PREFERENCES, clock=clock)
    days = preferences.care_contact_days
    if days is not None and not 1 <= days <= MAX_CARE_CONTACT_DAYS:
        raise InvalidAccessRule(
            f"A care-contact window lasts 1 to {MAX_CARE_CONTACT_DAYS} days.",
            field="care_contact_days",
        )
    if preferences.emergency_opposed and preferences.emergency_widened:
        raise InvalidAccessRule(
            "Emergency access cannot be both opposed and widened.", field="emergency_widened"
        )
    row = AccessPreferences(
        patient_id=patient_id,
        id=uuid.uuid4(),
        emergency_opposed=preferences.emergency_opposed,
        emergency_widened=preferences.emergency_widened,
        care_contacts_enabled=preferences.care_contacts_enabled,
        care_contact_days=days,
        set_at=clock.now(),
        set_by=actor.subject,
    )
    keep_rule(
        session,
        row,
        actor=actor,
        action=AuditAction.PREFERENCES,
        patient_id=patient_id,
        clock=clock,
        details=preferences.__dict__,
    )
    return row


def mask_document(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    document_id: uuid.UUID,
    professional_id: uuid.UUID,
    *,
    clock: Clock,
) -> DocumentMask:
    """Hide one document from one named professional."""
    authorize(
        session, actor, patient_id, Action.SET_VISIBILITY, now=clock.now(), audit=AuditAction.MASK
    )
    directory.get_professional(session, professional_id)
    mask = DocumentMask(
        patient_id=patient_id,
        id=uuid.uuid4(),
        document_id=document_id,
        professional_id=professional_id,
        created_at=clock.now(),
        created_by=actor.subject,
    )
    keep_rule(
        session,
        mask,
        actor=actor,
        action=AuditAction.MASK,
        patient_id=patient_id,
        clock=clock,
        details={"professional": professional_id},
        entity=document_id,
    )
    return mask


def keep_rule(
    session: Session,
    rule: Grant
    | Block
    | TreatingDoctor
    | CareContact
    | Representation
    | AccessPreferences
    | DocumentMask,
    *,
    actor: Actor,
    action: AuditAction,
    patient_id: uuid.UUID,
    clock: Clock,
    details: dict[str, object] | None = None,
    entity: uuid.UUID | None = None,
) -> None:
    """Store a rule, new or just changed, and record the change on the dossier's audit trail.

    One transaction holds both, so no rule changes without its trace. The event names the rule,
    unless ``entity`` names what it is about instead (a mask names the document it hides).
    """
    session.add(rule)
    session.flush()
    record_action(
        session, actor, action, patient_id, clock, entity=entity or rule.id, details=details
    )


def authorize_control(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, audit: AuditAction, clock: Clock
) -> None:
    """Refuse (``AccessDenied``, recorded as ``audit``) unless ``actor`` manages this dossier.

    The patient's controls (and their representative's) all ask the policy the same question:
    may this actor manage who has access to the dossier, now.
    """
    authorize(session, actor, patient_id, Action.MANAGE_ACCESS, now=clock.now(), audit=audit)


# --- Ending rules by their id (as FHIR Consent resources name them) -------------------------


def preferences_in_force(session: Session, patient_id: uuid.UUID) -> AccessPreferences | None:
    """The row of the patient's choices in force; None until they first choose.

    No policy check: callers have authorised the actor on this dossier.
    """
    return session.scalar(
        select(AccessPreferences)
        .where(AccessPreferences.patient_id == patient_id)
        .order_by(AccessPreferences.set_at.desc(), AccessPreferences.id)
        .limit(1)
    )


def lift_block_by_id(
    session: Session, actor: Actor, patient_id: uuid.UUID, block_id: uuid.UUID, *, clock: Clock
) -> Block:
    """Lift the block with this id; ``AccessRuleNotFound`` unless it is in force."""
    block = session.get(Block, (patient_id, block_id))
    if block is None or block.lifted_at is not None:
        # Whoever may not manage this dossier hears the same "not found", recorded as refused.
        authorize_control(session, actor, patient_id, audit=AuditAction.UNBLOCK, clock=clock)
        raise AccessRuleNotFound("block")
    lift_block(session, actor, patient_id, block.professional_id, clock=clock)
    return block


def end_treating_doctor(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    designation_id: uuid.UUID,
    *,
    clock: Clock,
) -> TreatingDoctor:
    """End this treating-doctor designation now; ``AccessRuleNotFound`` unless it is in force.

    The doctor keeps whatever other rules (a grant, a care contact) give them.
    """
    authorize_control(session, actor, patient_id, audit=AuditAction.DESIGNATE, clock=clock)
    ended = _end_designations(session, actor, patient_id, clock.now(), only=designation_id)
    if not ended:
        raise AccessRuleNotFound("treating-doctor designation")
    keep_rule(
        session,
        ended[0],
        actor=actor,
        action=AuditAction.DESIGNATE,
        patient_id=patient_id,
        clock=clock,
        details={"professional": ended[0].professional_id, "ended": True},
    )
    return ended[0]


def _end_designations(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    now: dt.datetime,
    *,
    only: uuid.UUID | None = None,
) -> list[TreatingDoctor]:
    """Stamp the designations in force (or only the one named) as ended now; those stamped."""
    query = select(TreatingDoctor).where(
        TreatingDoctor.patient_id == patient_id, TreatingDoctor.ended_at.is_(None)
    )
    if only is not None:
        query = query.where(TreatingDoctor.id == only)
    ended = list(session.scalars(query))
    for designation in ended:
        designation.ended_at = now
        designation.ended_by = actor.subject
    return ended


def withdraw_emergency_choice(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    preferences_id: uuid.UUID,
    *,
    clock: Clock,
) -> AccessPreferences:
    """Withdraw the emergency opposition or widening recorded in the preferences row named.

    Emergency access goes back to the default (open to emergency physicians, normal documents
    only); the care-contact choices stay. ``AccessRuleNotFound`` unless that row is the one in
    force and makes an emergency choice.
    """
    authorize_control(session, actor, patient_id, audit=AuditAction.PREFERENCES, clock=clock)
    row = preferences_in_force(session, patient_id)
    if row is None or row.id != preferences_id:
        raise AccessRuleNotFound("emergency preference")
    if not (row.emergency_opposed or row.emergency_widened):
        raise AccessRuleNotFound("emergency preference")
    chosen = replace(
        current_preferences(session, patient_id), emergency_opposed=False, emergency_widened=False
    )
    return set_preferences(session, actor, patient_id, chosen, clock=clock)
