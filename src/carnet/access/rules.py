"""The patient's rules on their dossier, and the controls the patient (or their representative) has.

Grant and revoke, block and lift, designate and end the treating doctor, set the standing
preferences (emergency opposition or widening, care contacts) and withdraw the emergency
choice, mask a document from one professional; and the overview of what is in force. Each takes
the dossier opened at the door (``access.door``) for its purpose (``access.purposes``), and
records the change on the dossier's audit trail. Nothing is deleted: ending a rule stamps it,
so its history stays readable.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier
from carnet.access.errors import AccessRuleNotFound, InvalidAccessRule, ProfessionalBlocked
from carnet.access.guard import Preferences
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
from carnet.audit.models import AuditAction
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


def access_overview(session: Session, dossier: OpenedDossier) -> AccessOverview:
    """The rules in force on the dossier (the patient, or their representative, asks)."""
    dossier.require(purposes.READ_ACCESS_RULES)
    patient_id, now = dossier.patient_id, dossier.clock.now()
    dossier.record(session, AuditAction.ACCESS_OVERVIEW)
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
    dossier: OpenedDossier,
    *,
    level: GrantLevel,
    professional_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    ends_at: dt.datetime | None = None,
) -> Grant:
    """Grant a named professional or organisation access; organisations need an end date."""
    dossier.require(purposes.GRANT_ACCESS)
    patient_id, now = dossier.patient_id, dossier.clock.now()
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
    if professional_id is not None and _block_in_force(session, patient_id, professional_id):
        # A grant under a block would say "access granted" and give none: the patient lifts
        # the block first (the portal asks), so what they see is what is in force.
        raise ProfessionalBlocked(professional_id)
    live = _live_grant(session, patient_id, professional_id, organisation_id, now)
    if live is not None:
        # One grant per grantee: a second grant changes the first, so the patient's list shows
        # each person once and a revoke ends their access for good.
        details: dict[str, object] = {
            "level": level.value,
            "ends_at": ends_at,
            "changed_from": live.level.value,
        }
        live.level = level
        live.ends_at = ends_at
        keep_rule(session, dossier, live, action=AuditAction.GRANT, details=details)
        return live
    grant = Grant(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=professional_id,
        organisation_id=organisation_id,
        level=level,
        starts_at=now,
        ends_at=ends_at,
        granted_by=dossier.actor.subject,
    )
    keep_rule(
        session,
        dossier,
        grant,
        action=AuditAction.GRANT,
        details={
            "level": level.value,
            "professional": professional_id,
            "organisation": organisation_id,
            "ends_at": ends_at,
        },
    )
    return grant


def _live_grant(
    session: Session,
    patient_id: uuid.UUID,
    professional_id: uuid.UUID | None,
    organisation_id: uuid.UUID | None,
    now: dt.datetime,
) -> Grant | None:
    """The grantee's grant in force (not revoked, not ended), if any; the oldest if several."""
    grantee = (
        Grant.professional_id == professional_id
        if professional_id is not None
        else Grant.organisation_id == organisation_id
    )
    return session.scalar(
        select(Grant)
        .where(
            Grant.patient_id == patient_id,
            grantee,
            Grant.revoked_at.is_(None),
            (Grant.ends_at.is_(None)) | (Grant.ends_at > now),
        )
        .order_by(Grant.starts_at, Grant.id)
        .limit(1)
    )


def revoke_grant(session: Session, dossier: OpenedDossier, grant_id: uuid.UUID) -> Grant:
    """End a grant now; it stays in the history."""
    dossier.require(purposes.REVOKE_ACCESS)
    grant = session.get(Grant, (dossier.patient_id, grant_id))
    if grant is None or grant.revoked_at is not None:
        raise AccessRuleNotFound("live grant")
    grant.revoked_at = dossier.clock.now()
    grant.revoked_by = dossier.actor.subject
    keep_rule(session, dossier, grant, action=AuditAction.REVOKE)
    return grant


def block_professional(
    session: Session, dossier: OpenedDossier, professional_id: uuid.UUID
) -> Block:
    """Bar a professional from the dossier, emergencies included, ending their grant
    (idempotent)."""
    dossier.require(purposes.BLOCK_PROFESSIONAL)
    patient_id, actor = dossier.patient_id, dossier.actor
    directory.get_professional(session, professional_id)
    existing = _block_in_force(session, patient_id, professional_id)
    if existing is not None:
        return existing
    now = dossier.clock.now()
    # A block ends the professional's grant: lifting the block later must not bring back an
    # access the patient no longer sees listed.
    while (live := _live_grant(session, patient_id, professional_id, None, now)) is not None:
        live.revoked_at = now
        live.revoked_by = actor.subject
        keep_rule(session, dossier, live, action=AuditAction.REVOKE)
    block = Block(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=professional_id,
        created_at=now,
        created_by=actor.subject,
    )
    keep_rule(
        session, dossier, block, action=AuditAction.BLOCK, details={"professional": professional_id}
    )
    return block


def lift_block(session: Session, dossier: OpenedDossier, professional_id: uuid.UUID) -> None:
    """Lift the patient's block on a professional."""
    dossier.require(purposes.LIFT_BLOCK)
    block = _block_in_force(session, dossier.patient_id, professional_id)
    if block is None:
        raise AccessRuleNotFound("block")
    block.lifted_at = dossier.clock.now()
    block.lifted_by = dossier.actor.subject
    keep_rule(
        session,
        dossier,
        block,
        action=AuditAction.UNBLOCK,
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
    session: Session, dossier: OpenedDossier, professional_id: uuid.UUID
) -> TreatingDoctor:
    """Make a doctor the treating doctor (extended access); ends the previous designation."""
    dossier.require(purposes.DESIGNATE_TREATING_DOCTOR)
    actor, patient_id, now = dossier.actor, dossier.patient_id, dossier.clock.now()
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
        dossier,
        designation,
        action=AuditAction.DESIGNATE,
        details={"professional": professional_id},
    )
    return designation


def set_preferences(
    session: Session, dossier: OpenedDossier, preferences: Preferences
) -> AccessPreferences:
    """Record the patient's standing choices: emergency opposition or widening, care contacts."""
    dossier.require(purposes.SET_ACCESS_PREFERENCES)
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
        patient_id=dossier.patient_id,
        id=uuid.uuid4(),
        emergency_opposed=preferences.emergency_opposed,
        emergency_widened=preferences.emergency_widened,
        care_contacts_enabled=preferences.care_contacts_enabled,
        care_contact_days=days,
        set_at=dossier.clock.now(),
        set_by=dossier.actor.subject,
    )
    keep_rule(session, dossier, row, action=AuditAction.PREFERENCES, details=preferences.__dict__)
    return row


def mask_document(
    session: Session,
    dossier: OpenedDossier,
    document_id: uuid.UUID,
    professional_id: uuid.UUID,
) -> DocumentMask:
    """Hide one document from one named professional."""
    dossier.require(purposes.MASK_DOCUMENT)
    directory.get_professional(session, professional_id)
    mask = DocumentMask(
        patient_id=dossier.patient_id,
        id=uuid.uuid4(),
        document_id=document_id,
        professional_id=professional_id,
        created_at=dossier.clock.now(),
        created_by=dossier.actor.subject,
    )
    keep_rule(
        session,
        dossier,
        mask,
        action=AuditAction.MASK,
        details={"professional": professional_id},
        entity=document_id,
    )
    return mask


def keep_rule(
    session: Session,
    dossier: OpenedDossier,
    rule: Grant
    | Block
    | TreatingDoctor
    | CareContact
    | Representation
    | AccessPreferences
    | DocumentMask,
    *,
    action: AuditAction,
    details: dict[str, object] | None = None,
    entity: uuid.UUID | None = None,
) -> None:
    """Store a rule, new or just changed, and record the change on the dossier's audit trail.

    One transaction holds both, so no rule changes without its trace. The event names the rule,
    unless ``entity`` names what it is about instead (a mask names the document it hides).
    """
    session.add(rule)
    session.flush()
    dossier.record(session, action, entity_ids=[entity or rule.id], details=details)


# --- Ending rules by their id (as FHIR Consent resources name them) -------------------------


def preferences_in_force(
    session: Session, patient_id: uuid.UUID
) -> AccessPreferences | None:  # patient-data: the door's snapshot reads it
    """The row of the patient's choices in force; None until they first choose.

    No policy check: callers have authorised the actor on this dossier.
    """
    return session.scalar(
        select(AccessPreferences)
        .where(AccessPreferences.patient_id == patient_id)
        .order_by(AccessPreferences.set_at.desc(), AccessPreferences.id)
        .limit(1)
    )


def lift_block_by_id(session: Session, dossier: OpenedDossier, block_id: uuid.UUID) -> Block:
    """Lift the block with this id; ``AccessRuleNotFound`` unless it is in force."""
    dossier.require(purposes.LIFT_BLOCK)
    block = session.get(Block, (dossier.patient_id, block_id))
    if block is None or block.lifted_at is not None:
        raise AccessRuleNotFound("block")
    lift_block(session, dossier, block.professional_id)
    return block


def end_treating_doctor(
    session: Session, dossier: OpenedDossier, designation_id: uuid.UUID
) -> TreatingDoctor:
    """End this treating-doctor designation now; ``AccessRuleNotFound`` unless it is in force.

    The doctor keeps whatever other rules (a grant, a care contact) give them.
    """
    dossier.require(purposes.DESIGNATE_TREATING_DOCTOR)
    ended = _end_designations(
        session, dossier.actor, dossier.patient_id, dossier.clock.now(), only=designation_id
    )
    if not ended:
        raise AccessRuleNotFound("treating-doctor designation")
    keep_rule(
        session,
        dossier,
        ended[0],
        action=AuditAction.DESIGNATE,
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
    session: Session, dossier: OpenedDossier, preferences_id: uuid.UUID
) -> AccessPreferences:
    """Withdraw the emergency opposition or widening recorded in the preferences row named.

    Emergency access goes back to the default (open to emergency physicians, normal documents
    only); the care-contact choices stay. ``AccessRuleNotFound`` unless that row is the one in
    force and makes an emergency choice.
    """
    dossier.require(purposes.SET_ACCESS_PREFERENCES)
    patient_id = dossier.patient_id
    row = preferences_in_force(session, patient_id)
    if row is None or row.id != preferences_id:
        raise AccessRuleNotFound("emergency preference")
    if not (row.emergency_opposed or row.emergency_widened):
        raise AccessRuleNotFound("emergency preference")
    chosen = replace(
        current_preferences(session, patient_id), emergency_opposed=False, emergency_widened=False
    )
    return set_preferences(session, dossier, chosen)
