"""Signing in: password (and one-time code), professional card, and the principal it yields.

A failed sign-in is recorded before it is raised (``carnet.auth.accounts.record_attempt``): the
way in commits such an ``AuthError`` rather than rolling back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.auth import card, card_authorities
from carnet.auth.accounts import (
    OPERATOR_KINDS,
    accept_otp,
    cached_decoy_hash,
    find_account,
    find_patient_by_identifier,
    find_professional_by_identifier,
    record_attempt,
    refuse_if_locked,
    verify_secret,
)
from carnet.auth.errors import (
    CardRefused,
    InvalidGrant,
    InvalidRequest,
    SignInRefused,
    UnknownSubject,
)
from carnet.auth.models import OAuthClient, OperatorAccount
from carnet.auth.tokens import Principal
from carnet.clock import Clock
from carnet.directory.models import Organisation, Professional
from carnet.directory.service import get_professional
from carnet.storage.ports import KeyWrapper

# RFC 8176 authentication method references.
PASSWORD_ONLY = ("pwd",)
PASSWORD_AND_OTP = ("pwd", "otp", "mfa")
CARD_AND_PIN = ("sc", "hwk", "pin", "mfa")

_METHODS = {
    Assurance.LOW: PASSWORD_ONLY,
    Assurance.SUBSTANTIAL: PASSWORD_AND_OTP,
    Assurance.HIGH: CARD_AND_PIN,
}


# --- signing in ------------------------------------------------------------------------------


def sign_in_with_password(
    session: Session,
    *,
    kind: ActorKind,
    identifier: str,
    password: str,
    otp: str | None,
    key_wrapper: KeyWrapper,
    clock: Clock,
) -> Principal:
    """Check a password, and the one-time code if one is given.

    Password alone is ``Assurance.LOW``; with a valid TOTP code, ``SUBSTANTIAL``. An operator
    (``identifier`` is their name; ``kind`` operator or security officer alike) always needs
    the code: their password alone is a failed attempt. Five failures lock the account for 15
    minutes; a locked account, an unknown identifier and a wrong password all raise the same
    ``SignInRefused`` (the failure is recorded before it is raised, so the caller commits it).
    """
    now = clock.now()
    found = find_account(session, kind, identifier)
    password_ok = verify_secret(password, found[0].password_hash if found else cached_decoy_hash())
    if found is None:
        raise SignInRefused()
    account, subject_id = found
    refuse_if_locked(account, now)
    assurance = Assurance.LOW
    # Counted as a failure even with the right password: otherwise a password could be tried
    # without ever reaching the lock.
    ok = password_ok and not isinstance(account, OperatorAccount)
    if otp:
        assurance = Assurance.SUBSTANTIAL
        ok = password_ok and accept_otp(
            account, kind, subject_id, otp, key_wrapper=key_wrapper, now=now
        )
    record_attempt(account, ok=ok, now=now)
    return principal_for(
        session, kind, subject_id, assurance=assurance, methods=_METHODS[assurance], auth_time=now
    )


def sign_in_with_card(
    session: Session, *, response: card.CardResponse, challenge: bytes, clock: Clock
) -> Principal:
    """Verify a card's signature of ``challenge`` and its certificate: ``Assurance.HIGH``.

    The certificate must chain to a card authority Carnet trusts, not be revoked by its CRLs
    and name an active professional of the directory. Raises ``CardRefused`` otherwise, naming
    the rule (``card.CardRefusal``).
    """
    holder = card.verify_card_response(
        response, challenge, authorities=card_authorities.trusted(session), now=clock.now()
    )
    professional = session.scalar(
        select(Professional).where(
            Professional.identifier_system == holder.identifier_system,
            Professional.identifier_value == holder.identifier_value,
        )
    )
    if professional is None or not professional.active:
        raise CardRefused(card.CardRefusal.UNKNOWN_PROFESSIONAL)
    return principal_for(
        session,
        ActorKind.PROFESSIONAL,
        professional.id,
        assurance=Assurance.HIGH,
        methods=CARD_AND_PIN,
        auth_time=clock.now(),
    )


def principal_for(
    session: Session,
    kind: ActorKind,
    subject_id: uuid.UUID,
    *,
    assurance: Assurance,
    methods: Sequence[str],
    auth_time: dt.datetime | None = None,
) -> Principal:
    """The principal of a patient, professional or operator, with their current details.

    ``subject_id`` is the patient's or professional's id, or the operator's account id; an
    operator's principal is named ``<kind>:<name>``, as the audit trail names operators.
    Raises ``InvalidGrant`` if the professional or operator account is no longer active.
    """
    if kind in OPERATOR_KINDS:
        operator = session.get(OperatorAccount, subject_id)
        if operator is None or not operator.active:
            raise InvalidGrant("The operator account is no longer active.")
        return Principal(
            kind=operator.kind,
            subject=_operator_subject(operator.kind, operator.name),
            assurance=assurance,
            methods=tuple(methods),
            auth_time=auth_time,
        )
    if kind is ActorKind.PATIENT:
        return Principal(
            kind=kind,
            subject=str(subject_id),
            assurance=assurance,
            methods=tuple(methods),
            person_id=subject_id,
            auth_time=auth_time,
        )
    professional = get_professional(session, subject_id)
    if not professional.active:
        raise InvalidGrant("The professional is no longer active.")
    return Principal(
        kind=ActorKind.PROFESSIONAL,
        subject=str(subject_id),
        assurance=assurance,
        methods=tuple(methods),
        professional_id=subject_id,
        organisation_id=professional.organisation_id,
        profession=professional.profession.value,
        auth_time=auth_time,
    )


def _operator_subject(kind: ActorKind, name: str) -> str:
    return f"{kind.value}:{name}"


def principal_for_spec(
    session: Session, as_: str, *, assurance: Assurance, clock: Clock
) -> tuple[Principal, str]:
    """The principal named by ``kind:identifier`` (see ``mint_token``) and its client id."""
    kind, _, value = as_.partition(":")
    value = value.strip()
    if not value:
        raise InvalidRequest(f"Expected kind:identifier, not {as_!r}.", field="as")
    cli = "carnet-cli"
    if kind in (ActorKind.PATIENT.value, ActorKind.PROFESSIONAL.value):
        person_kind = ActorKind(kind)
        subject = (
            find_patient_by_identifier(session, value)
            if person_kind is ActorKind.PATIENT
            else find_professional_by_identifier(session, value)
        )
        if subject is None:
            raise UnknownSubject(f"No {kind} has the identifier {value!r}.")
        principal = principal_for(
            session,
            person_kind,
            subject.id,
            assurance=assurance,
            methods=_METHODS[assurance],
            auth_time=clock.now(),
        )
        return principal, cli
    if kind == "system":
        organisation = session.scalar(
            select(Organisation).where(Organisation.identifier_value == value.upper()).limit(1)
        )
        if organisation is None:
            raise UnknownSubject(f"No organisation has the identifier {value!r}.")
        client = session.scalar(
            select(OAuthClient)
            .where(OAuthClient.organisation_id == organisation.id, OAuthClient.active.is_(True))
            .order_by(OAuthClient.client_id)
            .limit(1)
        )
        client_id = client.client_id if client else cli
        principal = Principal(
            kind=ActorKind.FEEDING_SYSTEM,
            subject=client_id,
            assurance=assurance,
            organisation_id=organisation.id,
        )
        return principal, client_id
    if kind in (ActorKind.OPERATOR.value, ActorKind.SECURITY_OFFICER.value):
        # Named as the audit trail names operators, signed in or not: ``operator:<name>``.
        operator_kind = ActorKind(kind)
        principal = Principal(
            kind=operator_kind,
            subject=_operator_subject(operator_kind, value.lower()),
            assurance=assurance,
            methods=_METHODS[assurance],
            auth_time=clock.now(),
        )
        return principal, cli
    raise InvalidRequest(
        f"Unknown actor kind {kind!r}: use patient, professional, system, operator or "
        "security-officer.",
        field="as",
    )
