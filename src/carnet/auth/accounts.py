"""Accounts: creating them, their secrets, the lock after failed sign-ins, finding them.

Passwords and PINs are kept as scrypt hashes, TOTP secrets sealed with the key wrapper. A failed
attempt counts towards the lock before ``SignInRefused`` is raised, so the way in commits such a
refusal rather than rolling it back. Signing in itself is ``carnet.auth.sign_in``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from functools import cache
from typing import Any

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.auth.errors import (
    DemoIdentityProviderDisabled,
    InvalidRequest,
    SignInRefused,
    UnknownSubject,
)
from carnet.auth.models import OperatorAccount, PatientAccount, ProfessionalAccount
from carnet.auth.passwords import MIN_PASSWORD, check_new_password
from carnet.clock import Clock
from carnet.directory.models import Professional
from carnet.directory.service import get_professional
from carnet.errors import Conflict
from carnet.patients import identifiers
from carnet.patients.errors import InvalidIdentifier
from carnet.patients.models import Patient
from carnet.patients.service import find_patient, get_patient
from carnet.storage.crypto import open_sealed, seal
from carnet.storage.ports import KeyWrapper

MAX_FAILED_SIGN_INS = 5
LOCK_DURATION = dt.timedelta(minutes=15)

# scrypt (RFC 7914), N=2^15, r=8, p=1: 32 MiB and about 100 ms a hash. OWASP's floor is 2^17,
# but at 128 MiB a hash a burst of sign-ins becomes a memory exhaustion attack on a small
# server; the cost travels with each hash, so it can be raised later without a migration.
SCRYPT_N = 2**15
_SCRYPT_R, _SCRYPT_P = 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_OPERATOR_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Every account's password rules (NIST SP 800-63B): see carnet.auth.passwords.
MIN_OPERATOR_PASSWORD = MIN_PASSWORD
OPERATOR_KINDS = (ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER)
Account = PatientAccount | ProfessionalAccount | OperatorAccount


class DuplicateAccount(Conflict):
    """The person already has an account: they sign in, or recover it with a new letter."""


# --- secrets -------------------------------------------------------------------------------


def hash_secret(secret: str) -> str:
    """Hash a password or PIN with scrypt and a random salt; the parameters travel along."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=_SCRYPT_MAXMEM
    )
    return f"scrypt${SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${b64url(salt)}${b64url(digest)}"


def verify_secret(secret: str, encoded: str) -> bool:
    """Whether ``secret`` matches ``encoded`` (from ``hash_secret``), compared in constant time."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.urlsafe_b64decode(digest + "==")
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.urlsafe_b64decode(salt + "=="),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@cache
def cached_decoy_hash() -> str:
    """A random secret's hash, computed once per process (a cache), for when there is no account."""
    # Checked against when there is no account, so that an unknown identifier takes as long to
    # refuse as a wrong password and the timing reveals nothing.
    return hash_secret(secrets.token_urlsafe(16))


def b64url(data: bytes) -> str:
    """``data`` in unpadded base64url (RFC 4648 section 5), as scrypt hashes and PKCE write it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _totp_aad(kind: ActorKind, subject_id: uuid.UUID) -> bytes:
    return f"carnet-totp:{kind.value}:{subject_id}".encode()


# --- accounts --------------------------------------------------------------------------------


def create_patient_account(
    session: Session,
    *,
    patient_id: uuid.UUID,
    password: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    totp_secret: str | None = None,
) -> str:
    """Give a patient a sign-in; returns the TOTP secret (base32) to enrol in an authenticator.

    Raises ``PatientNotFound``, ``DuplicateAccount`` or ``PasswordRefused`` (``passwords``).
    """
    patient = get_patient(session, patient_id)
    check_new_password(password, identifiers=[i.value for i in patient.identifiers])
    return _create_account(
        session,
        PatientAccount(patient_id=patient_id),
        ActorKind.PATIENT,
        patient_id,
        password=password,
        key_wrapper=key_wrapper,
        clock=clock,
        totp_secret=totp_secret,
    )


def create_professional_account(
    session: Session,
    *,
    professional_id: uuid.UUID,
    password: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    totp_secret: str | None = None,
) -> str:
    """Give a professional a sign-in; returns the TOTP secret (base32) to enrol.

    Raises ``ProfessionalNotFound``, ``DuplicateAccount`` or ``PasswordRefused``.
    """
    professional = get_professional(session, professional_id)
    check_new_password(password, identifiers=[professional.identifier_value])
    return _create_account(
        session,
        ProfessionalAccount(professional_id=professional_id),
        ActorKind.PROFESSIONAL,
        professional_id,
        password=password,
        key_wrapper=key_wrapper,
        clock=clock,
        totp_secret=totp_secret,
    )


def create_operator_account(
    session: Session,
    *,
    name: str,
    kind: ActorKind = ActorKind.OPERATOR,
    password: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    totp_secret: str | None = None,
) -> str:
    """Give an agency operator (or security officer) a sign-in; returns the TOTP secret.

    ``name`` is what they sign in with and how the audit trail names them
    (``operator:<name>``): 2 to 64 lowercase letters, digits, dots, dashes or underscores.
    They always sign in with password and one-time code. Raises ``InvalidRequest`` for a bad
    name or kind, ``PasswordRefused`` for a password the rules refuse, ``DuplicateAccount``
    for a name already taken.
    """
    name = name.strip().lower()
    if not _OPERATOR_NAME.match(name):
        raise InvalidRequest(
            "An operator's name is 2 to 64 lowercase letters, digits, dots, dashes or underscores.",
            field="name",
        )
    if kind not in OPERATOR_KINDS:
        raise InvalidRequest(
            "An agency account is an operator or a security officer.", field="kind"
        )
    check_new_password(password, identifiers=[name])
    if session.scalar(select(OperatorAccount.id).where(OperatorAccount.name == name)) is not None:
        raise DuplicateAccount(f"The operator name {name!r} is taken.", field="name")
    secret = totp_secret or pyotp.random_base32()
    account_id = uuid.uuid4()
    session.add(
        OperatorAccount(
            id=account_id,
            name=name,
            kind=kind,
            active=True,
            **credential_columns(
                ActorKind.OPERATOR,
                account_id,
                password_hash=hash_secret(password),
                totp_secret=secret,
                key_wrapper=key_wrapper,
                clock=clock,
            ),
        )
    )
    session.flush()
    return secret


def totp_provisioning_uri(secret: str, *, name: str, issuer: str = "Carnet") -> str:
    """The ``otpauth://`` URI an authenticator app enrols (as a QR code or typed in)."""
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def _create_account(
    session: Session,
    account: PatientAccount | ProfessionalAccount,
    kind: ActorKind,
    subject_id: uuid.UUID,
    *,
    password: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    totp_secret: str | None,
) -> str:
    if session.get(type(account), subject_id) is not None:
        raise DuplicateAccount(
            f"This {kind.value} already has an account.", field=f"{kind.value}_id"
        )
    secret = totp_secret or pyotp.random_base32()
    credentials = credential_columns(
        kind,
        subject_id,
        password_hash=hash_secret(password),
        totp_secret=secret,
        key_wrapper=key_wrapper,
        clock=clock,
    )
    for name, value in credentials.items():
        setattr(account, name, value)
    session.add(account)
    session.flush()
    return secret


def credential_columns(
    kind: ActorKind,
    subject_id: uuid.UUID,
    *,
    password_hash: str,
    totp_secret: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
) -> dict[str, Any]:
    """The credential columns of a new or reset account, no failure counted.

    The password hash as given, and the TOTP secret sealed for ``kind`` and ``subject_id``.
    """
    now = clock.now()
    return {
        "password_hash": password_hash,
        "totp_secret_sealed": seal(
            totp_secret.encode(), aad=_totp_aad(kind, subject_id), wrapper=key_wrapper
        ),
        "failed_sign_ins": 0,
        "created_at": now,
        "updated_at": now,
    }


def current_otp(
    session: Session,
    *,
    as_: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    demo_idp: bool,
) -> str:
    """The one-time code a demo account's authenticator would show now (demo IdP only).

    ``as_`` is ``patient:<national identifier>``, ``professional:<identifier>``,
    ``operator:<name>`` or ``security-officer:<name>``.
    """
    if not demo_idp:
        raise DemoIdentityProviderDisabled()
    kind, _, value = as_.partition(":")
    found = find_account(session, _person_kind(kind), value)
    if found is None:
        raise UnknownSubject(f"No demo account for {as_!r}.")
    account, subject_id = found
    return _totp(account, _person_kind(kind), subject_id, key_wrapper).at(clock.now())


def _person_kind(kind: str) -> ActorKind:
    accounts = (ActorKind.PATIENT, ActorKind.PROFESSIONAL, *OPERATOR_KINDS)
    if kind not in {account.value for account in accounts}:
        raise InvalidRequest(
            "Expected patient:<identifier>, professional:<identifier>, operator:<name> or "
            f"security-officer:<name>, not {kind!r}."
        )
    return ActorKind(kind)


def find_account(  # patient-data: the sign-in, before any actor
    session: Session, kind: ActorKind, identifier: str
) -> tuple[Account, uuid.UUID] | None:
    """The account signing in as ``identifier`` and the id its principal carries, or None.

    A patient is found by national identifier, a professional by directory identifier (an
    inactive professional has none), an operator or security officer by name (an inactive one
    has none).
    """
    if kind in OPERATOR_KINDS:
        # Either kind finds the account: the account, not the form, says which it is.
        operator = session.scalar(
            select(OperatorAccount).where(OperatorAccount.name == identifier.strip().lower())
        )
        if operator is None or not operator.active:
            return None
        return operator, operator.id
    if kind is ActorKind.PATIENT:
        patient = find_patient_by_identifier(session, identifier)
        account = session.get(PatientAccount, patient.id) if patient else None
        return (account, account.patient_id) if account else None
    professional = find_professional_by_identifier(session, identifier)
    if professional is None or not professional.active:
        return None
    found = session.get(ProfessionalAccount, professional.id)
    return (found, found.professional_id) if found else None


def find_patient_by_identifier(session: Session, identifier: str) -> Patient | None:
    """The patient with this national identifier (Luxembourg matricule or French NIR), or None."""
    for system in (identifiers.LU_MATRICULE, identifiers.FR_NIR):
        try:
            patient = find_patient(session, system, identifier)
        except InvalidIdentifier:
            continue
        if patient is not None:
            return patient
    return None


def find_professional_by_identifier(session: Session, identifier: str) -> Professional | None:
    """The professional with this directory identifier (spaces ignored, any case), or None."""
    value = re.sub(r"\s+", "", identifier).upper()
    return session.scalar(
        select(Professional)
        .where(Professional.identifier_value == value)
        .order_by(Professional.id)
        .limit(1)
    )


def refuse_if_locked(account: Account, now: dt.datetime) -> None:
    """``SignInRefused`` while ``account`` is locked after too many failed sign-ins."""
    if account.locked_until is not None and account.locked_until > now:
        raise SignInRefused()


def record_attempt(account: Account, *, ok: bool, now: dt.datetime) -> None:
    """Count a sign-in attempt; a failure raises ``SignInRefused`` once it is recorded.

    A success clears the failures; five failures lock the account for 15 minutes.

    The lock is the account's, shared by every way of signing in (password, PIN, passkey).
    """
    account.updated_at = now
    if ok:
        account.failed_sign_ins = 0
        account.locked_until = None
        account.last_sign_in_at = now
        return
    account.failed_sign_ins += 1
    if account.failed_sign_ins >= MAX_FAILED_SIGN_INS:
        account.failed_sign_ins = 0
        account.locked_until = now + LOCK_DURATION
    raise SignInRefused()


def _totp(
    account: Account, kind: ActorKind, subject_id: uuid.UUID, key_wrapper: KeyWrapper
) -> pyotp.TOTP:
    # An operator's secret is sealed as an operator's whatever their kind, so that making one
    # a security officer (or back) keeps their authenticator working.
    sealed_as = ActorKind.OPERATOR if isinstance(account, OperatorAccount) else kind
    secret = open_sealed(
        account.totp_secret_sealed, aad=_totp_aad(sealed_as, subject_id), wrapper=key_wrapper
    )
    return pyotp.TOTP(secret.decode("ascii"))


def accept_otp(
    account: Account,
    kind: ActorKind,
    subject_id: uuid.UUID,
    code: str,
    *,
    key_wrapper: KeyWrapper,
    now: dt.datetime,
) -> bool:
    """Whether ``code`` is the account's TOTP code now; the step used is remembered on it.

    One step of drift either side is accepted, and never the same step twice.
    """
    totp = _totp(account, kind, subject_id, key_wrapper)
    code = code.strip().replace(" ", "")
    # RFC 6238 section 5.2: one step either side for clock drift, and never the same step twice.
    for drift in (0, -1, 1):
        moment = now + dt.timedelta(seconds=drift * totp.interval)
        step = totp.timecode(moment)
        if hmac.compare_digest(totp.at(moment), code) and (
            account.totp_last_step is None or step > account.totp_last_step
        ):
            account.totp_last_step = step
            return True
    return False
