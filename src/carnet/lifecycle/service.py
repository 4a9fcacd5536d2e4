"""The dossier's states and who moves it between them.

    invited --(patient activates, or the opening deadline passes)--> active
    invited --(patient objects)--> opposed        no dossier: nothing is accepted
    active  --(patient closes)--> closed          authors keep their own documents; purged later
    opposed, closed --(patient asks again)--> active

The patient (or their representative) moves their dossier through the door
(``purposes.MANAGE_DOSSIER``: only they may, strongly signed in, in any state); the opening job
moves it on its own authority, as ``JOB_OPENING``. Each change is a conditional UPDATE
(``WHERE state = <from>``), so of two concurrent attempts exactly one happens: the other finds
the new state and is refused (a job skips it). Each is kept in ``dossier_transitions`` and on
the dossier's audit chain (``AuditAction.LIFECYCLE``).

Invitation letters carry a one-time activation code: the patient's first sign-in path. Codes are
12 characters from an alphabet without look-alikes (59 bits), kept only as salted scrypt hashes,
valid ``activation_code_days`` and locked after ``MAX_CODE_ATTEMPTS`` wrong tries.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import ActorKind
from carnet.access.door import OpenedDossier
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.audit.service import Agent
from carnet.clock import Clock
from carnet.lifecycle.errors import ActivationRefused, TransitionRefused
from carnet.lifecycle.models import ActivationCode, DossierTransition
from carnet.notifications import service as notices
from carnet.patients import service as patients
from carnet.patients.errors import InvalidIdentifier
from carnet.patients.models import Dossier, DossierState, Patient

JOB_OPENING = Agent(kind="job", subject="job:automatic-opening")
# Without 0/O, 1/I/L: a code is read off paper and typed by hand.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 12
MAX_CODE_ATTEMPTS = 5
# scrypt at 1 MiB and ~2 ms: 59 random bits need no more against an offline attack, and a
# national enrolment hashes 850,000 codes.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**10, 8, 1
_SEPARATORS = re.compile(r"[\s\-.]+")

# Where each state may be reached from.
_FROM = {
    DossierState.ACTIVE: (DossierState.INVITED, DossierState.OPPOSED, DossierState.CLOSED),
    DossierState.OPPOSED: (DossierState.INVITED,),
    DossierState.CLOSED: (DossierState.ACTIVE,),
}


# --- The patient's transitions ------------------------------------------------------------


def activate(session: Session, dossier: OpenedDossier) -> DossierTransition:
    """Open the dossier at the patient's request: an invited one, or again an opposed or closed one.

    Policy: the patient or their representative, strongly signed in (``AccessDenied``
    otherwise). Raises ``TransitionRefused`` if the dossier is already active.
    """
    return _by_patient(session, dossier, DossierState.ACTIVE)


def oppose(session: Session, dossier: OpenedDossier) -> DossierTransition:
    """Record the patient's objection to an invited dossier: nothing will be accepted in it.

    Policy as ``activate``. Raises ``TransitionRefused`` unless the dossier is invited (an
    active one is closed instead).
    """
    return _by_patient(session, dossier, DossierState.OPPOSED)


def close(session: Session, dossier: OpenedDossier) -> DossierTransition:
    """Close an active dossier at the patient's request.

    From then on each author reads only the documents they wrote, nobody else anything; the
    documents are purged after the retention period (``jobs``). Offer the export before.
    Policy as ``activate``. Raises ``TransitionRefused`` unless the dossier is active.
    """
    return _by_patient(session, dossier, DossierState.CLOSED)


def dossier_history(session: Session, dossier: OpenedDossier) -> list[DossierTransition]:
    """Every change of the dossier's state, oldest first (the patient or representative asks)."""
    dossier.require(purposes.MANAGE_DOSSIER)
    dossier.record(session, AuditAction.LIFECYCLE, details={"history": "read"})
    return list(
        session.scalars(
            select(DossierTransition)
            .where(DossierTransition.patient_id == dossier.patient_id)
            .order_by(DossierTransition.at, DossierTransition.id)
        )
    )


def _by_patient(session: Session, dossier: OpenedDossier, to: DossierState) -> DossierTransition:
    dossier.require(purposes.MANAGE_DOSSIER)
    actor, patient_id = dossier.actor, dossier.patient_id
    who = "representative" if actor.represents_someone_else else "patient"
    transition = transition_dossier(
        session,
        patient_id,
        to,
        agent=actor.agent,
        reason=f"asked by the {who}",
        clock=dossier.clock,
    )
    if transition is None:
        raise TransitionRefused(state=patients.get_dossier(session, patient_id).state, wanted=to)
    return transition


# --- The system's transitions -------------------------------------------------------------


def transition_dossier(  # patient-data: a job's, or after authorize
    session: Session,
    patient_id: uuid.UUID,
    to: DossierState,
    *,
    agent: Agent,
    reason: str,
    clock: Clock,
) -> DossierTransition | None:
    """Move the dossier to ``to`` if its present state allows it; None if it does not.

    No policy here: the callers are the patient's transitions above (after the policy) and the
    jobs (on their own authority). Recorded in the history and on the audit chain.
    """
    dossier = patients.get_dossier(session, patient_id)
    before = dossier.state
    if before not in _FROM[to]:
        return None
    now = clock.now()
    values: dict[str, Any] = {"state": to, "state_changed_at": now}
    if to is DossierState.ACTIVE:
        values |= {"opened_at": now, "closed_at": None, "purged_at": None}
    if to is DossierState.CLOSED:
        values["closed_at"] = now
    if before is DossierState.INVITED:
        values["opening_deadline"] = None
    result = cast(
        CursorResult[Any],
        session.execute(
            update(Dossier)
            .where(Dossier.patient_id == patient_id, Dossier.state == before)
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    # Another transaction moved it first (READ COMMITTED re-checks the WHERE after its lock).
    session.expire(dossier)
    if result.rowcount != 1:
        return None
    transition = DossierTransition(
        patient_id=patient_id,
        id=uuid.uuid4(),
        from_state=before,
        to_state=to,
        at=now,
        by=agent.subject,
        on_behalf_of=agent.on_behalf_of,
        reason=reason,
    )
    session.add(transition)
    session.flush()
    audit_trail.record(
        session,
        agent=agent,
        action=AuditAction.LIFECYCLE,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[transition.id],
        details={"from": before.value, "to": to.value, "reason": reason},
    )
    return transition


def open_due_dossiers(
    session: Session, *, clock: Clock, limit: int = 500
) -> list[uuid.UUID]:  # patient-data: a job's, no actor
    """Open up to ``limit`` invited dossiers whose opening deadline has passed; their ids.

    Each patient is told (``notify_dossier_opened``). Safe on several nodes at once: on
    PostgreSQL the dossiers taken are locked with ``SKIP LOCKED``, so runs take different ones,
    and the conditional UPDATE opens a dossier once even if two runs meet (SQLite has one
    writer at a time anyway).
    """
    now = clock.now()
    due = list(
        session.scalars(
            select(Dossier.patient_id)
            .where(Dossier.state == DossierState.INVITED, Dossier.opening_deadline <= now)
            .order_by(Dossier.opening_deadline, Dossier.patient_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    opened = []
    for patient_id in due:
        done = transition_dossier(
            session,
            patient_id,
            DossierState.ACTIVE,
            agent=JOB_OPENING,
            reason="the opening deadline passed",
            clock=clock,
        )
        if done is not None:
            notices.notify_dossier_opened(
                session, patient_id=patient_id, opened_at=now, clock=clock
            )
            opened.append(patient_id)
    return opened


# --- Activation codes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    """What an invitation letter says to one patient; the code exists only here, in clear."""

    patient_id: uuid.UUID
    family: str
    given: str
    address_line: str | None
    postal_code: str | None
    city: str | None
    country: str | None
    language: str
    code: str
    code_expires_at: dt.datetime
    opening_deadline: dt.datetime | None


def new_activation_code(
    patient_id: uuid.UUID, *, issued_by: str, now: dt.datetime, lifetime: dt.timedelta
) -> tuple[ActivationCode, str]:
    """A fresh code for ``patient_id`` (not added to any session) and its clear text."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    row = ActivationCode(
        patient_id=patient_id,
        id=uuid.uuid4(),
        code_hash=_hash_code(code, secrets.token_bytes(16)),
        issued_at=now,
        expires_at=now + lifetime,
        failed_attempts=0,
        issued_by=issued_by,
    )
    return row, code


class Addressee(Protocol):
    """Whom a letter goes to: a ``Patient``, or the ``Demographics`` a registry row gives."""

    @property
    def family(self) -> str: ...
    @property
    def given(self) -> str: ...
    @property
    def address_line(self) -> str | None: ...
    @property
    def postal_code(self) -> str | None: ...
    @property
    def city(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def language(self) -> str: ...


def invitation(
    patient_id: uuid.UUID,
    addressee: Addressee,
    code: str,
    row: ActivationCode,
    opening_deadline: dt.datetime | None,
) -> Invitation:
    """The letter carrying ``code`` (stored as ``row``) to ``addressee``."""
    return Invitation(
        patient_id=patient_id,
        family=addressee.family,
        given=addressee.given,
        address_line=addressee.address_line,
        postal_code=addressee.postal_code,
        city=addressee.city,
        country=addressee.country,
        language=addressee.language,
        code=code,
        code_expires_at=row.expires_at,
        opening_deadline=opening_deadline,
    )


def issue_invitation(
    session: Session, dossier: OpenedDossier, *, lifetime: dt.timedelta
) -> Invitation:
    """A new invitation letter for one patient (a lost or expired one); revokes earlier codes.

    Issued by the agency (an operator: ``purposes.ISSUE_INVITATION``, refused to anyone else
    at the door).
    """
    dossier.require(purposes.ISSUE_INVITATION)
    actor, patient_id, now = dossier.actor, dossier.patient_id, dossier.clock.now()
    patient = patients.get_patient(session, patient_id)
    session.execute(
        update(ActivationCode)
        .where(
            ActivationCode.patient_id == patient_id,
            ActivationCode.used_at.is_(None),
            ActivationCode.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    row, code = new_activation_code(patient_id, issued_by=actor.subject, now=now, lifetime=lifetime)
    session.add(row)
    session.flush()
    dossier.record(
        session,
        AuditAction.LIFECYCLE,
        entity_ids=[row.id],
        details={"invitation": "issued", "code_expires_at": row.expires_at},
    )
    return invitation(patient.id, patient, code, row, patient.dossier.opening_deadline)


def activate_with_code(
    session: Session, *, system: str, identifier: str, code: str, clock: Clock
) -> Patient:
    """The patient's first sign-in: their national identifier and their letter's code.

    A right code is spent and opens the dossier if it is not open yet (from invited, or again
    from opposed or closed: using the letter is asking for it). The way in then lets the patient
    set up their sign-in. A wrong, expired, spent or locked code, or an unknown identifier, all
    raise the same ``ActivationRefused``; a wrong code counts against the letter's codes and is
    audited before the error is raised, so the caller must commit it.
    """
    patient, matched = check_activation_code(
        session, system=system, identifier=identifier, code=code, clock=clock
    )
    spend_activation_code(session, patient.id, matched, clock=clock)
    return patient


def check_activation_code(
    session: Session,
    *,
    system: str,
    identifier: str,
    code: str,
    clock: Clock,
    birth_date: dt.date | None = None,
) -> tuple[Patient, uuid.UUID]:
    """The patient and the id of their letter's live code that ``code`` matches; nothing spent.

    With ``birth_date``, a patient born another day is refused like a wrong code (and counts
    as one). Refusals as ``activate_with_code``: the same ``ActivationRefused`` for every
    reason, a wrong code counted and audited before raising (the caller commits it).
    Onboarding checks the code first and spends it (``spend_activation_code``) only when the
    account is created, in the same transaction.
    """
    now = clock.now()
    normalised = _SEPARATORS.sub("", code).upper()
    try:
        patient = patients.find_patient(session, system, identifier)
    except InvalidIdentifier:
        patient = None
    live = [] if patient is None else _live_codes(session, patient.id, now)
    matched = next((row for row in live if _code_matches(normalised, row.code_hash)), None)
    if not live:
        _code_matches(normalised, _decoy())  # the same work whether or not there is a code
    if patient is None:
        raise ActivationRefused()
    if birth_date is not None and patient.birth_date != birth_date:
        matched = None
    if matched is None:
        for row in live:
            row.failed_attempts += 1
        session.flush()
        audit_trail.record(
            session,
            agent=_patient_agent(patient.id),
            action=AuditAction.LIFECYCLE,
            clock=clock,
            patient_id=patient.id,
            outcome=AuditOutcome.DENIED,
            reason="wrong, expired or locked activation code",
        )
        raise ActivationRefused()
    return patient, matched.id


def spend_activation_code(
    session: Session, patient_id: uuid.UUID, code_id: uuid.UUID, *, clock: Clock
) -> None:
    """Spend a code ``check_activation_code`` matched, and open the dossier if it is not open.

    The code is re-read under lock: if it was spent, revoked or expired meanwhile (the letter
    used twice at once, a new letter issued), ``ActivationRefused``. Audited.
    """
    now = clock.now()
    row = next((r for r in _live_codes(session, patient_id, now) if r.id == code_id), None)
    if row is None:
        raise ActivationRefused()
    row.used_at = now
    session.flush()
    agent = _patient_agent(patient_id)
    transition_dossier(
        session,
        patient_id,
        DossierState.ACTIVE,
        agent=agent,
        reason="activated with the invitation letter's code",
        clock=clock,
    )
    audit_trail.record(
        session,
        agent=agent,
        action=AuditAction.LIFECYCLE,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[row.id],
        details={"invitation": "code used"},
    )


def _patient_agent(patient_id: uuid.UUID) -> Agent:
    return Agent(kind=ActorKind.PATIENT.value, subject=f"Patient/{patient_id}")


def _live_codes(session: Session, patient_id: uuid.UUID, now: dt.datetime) -> list[ActivationCode]:
    return list(
        session.scalars(
            select(ActivationCode)
            .where(
                ActivationCode.patient_id == patient_id,
                ActivationCode.used_at.is_(None),
                ActivationCode.revoked_at.is_(None),
                ActivationCode.expires_at > now,
                ActivationCode.failed_attempts < MAX_CODE_ATTEMPTS,
            )
            .order_by(ActivationCode.issued_at.desc())
            .with_for_update()
        )
    )


def _hash_code(code: str, salt: bytes) -> str:
    digest = hashlib.scrypt(code.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def _code_matches(code: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    computed = hashlib.scrypt(
        code.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(computed.hex(), digest)


@functools.cache
def _decoy() -> str:
    return _hash_code("DECOY", b"carnet-decoy-salt")
