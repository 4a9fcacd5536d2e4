"""Approvals of third-party apps: what a person let an app ask for, remembered and revocable.

The consent screen (``carnet.oauth.consent``) asks once per person and app; an approval covering
a later request lets the sign-in go straight back to the app. Revoking an approval also revokes
the refresh tokens (and their access tokens) the app holds for that person, so the app must
ask again. Carnet's own apps (``OAuthClient.first_party``) never need one.

Each approval and revocation is recorded in the person's own audit chain (``GRANT`` and
``REVOKE`` naming the app), not a dossier's: it concerns the person as a user.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.access.scopes import Scope, parse_scopes
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Agent
from carnet.auth.accounts import OPERATOR_KINDS
from carnet.auth.errors import ApprovalNotFound, InvalidRequest
from carnet.auth.grants import revoke_access_of
from carnet.auth.models import (
    AppApproval,
    OAuthClient,
    OperatorAccount,
    RefreshToken,
    RevokedToken,
)
from carnet.auth.revocations import ASSERTION_PREFIX
from carnet.auth.tokens import Principal
from carnet.clock import Clock

# Who approves: the person signing in (``Principal``) or, in the portal, signed in (``Actor``).
Person = Principal | Actor


@dataclass(frozen=True)
class ApprovedApp:
    """An app a person approved, as their list of apps shows it."""

    client_id: str
    name: str
    scope: str
    approved_at: dt.datetime
    last_used_at: dt.datetime | None


def needs_consent(client: OAuthClient) -> bool:
    """Whether signing in to ``client`` goes through the consent screen (third-party apps)."""
    return not client.first_party


def covering_approval(
    session: Session, principal: Principal, client: OAuthClient, scope: str
) -> AppApproval | None:
    """The person's approval of ``client`` if it covers every scope of ``scope``, else None.

    A resource scope is covered by an approved one of the same context whose resource and
    permissions include it (``patient/*.rs`` covers ``patient/DocumentReference.r``).
    """
    approval = _approval(session, principal, client.client_id)
    if approval is None or not covers(approval.scope, scope):
        return None
    return approval


def covers(approved: str, requested: str) -> bool:
    """Whether the scopes ``approved`` include every scope of ``requested``."""
    approved_resources, approved_others = parse_scopes(approved)
    resources, others = parse_scopes(requested)
    return others <= approved_others and all(
        any(_includes(given, wanted) for given in approved_resources) for wanted in resources
    )


def _includes(given: Scope, wanted: Scope) -> bool:
    return (
        given.context == wanted.context
        and given.resource in ("*", wanted.resource)
        and wanted.permissions <= given.permissions
    )


def record_use(approval: AppApproval, *, clock: Clock) -> None:
    """Note that the app was signed in to under this approval (its list shows when)."""
    approval.last_used_at = clock.now()


def approve(
    session: Session,
    principal: Principal,
    client: OAuthClient,
    scope: str,
    *,
    clock: Clock,
    launch_patient: uuid.UUID | None = None,
) -> AppApproval:
    """Remember that the person approved ``client`` for ``scope`` (added to what they approved).

    ``launch_patient`` is the person a patient chose to launch the app for; it must be
    themself or someone they represent now (``InvalidRequest`` otherwise). Audited as a
    ``GRANT`` to the app on the person's own chain.
    """
    now = clock.now()
    check_launch_patient(session, principal, launch_patient, now=now)
    approval = _approval(session, principal, client.client_id)
    if approval is None:
        kind, subject_id = _subject(session, principal)
        approval = AppApproval(
            subject_kind=kind,
            subject_id=subject_id,
            client_id=client.client_id,
            scope=scope,
            approved_at=now,
        )
        session.add(approval)
    elif not covers(approval.scope, scope):
        approval.scope = " ".join(sorted(set(approval.scope.split()) | set(scope.split())))
        approval.approved_at = now
    approval.last_used_at = now
    audit_trail.record(
        session,
        agent=agent_of(principal, client.client_id),
        action=AuditAction.GRANT,
        clock=clock,
        details={"app": client.client_id, "scope": scope, "launch_patient": launch_patient},
    )
    return approval


def check_launch_patient(
    session: Session, principal: Principal, launch_patient: uuid.UUID | None, *, now: dt.datetime
) -> None:
    """``InvalidRequest`` unless ``launch_patient`` is None, the person, or one they represent."""
    if launch_patient is None or launch_patient == principal.person_id:
        return
    if (
        principal.kind is not ActorKind.PATIENT
        or principal.person_id is None
        or not access_guard.represents(session, principal.person_id, launch_patient, now=now)
    ):
        raise InvalidRequest("You do not represent this person.", field="patient")


def approved_apps(session: Session, person: Person) -> list[ApprovedApp]:
    """The apps the person approved, by name."""
    kind, subject_id = _subject(session, person)
    rows = session.execute(
        select(AppApproval, OAuthClient.name)
        .join(OAuthClient, OAuthClient.client_id == AppApproval.client_id)
        .where(AppApproval.subject_kind == kind, AppApproval.subject_id == subject_id)
        .order_by(OAuthClient.name, AppApproval.client_id)
    )
    return [
        ApprovedApp(
            client_id=approval.client_id,
            name=name,
            scope=approval.scope,
            approved_at=approval.approved_at,
            last_used_at=approval.last_used_at,
        )
        for approval, name in rows
    ]


def revoke(session: Session, person: Person, client_id: str, *, clock: Clock) -> int:
    """Withdraw the approval of ``client_id`` and revoke the app's tokens for the person.

    Every live refresh token the app holds for the person is revoked with the access token it
    last produced; the next sign-in asks for consent again. Returns how many refresh tokens
    were revoked; ``ApprovalNotFound`` if there was no approval. Audited as a ``REVOKE``.
    """
    approval = _approval(session, person, client_id)
    if approval is None:
        raise ApprovalNotFound()
    now = clock.now()
    revoked = 0
    for row in session.scalars(
        select(RefreshToken).where(
            RefreshToken.client_id == client_id,
            RefreshToken.subject_kind == approval.subject_kind,
            RefreshToken.subject_id == approval.subject_id,
        )
    ):
        if row.revoked_at is None:
            row.revoked_at = now
            revoked += 1
        revoke_access_of(session, row, clock)
    session.delete(approval)
    audit_trail.record(
        session,
        agent=agent_of(person, client_id),
        action=AuditAction.REVOKE,
        clock=clock,
        details={"app": client_id, "refresh_tokens": revoked},
    )
    return revoked


def spend_consent_ticket(
    session: Session, jti: str, expires_at: dt.datetime, *, clock: Clock
) -> bool:
    """Mark the consent form ``jti`` used; False if it already was (a form sent twice).

    Kept beside used client assertions until it expires, under a digest (see
    ``carnet.auth.clients._consume_assertion``).
    """
    key = ASSERTION_PREFIX + hashlib.sha256(f"consent\n{jti}".encode()).hexdigest()
    if session.get(RevokedToken, key) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(RevokedToken(jti=key, expires_at=expires_at, revoked_at=clock.now()))
    except IntegrityError:
        return False
    return True


def agent_of(person: Person, client_id: str | None = None) -> Agent:
    """How the audit trail names the person who approves or revokes (as ``Actor.agent`` does)."""
    if isinstance(person, Actor):
        return person.agent
    return Agent(
        kind=person.kind.value,
        subject=person.fhir_user or person.subject,
        professional_id=person.professional_id,
        organisation_id=person.organisation_id,
        profession=person.profession,
        client_id=client_id,
    )


def _approval(session: Session, person: Person, client_id: str) -> AppApproval | None:
    kind, subject_id = _subject(session, person)
    return session.get(AppApproval, (kind, subject_id, client_id))


def _subject(session: Session, person: Person) -> tuple[ActorKind, uuid.UUID]:
    """The (kind, id) that codes and refresh tokens name the person by (``_subject_columns``):
    an agency account by its account id, the others by their patient or directory id."""
    if person.kind is ActorKind.PATIENT and person.person_id is not None:
        return person.kind, person.person_id
    if person.kind is ActorKind.PROFESSIONAL and person.professional_id is not None:
        return person.kind, person.professional_id
    if person.kind in OPERATOR_KINDS:
        name = person.subject.partition(":")[2]
        account = session.scalar(select(OperatorAccount.id).where(OperatorAccount.name == name))
        if account is not None:
            return person.kind, account
    raise InvalidRequest("Only people with an account approve apps.", field="client_id")
