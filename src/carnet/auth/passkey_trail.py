"""How passkey events reach the audit trail: registrations, removals and every sign-in.

Recorded as sign-in events (``AuditAction.SIGN_IN``, ``details.method == "passkey"``, with the
``step``: register, remove, sign-in) on the account holder's own chain, in the caller's
transaction: a refused sign-in is committed with the failure it counts towards the lock.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, NoReturn

from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditOutcome
from carnet.audit.service import Agent
from carnet.auth.accounts import Account, record_attempt
from carnet.auth.errors import SignInRefused
from carnet.auth.models import OperatorAccount, PasskeyCredential, PasskeyHolder
from carnet.auth.tokens import Principal
from carnet.clock import Clock


def agent_of(
    session: Session, holder: PasskeyHolder, subject_id: uuid.UUID, network_address: str | None
) -> Agent:
    """How the audit trail names the holder of a passkey (as ``Actor.agent`` would)."""
    if holder is PasskeyHolder.PATIENT:
        return Agent(
            kind=ActorKind.PATIENT.value,
            subject=f"Patient/{subject_id}",
            network_address=network_address,
        )
    if holder is PasskeyHolder.PROFESSIONAL:
        return Agent(
            kind=ActorKind.PROFESSIONAL.value,
            subject=f"Practitioner/{subject_id}",
            professional_id=subject_id,
            network_address=network_address,
        )
    operator = session.get(OperatorAccount, subject_id)
    kind = operator.kind if operator is not None else ActorKind.OPERATOR
    name = operator.name if operator is not None else str(subject_id)
    return Agent(
        kind=kind.value,
        subject=f"{kind.value}:{name}",
        network_address=network_address,
    )


def principal_agent(principal: Principal, network_address: str | None) -> Agent:
    subject = principal.subject
    if principal.kind is ActorKind.PATIENT:
        subject = f"Patient/{principal.person_id}"
    elif principal.kind is ActorKind.PROFESSIONAL:
        subject = f"Practitioner/{principal.professional_id}"
    return Agent(
        kind=principal.kind.value,
        subject=subject,
        professional_id=principal.professional_id,
        organisation_id=principal.organisation_id,
        profession=principal.profession,
        network_address=network_address,
    )


def record(
    session: Session,
    agent: Agent,
    clock: Clock,
    *,
    step: str,
    passkey: PasskeyCredential,
    outcome: AuditOutcome = AuditOutcome.ALLOWED,
    reason: str | None = None,
) -> None:
    details: dict[str, Any] = {"method": "passkey", "step": step, "passkey": str(passkey.id)}
    audit_trail.record(
        session,
        agent=agent,
        action=AuditAction.SIGN_IN,
        clock=clock,
        outcome=outcome,
        reason=reason or f"passkey {step}",
        details=details,
    )


def refuse_unknown(
    session: Session, clock: Clock, network_address: str | None, reason: str
) -> NoReturn:
    """Audit a passkey answer that names no registered passkey, then refuse it."""
    audit_trail.record(
        session,
        agent=Agent(kind="unknown", subject="attempt:passkey", network_address=network_address),
        action=AuditAction.SIGN_IN,
        clock=clock,
        outcome=AuditOutcome.DENIED,
        reason=reason,
        details={"method": "passkey", "step": "sign-in"},
    )
    raise SignInRefused()


def refuse(
    session: Session, agent: Agent, clock: Clock, passkey: PasskeyCredential, reason: str
) -> NoReturn:
    _record_refused(session, agent, clock, passkey, reason)
    raise SignInRefused()


def failed(
    session: Session,
    account: Account,
    agent: Agent,
    *,
    clock: Clock,
    passkey: PasskeyCredential,
    reason: str,
    now: dt.datetime,
) -> NoReturn:
    """Audit a failed assertion on a known passkey and count it towards the account's lock."""
    _record_refused(session, agent, clock, passkey, reason[:500])
    record_attempt(account, ok=False, now=now)  # raises SignInRefused once recorded
    raise SignInRefused()


def _record_refused(
    session: Session, agent: Agent, clock: Clock, passkey: PasskeyCredential, reason: str
) -> None:
    # A refused sign-in on a known passkey names it on the trail, whatever the refusal.
    record(
        session,
        agent,
        clock,
        step="sign-in",
        passkey=passkey,
        outcome=AuditOutcome.DENIED,
        reason=reason,
    )
