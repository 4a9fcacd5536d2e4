"""Finding a patient to open (IHE PDQm), and reading their demographics.

The policy says which searches an actor may make at all (``decide_patient_search``); each
patient found is then decided alone and shown whole or as identification only. Every search is
recorded in the trail of each patient it found, or in the actor's own when it found nobody.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from carnet.access import guard
from carnet.access.actors import Actor, ActorKind
from carnet.access.errors import InsufficientScope
from carnet.access.guard import authorize, check_scope, record_action, refuse, require_strong
from carnet.access.models import CareContact, EmergencyAccess, Grant, TreatingDoctor
from carnet.access.policy import (
    Action,
    PatientSearch,
    decide_dossier,
    decide_patient_search,
    scope_allows,
)
from carnet.access.representation import represented_patients
from carnet.access.scopes import Interaction, allows
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Refusal
from carnet.clock import Clock
from carnet.patients import service as patients
from carnet.patients.models import Patient


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
    record_action(
        session, actor, AuditAction.READ, patient_id, clock, details={"resource": "Patient"}
    )
    return patients.get_patient(session, patient_id)


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
    # Looked up on the guard module when called, as ``authorize`` does: what replaces the
    # snapshot (the benchmark's policy-off server) replaces it for a search as well.
    access = guard.dossier_access(session, actor, patient.id, now=now)
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
