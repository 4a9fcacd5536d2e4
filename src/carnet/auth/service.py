"""Authentication services: accounts and sign-in, clients, codes, refresh rotation, revocation.

Every function takes its session and never commits. Some refusals must still be *recorded*
even though they are refusals — a failed sign-in counts towards the lock, a replayed code or
refresh token revokes what it produced, a used client assertion stays used — so those functions
write first and then raise; the way in commits such an ``AuthError`` rather than rolling back.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import pyotp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.access.guard import represents
from carnet.access.scopes import InvalidScope as MalformedScope
from carnet.access.scopes import Scope, parse_scopes
from carnet.auth import card, card_authorities, staff
from carnet.auth.errors import (
    CardRefused,
    DemoIdentityProviderDisabled,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    SignInRefused,
    StaffNotAllowed,
    UnauthorizedClient,
    UnknownSubject,
)
from carnet.auth.models import (
    AuthorizationCode,
    ClientKind,
    OAuthClient,
    OperatorAccount,
    PatientAccount,
    ProfessionalAccount,
    RefreshToken,
    RevokedToken,
)
from carnet.auth.passwords import MIN_PASSWORD, check_new_password
from carnet.auth.revocations import ASSERTION_PREFIX
from carnet.auth.tokens import (
    ACCESS_TOKEN_TYPE,
    CLOCK_SKEW_SECONDS,
    IssuedToken,
    Principal,
    TokenAuthority,
    issue_access_token,
    issue_id_token,
    peek,
    verify_signed,
)
from carnet.clock import Clock
from carnet.directory.models import Organisation, Professional
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
CODE_LIFETIME = dt.timedelta(seconds=60)
# SMART Backend Services: a client assertion expires no more than five minutes after now.
MAX_ASSERTION_LIFETIME = dt.timedelta(minutes=5)
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# SMART Backend Services requires RS384 and ES384; the rest are common and sound.
CLIENT_ASSERTION_ALGORITHMS = ("ES256", "ES384", "RS256", "RS384", "PS256", "PS384")

# RFC 8176 authentication method references.
PASSWORD_ONLY = ("pwd",)
PASSWORD_AND_OTP = ("pwd", "otp", "mfa")
CARD_AND_PIN = ("sc", "hwk", "pin", "mfa")

# scrypt (RFC 7914), N=2^15, r=8, p=1: 32 MiB and about 100 ms a hash. OWASP's floor is 2^17,
# but at 128 MiB a hash a burst of sign-ins becomes a memory exhaustion attack on a small
# server; the cost travels with each hash, so it can be raised later without a migration.
SCRYPT_N = 2**15
_SCRYPT_R, _SCRYPT_P = 8, 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024
# RFC 7636 section 4.1: 43 to 128 unreserved characters.
_CODE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_CODE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")
_OPERATOR_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Every account's password rules (NIST SP 800-63B): see carnet.auth.passwords.
MIN_OPERATOR_PASSWORD = MIN_PASSWORD
OPERATOR_KINDS = (ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER)
_DEFAULT_SCOPES = {
    ActorKind.PATIENT: "openid fhirUser launch/patient patient/*.cruds",
    ActorKind.PROFESSIONAL: "openid fhirUser user/*.cruds",
    ActorKind.FEEDING_SYSTEM: "system/*.cruds",
    ActorKind.OPERATOR: "system/*.rs",
    ActorKind.SECURITY_OFFICER: "system/*.rs",
}
_METHODS = {
    Assurance.LOW: PASSWORD_ONLY,
    Assurance.SUBSTANTIAL: PASSWORD_AND_OTP,
    Assurance.HIGH: CARD_AND_PIN,
}
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
    return f"scrypt${SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


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
def _decoy_hash() -> str:
    # Checked against when there is no account, so that an unknown identifier takes as long to
    # refuse as a wrong password and the timing reveals nothing.
    return hash_secret(secrets.token_urlsafe(16))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _totp_aad(kind: ActorKind, subject_id: uuid.UUID) -> bytes:
    return f"carnet-totp:{kind.value}:{subject_id}".encode()


def _card_aad(professional_id: uuid.UUID) -> bytes:
    return f"carnet-card:{professional_id}".encode()


def _authority_aad(authority_id: uuid.UUID) -> bytes:
    return f"carnet-card-authority:{authority_id}".encode()


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
            **_credentials(
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
    credentials = _credentials(
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


def _credentials(
    kind: ActorKind,
    subject_id: uuid.UUID,
    *,
    password_hash: str,
    totp_secret: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
) -> dict[str, Any]:
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
    found = _find_account(session, _person_kind(kind), value)
    if found is None:
        raise UnknownSubject(f"No demo account for {as_!r}.")
    account, subject_id = found
    return _totp(account, _person_kind(kind), subject_id, key_wrapper).at(clock.now())


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
    found = _find_account(session, kind, identifier)
    password_ok = verify_secret(password, found[0].password_hash if found else _decoy_hash())
    if found is None:
        raise SignInRefused()
    account, subject_id = found
    _refuse_if_locked(account, now)
    assurance = Assurance.LOW
    # Counted as a failure even with the right password: otherwise a password could be tried
    # without ever reaching the lock.
    ok = password_ok and not isinstance(account, OperatorAccount)
    if otp:
        assurance = Assurance.SUBSTANTIAL
        ok = password_ok and _accept_otp(
            account, kind, subject_id, otp, key_wrapper=key_wrapper, now=now
        )
    _record_attempt(account, ok=ok, now=now)
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


def _person_kind(kind: str) -> ActorKind:
    accounts = (ActorKind.PATIENT, ActorKind.PROFESSIONAL, *OPERATOR_KINDS)
    if kind not in {account.value for account in accounts}:
        raise InvalidRequest(
            "Expected patient:<identifier>, professional:<identifier>, operator:<name> or "
            f"security-officer:<name>, not {kind!r}."
        )
    return ActorKind(kind)


def _find_account(
    session: Session, kind: ActorKind, identifier: str
) -> tuple[Account, uuid.UUID] | None:
    if kind in OPERATOR_KINDS:
        # Either kind finds the account: the account, not the form, says which it is.
        operator = session.scalar(
            select(OperatorAccount).where(OperatorAccount.name == identifier.strip().lower())
        )
        if operator is None or not operator.active:
            return None
        return operator, operator.id
    if kind is ActorKind.PATIENT:
        patient = _find_patient(session, identifier)
        account = session.get(PatientAccount, patient.id) if patient else None
        return (account, account.patient_id) if account else None
    professional = _find_professional(session, identifier)
    if professional is None or not professional.active:
        return None
    found = session.get(ProfessionalAccount, professional.id)
    return (found, found.professional_id) if found else None


def _find_patient(session: Session, identifier: str) -> Patient | None:
    for system in (identifiers.LU_MATRICULE, identifiers.FR_NIR):
        try:
            patient = find_patient(session, system, identifier)
        except InvalidIdentifier:
            continue
        if patient is not None:
            return patient
    return None


def _find_professional(session: Session, identifier: str) -> Professional | None:
    value = re.sub(r"\s+", "", identifier).upper()
    return session.scalar(
        select(Professional)
        .where(Professional.identifier_value == value)
        .order_by(Professional.id)
        .limit(1)
    )


def _refuse_if_locked(account: Account, now: dt.datetime) -> None:
    if account.locked_until is not None and account.locked_until > now:
        raise SignInRefused()


def _record_attempt(account: Account, *, ok: bool, now: dt.datetime) -> None:
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


def _accept_otp(
    account: Account,
    kind: ActorKind,
    subject_id: uuid.UUID,
    code: str,
    *,
    key_wrapper: KeyWrapper,
    now: dt.datetime,
) -> bool:
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


# --- clients ---------------------------------------------------------------------------------


def register_public_client(
    session: Session,
    *,
    name: str,
    redirect_uris: Sequence[str],
    allowed_scopes: str,
    clock: Clock,
    client_id: str | None = None,
) -> OAuthClient:
    """Register a portal, mobile or SMART app: authorization code with PKCE, no secret.

    Redirect URIs are compared exactly; each must be https, a loopback http URL (RFC 8252
    section 7.3) or a private-use scheme (RFC 8252 section 7.1), without a fragment.
    """
    if not redirect_uris:
        raise InvalidRequest("An app needs at least one redirect URI.", field="redirect_uri")
    for uri in redirect_uris:
        _check_redirect_uri(uri)
    return _add_client(
        session,
        client_id=client_id,
        name=name,
        kind=ClientKind.PUBLIC,
        redirect_uris=list(redirect_uris),
        allowed_scopes=allowed_scopes,
        clock=clock,
    )


def ensure_first_party_client(
    session: Session,
    *,
    client_id: str,
    name: str,
    redirect_uri: str,
    allowed_scopes: str,
    clock: Clock,
) -> OAuthClient:
    """Register (or bring up to date) one of Carnet's own apps, such as the portal.

    Its redirect URI is Carnet's own public URL, whatever its scheme: Carnet trusts itself. The
    row follows the settings, so a changed public URL takes effect at the next sign-in.
    """
    client = session.get(OAuthClient, client_id)
    scopes = _normalise_scopes(allowed_scopes)
    if client is None:
        return _add_client(
            session,
            client_id=client_id,
            name=name,
            kind=ClientKind.PUBLIC,
            redirect_uris=[redirect_uri],
            allowed_scopes=scopes,
            clock=clock,
            first_party=True,
        )
    if (
        client.redirect_uris != [redirect_uri]
        or client.allowed_scopes != scopes
        or not client.first_party
    ):
        client.redirect_uris = [redirect_uri]
        client.allowed_scopes = scopes
        client.active = True
        # Carnet's own app: it skips the consent screen (see carnet.web.consent).
        client.first_party = True
        session.flush()
    return client


def register_backend_client(
    session: Session,
    *,
    name: str,
    organisation_identifier: str,
    allowed_scopes: str,
    clock: Clock,
    jwks: dict[str, Any] | None = None,
    jwks_url: str | None = None,
    client_id: str | None = None,
) -> OAuthClient:
    """Register a feeding system of an organisation, authenticating with ``private_key_jwt``.

    Its public keys are given inline (``jwks``) or published at ``jwks_url``. Raises
    ``UnknownSubject`` for an unknown organisation, ``InvalidRequest`` for unusable keys.
    """
    organisation = session.scalar(
        select(Organisation)
        .where(Organisation.identifier_value == organisation_identifier.strip().upper())
        .limit(1)
    )
    if organisation is None:
        raise UnknownSubject(f"No organisation has the identifier {organisation_identifier!r}.")
    if (jwks is None) == (jwks_url is None):
        raise InvalidRequest("Give the system's public keys as a JWKS or a JWKS URL.", field="jwks")
    if jwks is not None:
        _check_public_jwks(jwks)
    if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
        raise InvalidRequest("The JWKS URL must be http(s).", field="jwks_url")
    return _add_client(
        session,
        client_id=client_id,
        name=name,
        kind=ClientKind.BACKEND,
        redirect_uris=[],
        allowed_scopes=allowed_scopes,
        clock=clock,
        organisation_id=organisation.id,
        jwks=jwks,
        jwks_url=jwks_url,
    )


def _add_client(
    session: Session, *, client_id: str | None, allowed_scopes: str, clock: Clock, **fields: Any
) -> OAuthClient:
    client_id = client_id or secrets.token_hex(16)
    if not _CLIENT_ID.match(client_id):
        raise InvalidRequest(
            "A client id is 3 to 64 letters, digits, dots, dashes or underscores.",
            field="client_id",
        )
    if session.get(OAuthClient, client_id) is not None:
        raise DuplicateAccount(f"The client id {client_id!r} is taken.", field="client_id")
    if not fields["name"].strip():
        raise InvalidRequest("The client needs a name.", field="name")
    client = OAuthClient(
        client_id=client_id,
        allowed_scopes=_normalise_scopes(allowed_scopes),
        active=True,
        created_at=clock.now(),
        **fields,
    )
    session.add(client)
    session.flush()
    return client


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
    private_use = parts.scheme not in ("http", "https", "") and "." in parts.scheme
    https = parts.scheme == "https" and bool(parts.netloc)
    if parts.fragment or not (https or loopback or private_use):
        raise InvalidRequest(
            f"{uri!r} is not an acceptable redirect URI: use https, a loopback http URL or a "
            "private-use scheme such as com.example.app:/callback, without a fragment.",
            field="redirect_uri",
        )


def _check_public_jwks(jwks: dict[str, Any]) -> None:
    try:
        key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise InvalidRequest(f"The JWKS is not usable: {error}", field="jwks") from None
    for key in key_set:
        if key.key_type == "oct" or key.is_private:
            raise InvalidRequest(
                "The JWKS must hold public asymmetric keys only (never a private or shared key).",
                field="jwks",
            )


def get_client(session: Session, client_id: str) -> OAuthClient:
    """The active client ``client_id``; ``InvalidClient`` otherwise."""
    client = session.get(OAuthClient, client_id) if client_id else None
    if client is None or not client.active:
        raise InvalidClient()
    return client


def list_clients(session: Session) -> list[OAuthClient]:
    """Every registered client, by id."""
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.client_id)))


def authenticate_client(
    session: Session,
    authority: TokenAuthority,
    *,
    client_id: str | None,
    assertion_type: str | None,
    assertion: str | None,
    clock: Clock,
) -> OAuthClient:
    """Identify the client calling the token or revocation endpoint.

    A backend client proves itself with a signed assertion (``private_key_jwt``, RFC 7523
    section 2.2): signed by one of its registered keys, ``iss`` and ``sub`` its client id, ``aud``
    the token endpoint, expiring within five minutes, its ``jti`` never seen before. A public
    client only names itself. Raises ``InvalidClient``.
    """
    if assertion_type is not None or assertion is not None:
        if assertion_type != CLIENT_ASSERTION_TYPE or not assertion:
            raise InvalidClient(f"client_assertion_type must be {CLIENT_ASSERTION_TYPE}.")
        return _verify_assertion(session, authority, assertion, client_id, clock)
    client = get_client(session, client_id or "")
    if client.kind is not ClientKind.PUBLIC:
        raise InvalidClient("This client must authenticate with private_key_jwt.")
    return client


def _verify_assertion(
    session: Session,
    authority: TokenAuthority,
    assertion: str,
    client_id: str | None,
    clock: Clock,
) -> OAuthClient:
    try:
        header, unverified = peek(assertion)
    except InvalidToken:
        raise InvalidClient("The client assertion is not a JWT.") from None
    subject = unverified.get("sub")
    if not isinstance(subject, str) or (client_id and client_id != subject):
        raise InvalidClient()
    client = get_client(session, subject)
    algorithm = header.get("alg")
    if client.kind is not ClientKind.BACKEND or algorithm not in CLIENT_ASSERTION_ALGORITHMS:
        raise InvalidClient()
    key = _client_key(authority, client, header.get("kid"), clock)
    now = clock.now()
    try:
        claims = jwt.decode(assertion, key, algorithms=[str(algorithm)]).claims
        jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=CLOCK_SKEW_SECONDS,
            iss={"essential": True, "value": client.client_id},
            sub={"essential": True, "value": client.client_id},
            aud={"essential": True, "values": [authority.config.token_endpoint]},
            exp={"essential": True},
            jti={"essential": True},
        ).validate(claims)
    except (JoseError, ValueError):
        raise InvalidClient() from None
    expires_at = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    if expires_at > now + MAX_ASSERTION_LIFETIME + dt.timedelta(seconds=CLOCK_SKEW_SECONDS):
        raise InvalidClient("The client assertion must expire within five minutes.")
    _consume_assertion(session, client.client_id, str(claims["jti"]), expires_at, now)
    return client


def _client_key(authority: TokenAuthority, client: OAuthClient, kid: object, clock: Clock) -> Key:
    name = kid if isinstance(kid, str) else None
    key: Key | None
    if client.jwks is not None:
        try:
            key = KeySet.import_key_set(client.jwks).get_by_kid(name)  # type: ignore[arg-type]
        except (JoseError, ValueError):
            key = None
    else:
        key = authority.client_jwks(client.jwks_url or "").key(name, clock.now())
    if key is None:
        raise InvalidClient()
    return key


def _consume_assertion(
    session: Session, client_id: str, jti: str, expires_at: dt.datetime, now: dt.datetime
) -> None:
    # RFC 7523 section 3: an assertion is used once. Used ones are kept beside revoked tokens
    # until they expire, under a digest so that a client cannot collide with a token id.
    key = ASSERTION_PREFIX + _digest(f"{client_id}\n{jti}")
    if session.get(RevokedToken, key) is not None:
        raise InvalidClient("The client assertion was already used.")
    try:
        with session.begin_nested():
            session.add(RevokedToken(jti=key, expires_at=expires_at, revoked_at=now))
    except IntegrityError:
        raise InvalidClient("The client assertion was already used.") from None


# --- scopes ----------------------------------------------------------------------------------


def grant_scopes(requested: str | None, allowed: str) -> str:
    """What a token may carry: the requested scopes narrowed to what the client is allowed.

    ``patient/Observation.rs`` requested of a client allowed ``patient/*.r`` grants
    ``patient/Observation.r``. No request means everything allowed. Raises ``InvalidScope`` for
    a malformed or unknown scope, or when nothing requested is allowed (RFC 6749 section 3.3).
    """
    allowed_resources, allowed_others = _parse(allowed)
    if requested is None or not requested.strip():
        return _normalise_scopes(allowed)
    resources, others = _parse(requested)
    granted: dict[tuple[str, str], set[str]] = {}
    for asked in resources:
        for offered in allowed_resources:
            compatible = asked.context == offered.context and (
                offered.resource in ("*", asked.resource) or asked.resource == "*"
            )
            if not compatible:
                continue
            resource = asked.resource if offered.resource == "*" else offered.resource
            letters = asked.permissions & offered.permissions
            if letters:
                granted.setdefault((asked.context, resource), set()).update(letters)
    kept_others = others & allowed_others
    if not granted and not kept_others:
        raise InvalidScope("None of the requested scopes is allowed for this client.")
    scopes = [Scope(context, resource, frozenset(p)) for (context, resource), p in granted.items()]
    return _format(kept_others, scopes)


def _parse(text: str) -> tuple[frozenset[Scope], frozenset[str]]:
    try:
        return parse_scopes(text)
    except MalformedScope as error:
        raise InvalidScope(str(error)) from None


def _normalise_scopes(text: str) -> str:
    resources, others = _parse(text)
    return _format(others, resources)


def _format(others: Iterable[str], resources: Iterable[Scope]) -> str:
    return " ".join([*sorted(others), *sorted(str(scope) for scope in resources)])


# --- codes and tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenResponse:
    """A successful token response (RFC 6749 section 5.1, SMART App Launch)."""

    access_token: IssuedToken
    expires_in: int
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON body, without absent members."""
        body: dict[str, Any] = {
            "access_token": self.access_token.token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.access_token.scope,
            "refresh_token": self.refresh_token,
            "id_token": self.id_token,
            "patient": self.patient,
        }
        return {name: value for name, value in body.items() if value is not None}


def check_code_challenge(code_challenge: str | None, method: str | None) -> str:
    """A PKCE challenge Carnet accepts: S256 only (RFC 7636 section 4.2; ``plain`` refused)."""
    if method != "S256":
        raise InvalidRequest("code_challenge_method must be S256.", field="code_challenge_method")
    if not code_challenge or not _CODE_CHALLENGE.match(code_challenge):
        raise InvalidRequest("code_challenge must be a base64url SHA-256.", field="code_challenge")
    return code_challenge


def check_redirect_uri(client: OAuthClient, redirect_uri: str | None) -> str:
    """The redirect URI if it is exactly one the client registered; ``InvalidRequest`` else."""
    if client.kind is not ClientKind.PUBLIC:
        raise UnauthorizedClient("This client may not use the authorization code grant.")
    if redirect_uri is None or redirect_uri not in client.redirect_uris:
        raise InvalidRequest(
            "redirect_uri does not match the client's registration.", field="redirect_uri"
        )
    return redirect_uri


def create_authorization_code(
    session: Session,
    *,
    client: OAuthClient,
    redirect_uri: str,
    scope: str,
    code_challenge: str,
    nonce: str | None,
    principal: Principal,
    clock: Clock,
    launch_patient: uuid.UUID | None = None,
) -> str:
    """A single-use code for ``principal``, valid 60 s, bound to client, URI and challenge.

    ``launch_patient`` is the SMART launch context a representative chose (someone they
    represent, checked by the caller); None for the person themself.
    """
    code = secrets.token_urlsafe(32)
    now = clock.now()
    session.add(
        AuthorizationCode(
            code_hash=_digest(code),
            client_id=client.client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            code_challenge=code_challenge,
            nonce=nonce,
            expires_at=now + CODE_LIFETIME,
            launch_patient_id=launch_patient,
            **_subject_columns(session, principal, now),
        )
    )
    session.flush()
    return code


def redeem_authorization_code(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    code: str,
    redirect_uri: str | None,
    code_verifier: str | None,
    clock: Clock,
) -> TokenResponse:
    """Exchange a code for tokens (RFC 6749 section 4.1.3, RFC 7636 section 4.6).

    The code is spent on the first attempt, right or wrong. A code presented twice revokes the
    tokens it produced (RFC 6749 section 4.1.2), recorded before ``InvalidGrant`` is raised.
    """
    now = clock.now()
    row = session.get(AuthorizationCode, _digest(code or ""))
    refused = InvalidGrant("The authorization code is invalid, expired or already used.")
    if row is None or row.client_id != client.client_id:
        raise refused
    if row.used_at is not None:
        _revoke_issued(session, row, clock)
        raise refused
    if not _claim(session, AuthorizationCode, AuthorizationCode.code_hash == row.code_hash, now):
        raise refused
    if row.expires_at <= now:
        raise refused
    if redirect_uri != row.redirect_uri:
        raise InvalidGrant("redirect_uri differs from the one of the authorization request.")
    if not code_verifier or not _CODE_VERIFIER.match(code_verifier):
        raise InvalidGrant("code_verifier is missing or malformed.")
    challenge = _b64(hashlib.sha256(code_verifier.encode("ascii")).digest())
    if not hmac.compare_digest(challenge, row.code_challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge.")
    family_id = uuid.uuid4()
    row.family_id = family_id
    response = _respond(
        session,
        authority,
        client,
        _principal_of(session, row),
        scope=row.scope,
        nonce=row.nonce,
        family=(family_id, now + authority.config.refresh_token_lifetime),
        clock=clock,
        launch_patient=_still_represented(session, row, now),
    )
    row.access_token_jti = response.access_token.jti
    row.access_token_expires_at = response.access_token.expires_at
    return response


def refresh_access_token(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    refresh_token: str,
    scope: str | None,
    clock: Clock,
) -> TokenResponse:
    """Rotate a refresh token: a new access and refresh token, the old one spent.

    Presenting a spent refresh token again means it was stolen (or the client is confused):
    the whole family — every refresh token descended from the same sign-in, and the access
    tokens they produced — is revoked (OAuth 2.0 Security BCP, section 4.14.2). The family
    keeps the expiry of its first token, so rotation never extends a sign-in.
    """
    now = clock.now()
    row = session.get(RefreshToken, _digest(refresh_token or ""))
    refused = InvalidGrant("The refresh token is invalid, expired or revoked.")
    if row is None or row.client_id != client.client_id or row.revoked_at is not None:
        raise refused
    if row.used_at is not None or not _claim(
        session,
        RefreshToken,
        (RefreshToken.token_hash == row.token_hash) & RefreshToken.revoked_at.is_(None),
        now,
    ):
        revoke_family(session, row.family_id, clock=clock)
        raise refused
    if row.expires_at <= now:
        raise refused
    granted = grant_scopes(scope, row.scope) if scope else row.scope
    return _respond(
        session,
        authority,
        client,
        _principal_of(session, row),
        scope=granted,
        nonce=None,
        family=(row.family_id, row.expires_at),
        clock=clock,
        launch_patient=_still_represented(session, row, now),
    )


def _still_represented(
    session: Session, row: AuthorizationCode | RefreshToken, now: dt.datetime
) -> uuid.UUID | None:
    """The row's launch patient, if its person still represents them; ``InvalidGrant`` if not.

    A representation ends (a child comes of age, a guardianship is lifted): the app's tokens
    for that person end with it, whatever their own lifetime.
    """
    launch = row.launch_patient_id
    if launch is None or launch == row.subject_id:
        return launch
    if row.subject_kind is not ActorKind.PATIENT or not represents(
        session, row.subject_id, launch, now=now
    ):
        raise InvalidGrant("The person no longer represents the patient this app was launched for.")
    return launch


def client_credentials(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    scope: str | None,
    clock: Clock,
) -> TokenResponse:
    """An access token for a feeding system (RFC 6749 section 4.4; no refresh token)."""
    if client.kind is not ClientKind.BACKEND:
        raise UnauthorizedClient("Only backend clients may use client_credentials.")
    principal = Principal(
        kind=ActorKind.FEEDING_SYSTEM,
        subject=client.client_id,
        # A key held by the system itself, proven with each assertion.
        assurance=Assurance.HIGH,
        organisation_id=client.organisation_id,
    )
    return _respond(
        session,
        authority,
        client,
        principal,
        scope=grant_scopes(scope, client.allowed_scopes),
        nonce=None,
        family=None,
        clock=clock,
    )


def _respond(
    session: Session,
    authority: TokenAuthority,
    client: OAuthClient,
    principal: Principal,
    *,
    scope: str,
    nonce: str | None,
    family: tuple[uuid.UUID, dt.datetime] | None,
    clock: Clock,
    launch_patient: uuid.UUID | None = None,
) -> TokenResponse:
    now = clock.now()
    access = issue_access_token(
        session,
        authority,
        principal,
        scope=scope,
        client_id=client.client_id,
        clock=clock,
        launch_patient=launch_patient,
    )
    words = scope.split()
    refresh = None
    # SMART App Launch: refresh tokens for offline_access or online_access only.
    if family is not None and ({"offline_access", "online_access"} & set(words)):
        refresh = secrets.token_urlsafe(32)
        family_id, expires_at = family
        session.add(
            RefreshToken(
                token_hash=_digest(refresh),
                family_id=family_id,
                client_id=client.client_id,
                scope=scope,
                issued_at=now,
                access_token_jti=access.jti,
                access_token_expires_at=access.expires_at,
                expires_at=expires_at,
                launch_patient_id=launch_patient,
                **_subject_columns(session, principal, now),
            )
        )
        session.flush()
    id_token = None
    if "openid" in words and principal.kind is not ActorKind.FEEDING_SYSTEM:
        id_token = issue_id_token(
            session, authority, principal, client_id=client.client_id, nonce=nonce, clock=clock
        )
    return TokenResponse(
        access_token=access,
        expires_in=int((access.expires_at - now).total_seconds()),
        refresh_token=refresh,
        id_token=id_token,
        # SMART launch context: the patient whose record the app works on.
        patient=str(launch_patient or principal.person_id)
        if principal.kind is ActorKind.PATIENT
        else None,
    )


def _subject_columns(session: Session, principal: Principal, now: dt.datetime) -> dict[str, Any]:
    if principal.kind in OPERATOR_KINDS:
        # An operator's token names them (``operator:<name>``); the row keeps their account id.
        name = principal.subject.partition(":")[2]
        subject_id = session.scalar(select(OperatorAccount.id).where(OperatorAccount.name == name))
        if subject_id is None:
            raise InvalidGrant("The operator has no account.")
    elif principal.kind is ActorKind.PATIENT:
        subject_id = principal.person_id
    else:
        subject_id = principal.professional_id
    return {
        "subject_kind": principal.kind,
        "subject_id": subject_id,
        "assurance": int(principal.assurance),
        "amr": " ".join(principal.methods),
        "auth_time": principal.auth_time or now,
        "staff_id": principal.staff_id,
    }


def _principal_of(session: Session, row: AuthorizationCode | RefreshToken) -> Principal:
    principal = principal_for(
        session,
        row.subject_kind,
        row.subject_id,
        assurance=Assurance(row.assurance),
        methods=row.amr.split(),
        auth_time=row.auth_time,
    )
    if row.staff_id is None:
        return principal
    # A revoked allowance, or a staff member who left, ends at the next refresh.
    try:
        staff.check_allowed(session, row.staff_id, row.subject_id)
    except StaffNotAllowed as refused:
        raise InvalidGrant(refused.message) from None
    return dataclasses.replace(principal, staff_id=row.staff_id)


def _claim(
    session: Session,
    model: type[AuthorizationCode] | type[RefreshToken],
    condition: Any,
    now: dt.datetime,
) -> bool:
    # A conditional update, so that two concurrent requests cannot both spend the same code
    # or refresh token: exactly one sees its row change.
    result = session.execute(
        update(model).where(condition, model.used_at.is_(None)).values(used_at=now),
        execution_options={"synchronize_session": "fetch"},
    )
    return bool(getattr(result, "rowcount", 0) == 1)


# --- revocation ------------------------------------------------------------------------------


def revoke_token(
    session: Session,
    authority: TokenAuthority,
    *,
    client: OAuthClient,
    token: str,
    clock: Clock,
) -> None:
    """Revoke a refresh token (and its family) or an access token of ``client`` (RFC 7009).

    Unknown tokens, and tokens of other clients, are ignored: the answer is the same either
    way (RFC 7009 section 2.2), so it reveals nothing.
    """
    row = session.get(RefreshToken, _digest(token))
    if row is not None:
        if row.client_id == client.client_id:
            revoke_family(session, row.family_id, clock=clock)
        return
    try:
        claims = verify_signed(
            session,
            authority,
            token,
            typ=ACCESS_TOKEN_TYPE,
            audience=authority.config.audience,
            clock=clock,
            essential=("jti",),
        )
    except InvalidToken:
        return
    if claims.get("client_id") == client.client_id:
        revoke_access_token(
            session,
            jti=str(claims["jti"]),
            expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
            clock=clock,
        )


def revoke_access_token(
    session: Session, *, jti: str, expires_at: dt.datetime, clock: Clock
) -> None:
    """Put an access token on the revocation list until it would have expired anyway."""
    if session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, expires_at=expires_at, revoked_at=clock.now()))
        session.flush()


def revoke_family(session: Session, family_id: uuid.UUID, *, clock: Clock) -> None:
    """Revoke every refresh token of a family and the access tokens they produced."""
    now = clock.now()
    for row in session.scalars(select(RefreshToken).where(RefreshToken.family_id == family_id)):
        if row.revoked_at is None:
            row.revoked_at = now
        _revoke_access_of(session, row, clock)
    session.flush()


def _revoke_issued(session: Session, code: AuthorizationCode, clock: Clock) -> None:
    _revoke_access_of(session, code, clock)
    if code.family_id is not None:
        revoke_family(session, code.family_id, clock=clock)


def _revoke_access_of(
    session: Session, row: AuthorizationCode | RefreshToken, clock: Clock
) -> None:
    if (
        row.access_token_jti is not None
        and row.access_token_expires_at is not None
        and row.access_token_expires_at > clock.now()
    ):
        revoke_access_token(
            session, jti=row.access_token_jti, expires_at=row.access_token_expires_at, clock=clock
        )


def purge_expired(session: Session, *, clock: Clock) -> int:
    """Delete revocations, codes and refresh tokens that expired; returns the rows deleted.

    Spent codes are kept a day longer, so that a late replay still revokes what they produced.
    """
    now = clock.now() - dt.timedelta(seconds=CLOCK_SKEW_SECONDS)
    retention: list[tuple[Any, dt.datetime]] = [
        (RevokedToken, now),
        (RefreshToken, now),
        (AuthorizationCode, now - dt.timedelta(days=1)),
    ]
    deleted = 0
    for model, cutoff in retention:
        result = session.execute(delete(model).where(model.expires_at < cutoff))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


# --- tokens minted for scripts (carnet token) ------------------------------------------------


def mint_token(
    session: Session,
    authority: TokenAuthority,
    *,
    as_: str,
    assurance: Assurance,
    scope: str | None,
    lifetime: dt.timedelta | None,
    clock: Clock,
) -> IssuedToken:
    """An access token signed directly with the server's key, for scripts and tests.

    ``as_`` is ``patient:<national identifier>``, ``professional:<identifier>``,
    ``system:<organisation identifier>``, ``operator:<name>`` or ``security-officer:<name>``.
    Only where the demo identity provider is enabled (``DemoIdentityProviderDisabled``).
    """
    if not authority.config.demo_idp:
        raise DemoIdentityProviderDisabled()
    principal, client_id = principal_for_spec(session, as_, assurance=assurance, clock=clock)
    granted = _normalise_scopes(scope if scope is not None else _DEFAULT_SCOPES[principal.kind])
    return issue_access_token(
        session,
        authority,
        principal,
        scope=granted,
        client_id=client_id,
        clock=clock,
        lifetime=lifetime,
    )


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
            _find_patient(session, value)
            if person_kind is ActorKind.PATIENT
            else _find_professional(session, value)
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
