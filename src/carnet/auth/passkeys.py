"""Passkeys (WebAuthn Level 3): the phishing-resistant way to sign in to a Carnet account.

A passkey is a key pair made by the person's authenticator (phone, laptop, security key) for
Carnet's relying party id alone: the browser refuses to use it on any other site, so a copied
sign-in page gets nothing. Carnet keeps the public key (``PasskeyCredential``); the attestation
and assertion checks are py_webauthn's, and Carnet adds what is its own: whose account a
passkey opens, the level of assurance it gives, the lock after repeated failures (the same lock
as for passwords, counted on the account), the refusal of a cloned authenticator, and the
audit trail.

Registration is one reusable ceremony: ``begin_registration`` gives the options a page embeds
and a *state*, a short-lived JWT signed by Carnet that holds the challenge and the account and
is bound to the browser session that asked; ``finish_registration`` checks the authenticator's
answer against it. The portal's Security page and the onboarding pages both use it.

Every passkey is registered with user verification required (a PIN or biometric on the
authenticator) and as a discoverable credential, so signing in needs no identifier: the
passkey itself says whose it is.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.base64url_to_bytes import base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.auth import passkey_trail as trail
from carnet.auth.accounts import (
    Account,
    record_attempt,  # the password's lock, shared: one failure count per account
)
from carnet.auth.errors import InvalidGrant, InvalidToken, PasskeyRefused
from carnet.auth.models import (
    OperatorAccount,
    PasskeyCredential,
    PasskeyHolder,
    PatientAccount,
    ProfessionalAccount,
)
from carnet.auth.sign_in import principal_for
from carnet.auth.tokens import Principal, TokenAuthority, sign, verify_signed
from carnet.clock import Clock
from carnet.directory.service import get_professional
from carnet.errors import InvalidValue
from carnet.patients.service import get_patient
from carnet.storable import check_text

STATE_TYPE = "carnet-passkey+jwt"
# Long enough to find the phone and unlock it; short enough that a state left in a page is dead.
CEREMONY_SECONDS = 300
DEFAULT_NAME = "Passkey"
MAX_NAME = 100
# A passkey with user verification is possession of a key bound to Carnet's origin plus the
# PIN or biometric that unlocks it: for a patient, as strong as the national eID card (HIGH);
# for a professional and an operator, the strong level their pages need (SUBSTANTIAL), not the
# card's HIGH, which the policy keeps for what only a professional card proves (a card-based
# care contact, access/service.py).
ASSURANCE = {
    PasskeyHolder.PATIENT: Assurance.HIGH,
    PasskeyHolder.PROFESSIONAL: Assurance.SUBSTANTIAL,
    PasskeyHolder.OPERATOR: Assurance.SUBSTANTIAL,
}
# RFC 8176: a key held in hardware (``hwk``) or a synced, software-held passkey (``swk``); the
# authenticator verified the user (``user``), so two factors (``mfa``).
DEVICE_BOUND = ("hwk", "user", "mfa")
SYNCED = ("swk", "user", "mfa")
_HOLDER_OF_KIND = {
    ActorKind.PATIENT: PasskeyHolder.PATIENT,
    ActorKind.PROFESSIONAL: PasskeyHolder.PROFESSIONAL,
    ActorKind.OPERATOR: PasskeyHolder.OPERATOR,
    ActorKind.SECURITY_OFFICER: PasskeyHolder.OPERATOR,
}


@dataclass(frozen=True)
class RelyingParty:
    """Carnet as a WebAuthn relying party: its id (a host name) and the origin pages run on.

    Both come from ``CARNET_PUBLIC_URL``: a passkey made for ``carnet.example.lu`` works on that
    host (and its subdomains' pages if the id is theirs too), nowhere else.
    """

    id: str
    origin: str
    name: str = "Carnet"

    @classmethod
    def from_public_url(cls, public_url: str) -> RelyingParty:
        """The relying party of a Carnet served at ``public_url``."""
        parts = urlsplit(public_url)
        if parts.hostname is None:
            raise ValueError(f"{public_url!r} names no host for passkeys")
        return cls(id=parts.hostname, origin=f"{parts.scheme}://{parts.netloc}")

    @classmethod
    def of(cls, authority: TokenAuthority) -> RelyingParty:
        """The relying party of the authorization server (its issuer is the public URL)."""
        return cls.from_public_url(authority.config.issuer)


@dataclass(frozen=True)
class PasskeyAccount:
    """Whose passkeys: the account's kind and subject, and the names an authenticator shows."""

    holder: PasskeyHolder
    subject_id: uuid.UUID
    user_name: str
    display_name: str

    @property
    def user_handle(self) -> bytes:
        """The WebAuthn user handle: stable for the account, and no identifier in the clear.

        WebAuthn section 14.6.1 asks that it hold no personal information; a digest of the
        account is stable (a new passkey on the same authenticator replaces the old one rather
        than piling up) and tells nothing about the person.
        """
        return hashlib.sha256(
            f"carnet:passkey-user:{self.holder.value}:{self.subject_id}".encode()
        ).digest()


@dataclass(frozen=True)
class RegistrationCeremony:
    """What a page needs to add a passkey: the options to embed, and the signed state."""

    options_json: str
    state: str


# --- accounts ----------------------------------------------------------------------------------


def account_of(session: Session, actor: Actor) -> PasskeyAccount:
    """The account a signed-in person's passkeys belong to (their own, never a represented one)."""
    holder = _HOLDER_OF_KIND.get(actor.kind)
    if holder is PasskeyHolder.PATIENT and actor.person_id is not None:
        return patient_account(session, actor.person_id)
    if holder is PasskeyHolder.PROFESSIONAL and actor.professional_id is not None:
        return professional_account(session, actor.professional_id)
    if holder is PasskeyHolder.OPERATOR:
        name = actor.subject.partition(":")[2]
        operator = session.scalar(select(OperatorAccount).where(OperatorAccount.name == name))
        if operator is not None and operator.active:
            return PasskeyAccount(holder, operator.id, operator.name, operator.name)
    raise PasskeyRefused("Only a patient, a professional or an operator can hold passkeys.")


def patient_account(session: Session, patient_id: uuid.UUID) -> PasskeyAccount:
    """A patient's passkey account; ``PatientNotFound`` for an unknown id."""
    patient = get_patient(session, patient_id)
    name = f"{patient.given} {patient.family}"
    return PasskeyAccount(PasskeyHolder.PATIENT, patient.id, name, name)


def professional_account(session: Session, professional_id: uuid.UUID) -> PasskeyAccount:
    """A professional's passkey account; ``ProfessionalNotFound`` for an unknown id."""
    professional = get_professional(session, professional_id)
    return PasskeyAccount(
        PasskeyHolder.PROFESSIONAL,
        professional.id,
        professional.identifier_value,
        f"{professional.given} {professional.family}",
    )


def list_passkeys(session: Session, account: PasskeyAccount) -> list[PasskeyCredential]:
    """The account's passkeys, oldest first."""
    return list(
        session.scalars(
            select(PasskeyCredential)
            .where(
                PasskeyCredential.holder == account.holder,
                PasskeyCredential.subject_id == account.subject_id,
            )
            .order_by(PasskeyCredential.created_at, PasskeyCredential.id)
        )
    )


# --- registration ------------------------------------------------------------------------------


def begin_registration(
    session: Session,
    authority: TokenAuthority,
    account: PasskeyAccount,
    *,
    binding: str,
    clock: Clock,
) -> RegistrationCeremony:
    """The creation options for a new passkey of ``account``, and the state to send back.

    The account's passkeys are excluded, so an authenticator that already holds one says so
    instead of making a second. ``binding`` is a secret of the page's session (the portal's
    CSRF token): the state is refused in any other session.
    """
    rp = RelyingParty.of(authority)
    challenge = secrets.token_bytes(32)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=account.user_handle,
        user_name=account.user_name,
        user_display_name=account.display_name,
        challenge=challenge,
        timeout=CEREMONY_SECONDS * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(list_passkeys(session, account)),
    )
    now = int(clock.now().timestamp())
    state = sign(
        session,
        authority,
        {
            "iss": authority.config.issuer,
            "aud": _state_audience(authority),
            "sub": str(account.subject_id),
            "holder": account.holder.value,
            "challenge": bytes_to_base64url(challenge),
            "binding": _digest(binding),
            "jti": secrets.token_urlsafe(12),
            "iat": now,
            "exp": now + CEREMONY_SECONDS,
        },
        typ=STATE_TYPE,
        clock=clock,
    )
    return RegistrationCeremony(options_to_json(options), state)


def finish_registration(
    session: Session,
    authority: TokenAuthority,
    *,
    state: str,
    response: str,
    name: str,
    binding: str,
    clock: Clock,
    network_address: str | None = None,
) -> PasskeyCredential:
    """Verify the authenticator's answer (``response``, the credential's JSON) and keep the key.

    Checked: the state (Carnet's signature, its expiry, this session's binding), the challenge,
    the origin and relying party id, user verification, and that the credential is new.
    Attestation is not required (``none``): a passkey proves possession, not a device model.
    Raises ``PasskeyRefused``; the registration is audited on the account's trail.
    """
    try:
        claims = verify_signed(
            session,
            authority,
            state,
            typ=STATE_TYPE,
            audience=_state_audience(authority),
            clock=clock,
            essential=("sub", "jti", "holder", "challenge", "binding"),
        )
        holder = PasskeyHolder(claims["holder"])
        subject_id = uuid.UUID(str(claims["sub"]))
    except (InvalidToken, ValueError):
        raise PasskeyRefused("This passkey request has expired; start again.") from None
    if not hmac.compare_digest(str(claims["binding"]), _digest(binding)):
        raise PasskeyRefused("This passkey request was not made in this session; start again.")
    try:
        label = check_text(name.strip() or DEFAULT_NAME, field="name", limit=MAX_NAME)
    except InvalidValue as refused:
        raise PasskeyRefused(refused.message) from None
    rp = RelyingParty.of(authority)
    try:
        verified = verify_registration_response(
            credential=response,
            expected_challenge=base64url_to_bytes(str(claims["challenge"])),
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            require_user_verification=True,
        )
        transports = _transports(response)
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        raise PasskeyRefused(f"The authenticator's answer does not verify: {error}") from None
    taken = session.scalar(
        select(PasskeyCredential.id).where(
            PasskeyCredential.credential_id == verified.credential_id
        )
    )
    if taken is not None:
        raise PasskeyRefused("This passkey is already registered.")
    passkey = PasskeyCredential(
        holder=holder,
        subject_id=subject_id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=transports,
        name=label,
        created_at=clock.now(),
    )
    session.add(passkey)
    session.flush()
    trail.record(
        session,
        trail.agent_of(session, holder, subject_id, network_address),
        clock,
        step="register",
        passkey=passkey,
    )
    return passkey


def remove_passkey(
    session: Session,
    account: PasskeyAccount,
    passkey_id: uuid.UUID,
    *,
    clock: Clock,
    network_address: str | None = None,
) -> None:
    """Remove one of the account's passkeys: it signs in no more. Audited.

    Raises ``PasskeyRefused`` when the account holds no such passkey (another's is never named).
    """
    passkey = session.get(PasskeyCredential, passkey_id)
    if (
        passkey is None
        or passkey.holder is not account.holder
        or passkey.subject_id != account.subject_id
    ):
        raise PasskeyRefused("You have no such passkey.")
    trail.record(
        session,
        trail.agent_of(session, account.holder, account.subject_id, network_address),
        clock,
        step="remove",
        passkey=passkey,
    )
    session.delete(passkey)
    session.flush()


# --- signing in --------------------------------------------------------------------------------


def authentication_options(
    *, rp: RelyingParty, challenge: bytes, allowed: Sequence[PasskeyCredential] = ()
) -> str:
    """The request options (JSON) for ``navigator.credentials.get``.

    With no ``allowed`` passkeys, ``allowCredentials`` is empty: the authenticator offers the
    person's discoverable passkeys for Carnet, and no identifier is typed. With an identifier,
    pass that account's passkeys (``list_passkeys``).
    """
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=challenge,
        timeout=CEREMONY_SECONDS * 1000,
        allow_credentials=_descriptors(allowed) if allowed else None,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return options_to_json(options)


def sign_in_with_passkey(
    session: Session,
    *,
    rp: RelyingParty,
    response: str,
    challenge: bytes,
    clock: Clock,
    network_address: str | None = None,
) -> Principal:
    """Verify a passkey assertion against ``challenge`` and return whom it signs in.

    Checked: a registered passkey of an active account that is not locked, the challenge,
    origin and relying party id, user presence and verification, the signature, and the
    signature counter, which must move forward unless the authenticator keeps none (a
    counter going backwards means a cloned authenticator: refused). A failure on a known
    passkey counts towards the account's lock, as a wrong password does. Every outcome is
    audited. Raises ``SignInRefused``, the same for every cause; the failure is recorded
    before it is raised, so the caller commits it.
    """
    now = clock.now()
    try:
        credential = parse_authentication_credential_json(response)
    except (WebAuthnException, ValueError, KeyError, TypeError):
        trail.refuse_unknown(session, clock, network_address, "unreadable passkey answer")
    passkey = session.scalar(
        select(PasskeyCredential).where(PasskeyCredential.credential_id == credential.raw_id)
    )
    if passkey is None:
        trail.refuse_unknown(session, clock, network_address, "unknown passkey")
    account = _account_row(session, passkey.holder, passkey.subject_id)
    agent = trail.agent_of(session, passkey.holder, passkey.subject_id, network_address)
    if account is None:
        trail.refuse(session, agent, clock, passkey, "no account")
    if account.locked_until is not None and account.locked_until > now:
        trail.refuse(session, agent, clock, passkey, "account locked")
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            # Compared below, once the signature is known good: a refused clone is told apart
            # from a forged answer in the audit trail.
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as error:
        trail.failed(
            session,
            account,
            agent,
            clock=clock,
            passkey=passkey,
            reason=f"assertion refused: {error}",
            now=now,
        )
    if (verified.new_sign_count or passkey.sign_count) and (
        verified.new_sign_count <= passkey.sign_count
    ):
        # WebAuthn section 6.1.1: a counter that does not move forward signals a cloned
        # authenticator. The passkey stays, for the person to see and remove.
        trail.failed(
            session,
            account,
            agent,
            clock=clock,
            passkey=passkey,
            reason="signature counter went backwards",
            now=now,
        )
    try:
        principal = principal_for(
            session,
            _kind_of(account),
            passkey.subject_id,
            assurance=ASSURANCE[passkey.holder],
            methods=(
                SYNCED
                if verified.credential_device_type is CredentialDeviceType.MULTI_DEVICE
                else DEVICE_BOUND
            ),
            auth_time=now,
        )
    except InvalidGrant:
        trail.refuse(session, agent, clock, passkey, "account no longer active")
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = now
    # Resets the failure count, as a good password does (and raises nothing when ok).
    record_attempt(account, ok=True, now=now)
    trail.record(
        session,
        trail.principal_agent(principal, network_address),
        clock,
        step="sign-in",
        passkey=passkey,
        reason=f"acr {principal.assurance.acr}",
    )
    return principal


# --- internals ---------------------------------------------------------------------------------


def _state_audience(authority: TokenAuthority) -> str:
    return f"{authority.config.issuer}/passkeys"


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _descriptors(passkeys: Sequence[PasskeyCredential]) -> list[PublicKeyCredentialDescriptor]:
    known = {transport.value for transport in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=passkey.credential_id,
            transports=[AuthenticatorTransport(t) for t in passkey.transports if t in known],
        )
        for passkey in passkeys
    ]


def _transports(response: str) -> list[str]:
    """The transports the browser reported for a new credential: hints for later sign-ins."""
    credential = parse_registration_credential_json(response)
    return [transport.value for transport in credential.response.transports or []][:8]


def _account_row(session: Session, holder: PasskeyHolder, subject_id: uuid.UUID) -> Account | None:
    if holder is PasskeyHolder.PATIENT:
        return session.get(PatientAccount, subject_id)
    if holder is PasskeyHolder.PROFESSIONAL:
        return session.get(ProfessionalAccount, subject_id)
    operator = session.get(OperatorAccount, subject_id)
    return operator if operator is not None and operator.active else None


def _kind_of(account: Account) -> ActorKind:
    if isinstance(account, OperatorAccount):
        return account.kind
    if isinstance(account, PatientAccount):
        return ActorKind.PATIENT
    return ActorKind.PROFESSIONAL
