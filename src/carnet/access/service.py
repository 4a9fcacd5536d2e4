"""Access services: load what the patient's rules say, and let the patient change them.

``dossier_access`` gathers, in one indexed statement by ``patient_id``, everything the policy
needs about one actor on one dossier. The other functions are the patient's (and their
representative's) controls — grant, revoke, block, designate, prefer, mask — and the
professional's — record a care contact, break the glass. Each asks the policy first.
Nothing is deleted: ending a rule stamps it, so its history stays readable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Label,
    Row,
    Select,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.errors import (
    AccessDenied,
    AccessRuleNotFound,
    InsufficientScope,
    InvalidAccessRule,
    StrongerAuthenticationRequired,
)
from carnet.access.models import (
    AccessPreferences,
    Block,
    CareContact,
    CareContactCode,
    CareContactMethod,
    DocumentMask,
    EmergencyAccess,
    Grant,
    GrantLevel,
    Representation,
    RepresentationKind,
    TreatingDoctor,
)
from carnet.access.policy import (
    Action,
    DossierAccess,
    PatientSearch,
    decide_dossier,
    decide_patient_search,
    scope_allows,
)
from carnet.access.scopes import Interaction, allows
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.audit.service import Refusal
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Profession
from carnet.notifications import service as notices
from carnet.patients import service as patients
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import Dossier, Patient

# Care-contact windows per profession (days), as in Austria's ELGA; the patient may change them.
CARE_CONTACT_DAYS = {Profession.PHARMACIST.value: 3}
DEFAULT_CARE_CONTACT_DAYS = 90
MAX_CARE_CONTACT_DAYS = 365
EMERGENCY_DURATION = dt.timedelta(hours=24)
CARE_CONTACT_CODE_LIFETIME = dt.timedelta(minutes=15)
_MIN_REASON = 10
# The reason of a search by a professional without any basis that showed them nothing: not a
# consultation (see ``record_consultation``), though the request itself was answered.
NOTHING_SHOWN = "no grant, care contact, designation or emergency access: nothing shown"
_AGE_OF_MAJORITY = 18


@dataclass(frozen=True)
class Preferences:
    """The patient's standing choices in force."""

    emergency_opposed: bool = False
    emergency_widened: bool = False
    care_contacts_enabled: bool = True
    care_contact_days: int | None = None


def dossier_access(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, now: dt.datetime
) -> DossierAccess:
    """What the rules say about ``actor`` on this dossier now; ``PatientNotFound`` if none.

    One statement by patient id: the dossier's state, the patient's choices in force and, for a
    professional, every basis of access as an ``EXISTS`` column. A second reads the documents
    the patient masked from this professional, only when there are some; a representative's
    mandate is a second as well. The policy sits on the path of every request: a round trip
    per rule would cost more than the rules.
    """
    professional = actor.professional_id is not None and actor.kind is not ActorKind.PATIENT
    parameters: dict[str, object] = {"patient_id": patient_id}
    if professional:
        parameters |= {
            "professional_id": actor.professional_id,
            "organisation_id": actor.organisation_id,
            "now": now,
        }
    row = session.execute(_access_statement(professional), parameters).one_or_none()
    if row is None:
        raise PatientNotFound()
    preferences = _preferences_of(row)
    base = DossierAccess(
        patient_id=patient_id,
        dossier_state=row.state.value,
        emergency_opposed=preferences.emergency_opposed,
        emergency_widened=preferences.emergency_widened,
    )
    if actor.kind is ActorKind.PATIENT and actor.person_id is not None:
        return _patient_access(session, base, actor.person_id, now)
    if not professional:
        return base
    return replace(
        base,
        blocked=bool(row.blocked),
        treating_doctor=bool(row.treating),
        grant_level=(
            GrantLevel.EXTENDED
            if row.extended_grant
            else GrantLevel.NORMAL
            if row.any_grant
            else None
        ),
        care_contact_open=preferences.care_contacts_enabled and bool(row.care_contact),
        emergency_open=bool(row.emergency),
        masked_document_ids=(
            _masked_from(session, patient_id, actor.professional_id) if row.masks else frozenset()
        ),
        consulted_before=bool(row.consulted_before),
    )


@cache
def _access_statement(professional: bool) -> Select[Any, *tuple[Any, ...]]:
    """``dossier_access``'s statement, built once per process with bound parameters.

    Building a select of a dozen subqueries, and its cache key, costs more Python than running
    it; a statement kept whole is looked up in SQLAlchemy's compiled cache by identity.
    """
    patient_id: BindParameter[uuid.UUID] = bindparam("patient_id")
    columns = [Dossier.state, *_preference_columns(patient_id)]
    if professional:
        columns += _basis_columns(
            patient_id, bindparam("professional_id"), bindparam("organisation_id"), bindparam("now")
        )
    return select(*columns).where(Dossier.patient_id == patient_id)


_PREFERENCES = (
    "emergency_opposed",
    "emergency_widened",
    "care_contacts_enabled",
    "care_contact_days",
)


def _preference_columns(patient_id: BindParameter[Any]) -> list[Label[object]]:
    """The patient's latest choices, one scalar subquery per field (NULL until they choose)."""
    return [
        select(getattr(AccessPreferences, name))
        .where(AccessPreferences.patient_id == patient_id)
        .order_by(AccessPreferences.set_at.desc(), AccessPreferences.id)
        .limit(1)
        .scalar_subquery()
        .label(name)
        for name in _PREFERENCES
    ]


def _preferences_of(row: Row[Any, *tuple[Any, ...]]) -> Preferences:
    defaults = Preferences()
    return Preferences(
        emergency_opposed=_or(row.emergency_opposed, defaults.emergency_opposed),
        emergency_widened=_or(row.emergency_widened, defaults.emergency_widened),
        care_contacts_enabled=_or(row.care_contacts_enabled, defaults.care_contacts_enabled),
        care_contact_days=row.care_contact_days,
    )


def _or(value: object, default: bool) -> bool:
    return default if value is None else bool(value)


def _basis_columns(
    patient_id: BindParameter[Any],
    professional_id: BindParameter[Any],
    organisation_id: BindParameter[Any],
    now: BindParameter[Any],
) -> list[Label[bool]]:
    """Each basis of a professional's access (and each bar to it) as an ``EXISTS`` column.

    A grant names the professional or their organisation; a NULL organisation matches none.
    """
    live_grant = and_(
        Grant.patient_id == patient_id,
        (Grant.professional_id == professional_id) | (Grant.organisation_id == organisation_id),
        Grant.revoked_at.is_(None),
        Grant.starts_at <= now,
        (Grant.ends_at.is_(None)) | (Grant.ends_at > now),
    )
    return [
        exists()
        .where(
            Block.patient_id == patient_id,
            Block.professional_id == professional_id,
            Block.lifted_at.is_(None),
        )
        .label("blocked"),
        exists()
        .where(
            TreatingDoctor.patient_id == patient_id,
            TreatingDoctor.professional_id == professional_id,
            TreatingDoctor.ended_at.is_(None),
        )
        .label("treating"),
        exists().where(live_grant, Grant.level == GrantLevel.EXTENDED).label("extended_grant"),
        exists().where(live_grant).label("any_grant"),
        exists()
        .where(
            CareContact.patient_id == patient_id,
            CareContact.professional_id == professional_id,
            CareContact.ended_at.is_(None),
            CareContact.window_ends_at > now,
        )
        .label("care_contact"),
        exists()
        .where(
            EmergencyAccess.patient_id == patient_id,
            EmergencyAccess.professional_id == professional_id,
            EmergencyAccess.expires_at > now,
        )
        .label("emergency"),
        exists()
        .where(
            DocumentMask.patient_id == patient_id,
            DocumentMask.professional_id == professional_id,
            DocumentMask.lifted_at.is_(None),
        )
        .label("masks"),
        exists()
        .where(
            AuditEvent.chain_id == patient_id,
            AuditEvent.agent_professional_id == professional_id,
            AuditEvent.outcome == AuditOutcome.ALLOWED,
        )
        .label("consulted_before"),
    ]


def _masked_from(
    session: Session, patient_id: uuid.UUID, professional_id: uuid.UUID | None
) -> frozenset[uuid.UUID]:
    return frozenset(
        session.scalars(
            select(DocumentMask.document_id).where(
                DocumentMask.patient_id == patient_id,
                DocumentMask.professional_id == professional_id,
                DocumentMask.lifted_at.is_(None),
            )
        )
    )


def _patient_access(
    session: Session, base: DossierAccess, person_id: uuid.UUID, now: dt.datetime
) -> DossierAccess:
    is_patient = person_id == base.patient_id
    return replace(
        base,
        is_patient=is_patient,
        is_representative=not is_patient
        and represents(session, person_id, base.patient_id, now=now),
    )


def record_consultation(
    session: Session,
    actor: Actor,
    access: DossierAccess | None,
    patient_id: uuid.UUID,
    *,
    action: AuditAction,
    clock: Clock,
    entity_ids: Iterable[uuid.UUID] = (),
    details: dict[str, object] | None = None,
) -> None:
    """Record an allowed look at the dossier, naming the basis on which it was allowed.

    A professional's first consultation of a dossier is also told to the patient: when the
    policy's snapshot saw no earlier one, the event is appended in the transaction (locking the
    chain's head) and the trail asked again, so that two first looks at once make one notice.
    Every other consultation goes through the audit trail's group commit where there is one.

    A professional with no basis on the dossier who was shown nothing (a search answered with
    an empty Bundle, so the dossier looks no different from one they may not know exists) did
    not consult it: the attempt is recorded as denied and the patient is told nothing, so that
    nobody can make Carnet alarm a patient they merely identified.
    """
    entity_ids = tuple(entity_ids)
    if (
        access is not None
        and actor.professional_id is not None
        and not access.bases
        and not access.acts_as_patient
        and not entity_ids
    ):
        audit_trail.record(
            session,
            agent=actor.agent,
            action=action,
            clock=clock,
            patient_id=patient_id,
            outcome=AuditOutcome.DENIED,
            reason=NOTHING_SHOWN,
            details=details,
        )
        return
    if access is not None and access.bases:
        details = {**(details or {}), "basis": access.bases[0].value}
    professional_id = actor.professional_id
    nothing_to_tell = professional_id is None or (access is not None and access.consulted_before)
    event = audit_trail.record_consultation(
        session,
        agent=actor.agent,
        action=action,
        clock=clock,
        patient_id=patient_id,
        entity_ids=entity_ids,
        details=details,
        deferrable=nothing_to_tell,
    )
    if nothing_to_tell or professional_id is None or event is None:
        return
    if audit_trail.has_accessed_before(session, patient_id, professional_id, before_seq=event.seq):
        return
    professional = directory.get_professional(session, professional_id)
    notices.notify_first_access(
        session,
        patient_id=patient_id,
        professional_name=f"{professional.given} {professional.family}",
        clock=clock,
    )


def authorize(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    action: Action,
    *,
    now: dt.datetime,
    audit: AuditAction,
) -> DossierAccess:
    """Load the actor's access and require ``action``; raise ``AccessDenied`` otherwise.

    A human actor below the strong level gets ``StrongerAuthenticationRequired`` before
    anything is looked up, so the answer reveals nothing about the dossier. Every refusal
    carries what the audit trail must record of it (as ``audit``).
    """
    require_strong(actor, patient_id=patient_id, audit=audit)
    try:
        access = dossier_access(session, actor, patient_id, now=now)
    except PatientNotFound as error:
        raise refuse(actor, audit, "no such dossier", patient_id) from error
    decision = decide_dossier(actor, access, action)
    if not decision:
        raise refuse(actor, audit, decision.reason, patient_id)
    return access


def refuse(
    actor: Actor,
    audit: AuditAction,
    reason: str,
    patient_id: uuid.UUID | None,
    entity_ids: tuple[uuid.UUID, ...] = (),
) -> AccessDenied:
    """An ``AccessDenied`` carrying its audit record."""
    return AccessDenied(reason).for_audit(
        Refusal(actor.agent, audit, reason, patient_id, entity_ids)
    )


def require_strong(
    actor: Actor, *, patient_id: uuid.UUID | None = None, audit: AuditAction | None = None
) -> None:
    """Refuse a patient or professional whose sign-in is below the strong level."""
    if actor.kind in (ActorKind.PATIENT, ActorKind.PROFESSIONAL) and not actor.is_strong:
        error = StrongerAuthenticationRequired(Assurance.SUBSTANTIAL)
        if audit is not None:
            error.for_audit(Refusal(actor.agent, audit, "weak authentication", patient_id))
        raise error


def represents(
    session: Session, representative_id: uuid.UUID, patient_id: uuid.UUID, *, now: dt.datetime
) -> bool:
    """Whether a live representation links ``representative_id`` to ``patient_id``."""
    return _exists(
        session,
        select(Representation.id).where(
            Representation.representative_id == representative_id,
            Representation.patient_id == patient_id,
            Representation.revoked_at.is_(None),
            Representation.starts_at <= now,
            (Representation.ends_at.is_(None)) | (Representation.ends_at > now),
        ),
    )


def represented_patients(
    session: Session, representative_id: uuid.UUID, *, now: dt.datetime
) -> list[uuid.UUID]:
    """The patients this person may currently act for (not counting themself)."""
    return list(
        session.scalars(
            select(Representation.patient_id).where(
                Representation.representative_id == representative_id,
                Representation.revoked_at.is_(None),
                Representation.starts_at <= now,
                (Representation.ends_at.is_(None)) | (Representation.ends_at > now),
            )
        )
    )


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
    _log(session, actor, AuditAction.ACCESS_OVERVIEW, patient_id, clock)
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
    session.add(grant)
    session.flush()
    _log(
        session,
        actor,
        AuditAction.GRANT,
        patient_id,
        clock,
        entity=grant.id,
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
    authorize(
        session, actor, patient_id, Action.MANAGE_ACCESS, now=clock.now(), audit=AuditAction.REVOKE
    )
    grant = session.get(Grant, (patient_id, grant_id))
    if grant is None or grant.revoked_at is not None:
        raise AccessRuleNotFound("live grant")
    grant.revoked_at = clock.now()
    grant.revoked_by = actor.subject
    session.flush()
    _log(session, actor, AuditAction.REVOKE, patient_id, clock, entity=grant.id)
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
    authorize(
        session, actor, patient_id, Action.MANAGE_ACCESS, now=clock.now(), audit=AuditAction.BLOCK
    )
    directory.get_professional(session, professional_id)
    existing = session.scalar(
        select(Block).where(
            Block.patient_id == patient_id,
            Block.professional_id == professional_id,
            Block.lifted_at.is_(None),
        )
    )
    if existing is not None:
        return existing
    block = Block(
        patient_id=patient_id,
        id=uuid.uuid4(),
        professional_id=professional_id,
        created_at=clock.now(),
        created_by=actor.subject,
    )
    _keep(
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
    authorize(
        session, actor, patient_id, Action.MANAGE_ACCESS, now=clock.now(), audit=AuditAction.UNBLOCK
    )
    block = session.scalar(
        select(Block).where(
            Block.patient_id == patient_id,
            Block.professional_id == professional_id,
            Block.lifted_at.is_(None),
        )
    )
    if block is None:
        raise AccessRuleNotFound("block")
    block.lifted_at = clock.now()
    block.lifted_by = actor.subject
    session.flush()
    _log(
        session,
        actor,
        AuditAction.UNBLOCK,
        patient_id,
        clock,
        entity=block.id,
        details={"professional": professional_id},
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
    _keep(
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
    authorize(
        session,
        actor,
        patient_id,
        Action.MANAGE_ACCESS,
        now=clock.now(),
        audit=AuditAction.PREFERENCES,
    )
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
    _keep(
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
    session.add(mask)
    session.flush()
    _log(
        session,
        actor,
        AuditAction.MASK,
        patient_id,
        clock,
        entity=document_id,
        details={"professional": professional_id},
    )
    return mask


def issue_care_contact_code(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> str:
    """A one-time code the patient shows a professional (15 minutes); stored as a hash."""
    authorize(
        session,
        actor,
        patient_id,
        Action.MANAGE_ACCESS,
        now=clock.now(),
        audit=AuditAction.CARE_CONTACT_CODE,
    )
    code = f"{secrets.randbelow(10**8):08d}"
    session.add(
        CareContactCode(
            patient_id=patient_id,
            id=uuid.uuid4(),
            code_hash=_hash_code(patient_id, code),
            issued_at=clock.now(),
            expires_at=clock.now() + CARE_CONTACT_CODE_LIFETIME,
        )
    )
    session.flush()
    _log(session, actor, AuditAction.CARE_CONTACT_CODE, patient_id, clock)
    return code


# --- The professional's side ---------------------------------------------------------------


def record_care_contact(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    *,
    method: CareContactMethod,
    clock: Clock,
    code: str | None = None,
) -> CareContact:
    """Record a care contact with the patient present; opens a normal access window.

    Presence is shown by the patient's one-time code, or by their card read in the
    professional's own software — accepted only from a professional signed in with their card.
    """
    now = clock.now()
    authorize(
        session,
        actor,
        patient_id,
        Action.RECORD_CARE_CONTACT,
        now=now,
        audit=AuditAction.CARE_CONTACT,
    )
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
    _keep(
        session,
        contact,
        actor=actor,
        action=AuditAction.CARE_CONTACT,
        patient_id=patient_id,
        clock=clock,
        details={"method": method.value, "window_ends_at": contact.window_ends_at},
    )
    return contact


def adjust_care_contact(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    contact_id: uuid.UUID,
    *,
    ends_at: dt.datetime,
    clock: Clock,
) -> CareContact:
    """The patient shortens (or ends, with a past date) or extends a care-contact window.

    A window never reaches beyond 365 days from the contact.
    """
    now = clock.now()
    authorize(
        session, actor, patient_id, Action.MANAGE_ACCESS, now=now, audit=AuditAction.CARE_CONTACT
    )
    contact = session.get(CareContact, (patient_id, contact_id))
    if contact is None or contact.ended_at is not None:
        raise AccessRuleNotFound("open care contact")
    if ends_at > contact.recorded_at + dt.timedelta(days=MAX_CARE_CONTACT_DAYS):
        raise InvalidAccessRule(
            f"A care-contact window lasts at most {MAX_CARE_CONTACT_DAYS} days.", field="ends_at"
        )
    if ends_at <= now:
        contact.ended_at = now
        contact.ended_by = actor.subject
    else:
        contact.window_ends_at = ends_at
    session.flush()
    _log(
        session,
        actor,
        AuditAction.CARE_CONTACT,
        patient_id,
        clock,
        entity=contact.id,
        details={"adjusted_to": ends_at, "ended": contact.ended_at is not None},
    )
    return contact


def break_glass(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    *,
    reason: str,
    clock: Clock,
    duration: dt.timedelta = EMERGENCY_DURATION,
) -> EmergencyAccess:
    """Open a dossier in an emergency, with a stated reason, for a bounded time."""
    if len(reason.strip()) < _MIN_REASON:
        raise InvalidAccessRule(
            f"State the reason for emergency access (at least {_MIN_REASON} characters).",
            field="reason",
        )
    now = clock.now()
    authorize(
        session, actor, patient_id, Action.BREAK_GLASS, now=now, audit=AuditAction.BREAK_GLASS
    )
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


def emergency_access_in_force(
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


# --- Representation (recorded from the insurer's registry) ----------------------------------


def record_representation(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    representative_id: uuid.UUID,
    *,
    kind: RepresentationKind,
    clock: Clock,
    ends_at: dt.datetime | None = None,
) -> Representation:
    """Link a representative to a patient; a parent's link ends at the child's majority.

    Recorded by the agency from the insurer's registry (an operator), not by either person.
    """
    if actor.kind is not ActorKind.OPERATOR:
        raise refuse(actor, AuditAction.REPRESENTATION, "only the agency", patient_id)
    if representative_id == patient_id:
        raise InvalidAccessRule("A patient cannot represent themself.", field="representative")
    patient = patients.get_patient(session, patient_id)
    patients.get_patient(session, representative_id)
    now = clock.now()
    if kind is RepresentationKind.PARENT:
        majority = _birthday(patient.birth_date, _AGE_OF_MAJORITY)
        if majority <= now.date():
            raise InvalidAccessRule(
                "The patient is of age: a parent no longer represents them.", field="kind"
            )
        majority_at = dt.datetime.combine(majority, dt.time(), tzinfo=dt.UTC)
        ends_at = min(ends_at, majority_at) if ends_at else majority_at
    representation = Representation(
        patient_id=patient_id,
        id=uuid.uuid4(),
        representative_id=representative_id,
        kind=kind,
        starts_at=now,
        ends_at=ends_at,
        recorded_by=actor.subject,
    )
    _keep(
        session,
        representation,
        actor=actor,
        action=AuditAction.REPRESENTATION,
        patient_id=patient_id,
        clock=clock,
        details={"representative": representative_id, "kind": kind.value, "ends_at": ends_at},
    )
    return representation


def revoke_representation(
    session: Session,
    actor: Actor,
    patient_id: uuid.UUID,
    representation_id: uuid.UUID,
    *,
    clock: Clock,
) -> Representation:
    """End a representation now (a guardianship lifted, a parent's authority withdrawn).

    Recorded by the agency (an operator), as the link itself was; the row stays, stamped with
    who ended it and when. Raises ``AccessRuleNotFound`` unless the link is live.
    """
    if actor.kind is not ActorKind.OPERATOR:
        raise refuse(actor, AuditAction.REPRESENTATION, "only the agency", patient_id)
    representation = session.get(Representation, (patient_id, representation_id))
    if representation is None or representation.revoked_at is not None:
        raise AccessRuleNotFound("live representation")
    representation.revoked_at = clock.now()
    representation.revoked_by = actor.subject
    session.flush()
    _log(
        session,
        actor,
        AuditAction.REPRESENTATION,
        patient_id,
        clock,
        entity=representation.id,
        details={"representative": representation.representative_id, "revoked": True},
    )
    return representation


def _keep(
    session: Session,
    rule: Grant | Block | TreatingDoctor | CareContact | Representation | AccessPreferences,
    *,
    actor: Actor,
    action: AuditAction,
    patient_id: uuid.UUID,
    clock: Clock,
    details: dict[str, object] | None = None,
) -> None:
    """Store a new rule and record it on the dossier's audit trail, in one transaction."""
    session.add(rule)
    session.flush()
    _log(session, actor, action, patient_id, clock, entity=rule.id, details=details)


def _log(
    session: Session,
    actor: Actor,
    action: AuditAction,
    patient_id: uuid.UUID,
    clock: Clock,
    *,
    entity: uuid.UUID | None = None,
    details: dict[str, object] | None = None,
) -> None:
    audit_trail.record(
        session,
        agent=actor.agent,
        action=action,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[entity] if entity else [],
        details=details,
    )


def _birthday(born: dt.date, years: int) -> dt.date:
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # born on 29 February
        return born.replace(year=born.year + years, day=28)


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


def _exists(session: Session, query: Select[uuid.UUID]) -> bool:
    return session.scalar(query.limit(1)) is not None


# --- Finding patients (IHE PDQm) and reading their demographics -----------------------------


@dataclass(frozen=True)
class FoundPatient:
    """A patient a search returns, and how much of them the actor may see."""

    patient: Patient
    # False: identification only — names, birth date, sex and national identifiers.
    full: bool


def find_patients(
    session: Session,
    actor: Actor,
    criteria: patients.PatientCriteria,
    *,
    clock: Clock,
    limit: int = 20,
) -> list[FoundPatient]:
    """The patients matching ``criteria`` that ``actor`` may find, in name order, ``limit`` at most.

    ``decide_patient_search`` says which searches an actor may make at all: a professional
    without a basis identifies one person by national identifier, or by family name, given name
    and birth date together (names then match whole, not by their beginning); a looser search
    reaches only patients they have a basis for; a feeding system searches by identifier only;
    a patient among themself and those they represent. Each result is then decided alone:
    ``READ_DEMOGRAPHICS`` shows everything, ``IDENTIFY_PATIENT`` the identification only.

    Every patient found has the search recorded in their dossier's trail; a search that finds
    nobody is recorded on the actor's own chain. Raises ``StrongerAuthenticationRequired``,
    ``InsufficientScope``, ``AccessDenied`` (a search this actor may not make) and
    ``InvalidIdentifier``.
    """
    now = clock.now()
    require_strong(actor, audit=AuditAction.SEARCH)
    if not allows(actor.scopes, "Patient", Interaction.SEARCH):
        raise InsufficientScope("search on Patient").for_audit(
            Refusal(actor.agent, AuditAction.SEARCH, "scope")
        )
    search = _search_kind(criteria)
    decision = decide_patient_search(actor, search)
    if not decision:
        raise refuse(actor, AuditAction.SEARCH, decision.reason, None)
    if search is PatientSearch.IDENTITY and actor.kind is not ActorKind.PATIENT:
        criteria = replace(criteria, exact_names=True)
    query = patients.select_patients(criteria)
    if actor.kind is ActorKind.PATIENT:
        assert actor.person_id is not None  # every patient token names its person
        reachable = [actor.person_id, *represented_patients(session, actor.person_id, now=now)]
        query = query.where(Patient.id.in_(reachable))
    elif search is PatientSearch.BROWSE:
        query = query.where(_under_some_basis(actor, now))
    found = _first_kept(
        session, query, limit, lambda patient: _disclosure(session, actor, patient, search, now)
    )
    recorded: list[uuid.UUID | None] = [item.patient.id for item in found]
    for patient_id in recorded or [None]:
        audit_trail.record(
            session,
            agent=actor.agent,
            action=AuditAction.SEARCH,
            clock=clock,
            patient_id=patient_id,
            details={"resource": "Patient", "search": search.value},
        )
    return found


def read_demographics(
    session: Session, actor: Actor, patient_id: uuid.UUID, *, clock: Clock
) -> Patient:
    """The patient, if the policy lets ``actor`` read their demographics; the read is recorded.

    Raises ``InsufficientScope``, ``StrongerAuthenticationRequired`` and ``AccessDenied`` (which
    is also the answer for a patient who does not exist).
    """
    check_scope(actor, "Patient", Interaction.READ, patient_id, audit=AuditAction.READ)
    authorize(
        session,
        actor,
        patient_id,
        Action.READ_DEMOGRAPHICS,
        now=clock.now(),
        audit=AuditAction.READ,
    )
    _log(session, actor, AuditAction.READ, patient_id, clock, details={"resource": "Patient"})
    return patients.get_patient(session, patient_id)


def check_scope(
    actor: Actor,
    resource: str,
    interaction: Interaction,
    patient_id: uuid.UUID,
    *,
    audit: AuditAction,
) -> None:
    """Refuse (``InsufficientScope``, recorded as ``audit``) what the token's scopes do not cover.

    Scopes only narrow: the policy is still asked afterwards.
    """
    if not scope_allows(actor, resource, interaction, patient_id):
        needed = f"{interaction.name.lower()} on {resource}"
        raise InsufficientScope(needed).for_audit(Refusal(actor.agent, audit, "scope", patient_id))


def _search_kind(criteria: patients.PatientCriteria) -> PatientSearch:
    if criteria.identifier is not None:
        return PatientSearch.IDENTIFIER
    if criteria.family and criteria.given and criteria.birth_date:
        return PatientSearch.IDENTITY
    return PatientSearch.BROWSE


def _disclosure(
    session: Session, actor: Actor, patient: Patient, search: PatientSearch, now: dt.datetime
) -> FoundPatient | None:
    if not scope_allows(actor, "Patient", Interaction.SEARCH, patient.id):
        return None
    access = dossier_access(session, actor, patient.id, now=now)
    if decide_dossier(actor, access, Action.READ_DEMOGRAPHICS):
        return FoundPatient(patient, full=True)
    if search is not PatientSearch.BROWSE and decide_dossier(
        actor, access, Action.IDENTIFY_PATIENT
    ):
        return FoundPatient(patient, full=False)
    return None


def _under_some_basis(actor: Actor, now: dt.datetime) -> ColumnElement[bool]:
    """Patients with a rule naming this professional (or their organisation) live now.

    A superset of those the policy lets them see (it ignores blocks and the patient's
    preferences): the policy still decides each one.
    """
    professional_id = actor.professional_id
    grantee = Grant.professional_id == professional_id
    if actor.organisation_id is not None:
        grantee = grantee | (Grant.organisation_id == actor.organisation_id)
    return or_(
        Patient.id.in_(
            select(Grant.patient_id).where(
                grantee,
                Grant.revoked_at.is_(None),
                Grant.starts_at <= now,
                (Grant.ends_at.is_(None)) | (Grant.ends_at > now),
            )
        ),
        Patient.id.in_(
            select(CareContact.patient_id).where(
                CareContact.professional_id == professional_id,
                CareContact.ended_at.is_(None),
                CareContact.window_ends_at > now,
            )
        ),
        Patient.id.in_(
            select(TreatingDoctor.patient_id).where(
                TreatingDoctor.professional_id == professional_id,
                TreatingDoctor.ended_at.is_(None),
            )
        ),
        Patient.id.in_(
            select(EmergencyAccess.patient_id).where(
                EmergencyAccess.professional_id == professional_id,
                EmergencyAccess.expires_at > now,
            )
        ),
    )


def _first_kept(
    session: Session,
    query: Select[Patient],
    limit: int,
    keep: Callable[[Patient], FoundPatient | None],
) -> list[FoundPatient]:
    """The first ``limit`` rows that ``keep`` keeps, reading the query a page at a time."""
    kept: list[FoundPatient] = []
    offset = 0
    while len(kept) < limit:
        page = list(session.scalars(query.limit(limit).offset(offset)))
        kept += [item for item in map(keep, page) if item is not None]
        if len(page) < limit:
            break
        offset += limit
    return kept[:limit]


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
        authorize(
            session,
            actor,
            patient_id,
            Action.MANAGE_ACCESS,
            now=clock.now(),
            audit=AuditAction.UNBLOCK,
        )
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
    authorize(
        session,
        actor,
        patient_id,
        Action.MANAGE_ACCESS,
        now=clock.now(),
        audit=AuditAction.DESIGNATE,
    )
    ended = _end_designations(session, actor, patient_id, clock.now(), only=designation_id)
    if not ended:
        raise AccessRuleNotFound("treating-doctor designation")
    session.flush()
    details = {"professional": ended[0].professional_id, "ended": True}
    _log(
        session,
        actor,
        AuditAction.DESIGNATE,
        patient_id,
        clock,
        entity=ended[0].id,
        details=details,
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
    authorize(
        session,
        actor,
        patient_id,
        Action.MANAGE_ACCESS,
        now=clock.now(),
        audit=AuditAction.PREFERENCES,
    )
    row = preferences_in_force(session, patient_id)
    if row is None or row.id != preferences_id:
        raise AccessRuleNotFound("emergency preference")
    if not (row.emergency_opposed or row.emergency_widened):
        raise AccessRuleNotFound("emergency preference")
    chosen = replace(
        current_preferences(session, patient_id), emergency_opposed=False, emergency_widened=False
    )
    return set_preferences(session, actor, patient_id, chosen, clock=clock)
