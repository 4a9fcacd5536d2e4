"""The door to a dossier: the access snapshot, the decision, the audited refusal, the record.

``dossier_access`` gathers, in one indexed statement by ``patient_id``, everything the policy
needs about one actor on one dossier. ``authorize`` asks the policy with it and raises what the
policy refuses as ``AccessDenied`` carrying its audit record, which the way in writes in a
transaction of its own; ``require_strong`` and ``check_scope`` refuse before anything is read.
``record_consultation`` records an allowed look, naming its basis, and tells the patient of a
professional's first; ``record_action`` records any other allowed read or change. Every service
that touches patient data comes through here.

``represents`` sits here, not with the rest of representation, because the snapshot reads the
mandate while recording a representation is refused through this door: each way round would
otherwise import the other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from sqlalchemy import BindParameter, Label, Row, Select, and_, bindparam, exists, select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.errors import AccessDenied, InsufficientScope, StrongerAuthenticationRequired
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
from carnet.access.policy import Action, DossierAccess, decide_dossier, scope_allows
from carnet.access.scopes import Interaction
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.audit.service import Refusal
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.notifications import service as notices
from carnet.patients.errors import PatientNotFound
from carnet.patients.models import Dossier

# The reason of a search by a professional without any basis that showed them nothing: not a
# consultation (see ``record_consultation``), though the request itself was answered.
NOTHING_SHOWN = "no grant, care contact, designation or emergency access: nothing shown"


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
        # The column is a checked enum: SQLAlchemy already hands back a ``DossierState``.
        dossier_state=row.state,
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


def _exists(session: Session, query: Select[uuid.UUID]) -> bool:
    return session.scalar(query.limit(1)) is not None


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


def record_action(
    session: Session,
    actor: Actor,
    action: AuditAction,
    patient_id: uuid.UUID,
    clock: Clock,
    *,
    entity: uuid.UUID | None = None,
    details: dict[str, object] | None = None,
) -> None:
    """Record an allowed read or change on the dossier's audit trail (``entity``: what it named)."""
    audit_trail.record(
        session,
        agent=actor.agent,
        action=action,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[entity] if entity else [],
        details=details,
    )
