"""Onboarding: a person's first sign-in set up from a letter or an invitation, and recovery.

A patient proves who they are with what the insurer's invitation letter gave them: national
identifier, birth date and the letter's one-time code (``lifecycle.service``: single-use,
``MAX_CODE_ATTEMPTS``, expiry). A professional proves it with the agency's one-time invitation
(``carnet professionals invite``). Either then chooses a password (``passwords``) and a second
factor, a passkey or an authenticator app (TOTP, confirmed by a first code), and
``enrol_credentials`` creates the account, spends the code and, for a patient, opens the
dossier: one transaction, audited, so nothing is half-done.

Recovery is the same path: a person who already has an account and comes back with a *new*
letter (or invitation) gets their credentials replaced after the same checks; their old
passkeys and refresh tokens are revoked. Never by e-mail alone: a letter is posted to the
address the insurer holds, an invitation is handed out by the agency.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Agent
from carnet.auth import accounts, sign_in
from carnet.auth.errors import InvalidRequest
from carnet.auth.models import (
    PasskeyCredential,
    PasskeyHolder,
    PatientAccount,
    ProfessionalAccount,
    ProfessionalInvitation,
    RefreshToken,
)
from carnet.auth.passwords import check_new_password
from carnet.auth.tokens import Principal
from carnet.clock import Clock
from carnet.directory.errors import ProfessionalNotFound
from carnet.directory.service import get_professional
from carnet.errors import InvalidInput
from carnet.lifecycle import service as lifecycle
from carnet.lifecycle.errors import ActivationRefused
from carnet.patients import identifiers
from carnet.patients.errors import InvalidIdentifier
from carnet.patients.service import get_patient
from carnet.storage.ports import KeyWrapper

INVITATION_DAYS = 14
# Passkey or authenticator app after a letter: strongly signed in, as with password and TOTP.
ENROLLED_METHODS = {
    "totp": ("pwd", "otp", "mfa"),
    "passkey": ("pwd", "hwk", "user", "mfa"),
}


class InvitationRefused(InvalidInput):
    """The invitation link is unknown, spent, revoked or expired (all look the same)."""

    def __init__(self) -> None:
        super().__init__(
            "This invitation is not valid: it was used, replaced or has expired. Ask the agency "
            "for a new one.",
            field="code",
        )


class OtpRefused(InvalidInput):
    """The first code from the authenticator app does not match the secret just shown."""

    def __init__(self) -> None:
        super().__init__(
            "This code does not match: check the app shows Carnet's code, and type the current "
            "one.",
            field="otp",
        )


class PasswordsDiffer(InvalidInput):
    """The password and its confirmation differ."""

    def __init__(self) -> None:
        super().__init__("The two passwords differ: type the same one twice.", field="password")


@dataclass(frozen=True)
class Newcomer:
    """Who proved themselves with a letter or an invitation, and with which code.

    ``code_id`` is the letter's activation code or the invitation, spent by
    ``enrol_credentials``. ``identifiers`` are theirs, which a password may not be.
    """

    kind: ActorKind
    subject_id: uuid.UUID
    code_id: uuid.UUID
    identifiers: tuple[str, ...]
    has_account: bool


# --- proving who one is -----------------------------------------------------------------------


def check_letter(  # patient-data: the sign-in, before any actor
    session: Session, *, identifier: str, birth_date: dt.date, code: str, clock: Clock
) -> Newcomer:
    """The patient the letter's code was issued to, if identifier, birth date and code agree.

    The code is checked, not spent. Raises ``ActivationRefused`` for any mismatch (a wrong
    attempt counts against the letter and is audited before raising: the caller commits it).
    """
    cleaned = identifier.strip().replace(" ", "")
    systems = []
    for system in (identifiers.LU_MATRICULE, identifiers.FR_NIR):
        try:
            identifiers.validate(system, cleaned)
        except InvalidIdentifier:
            continue
        systems.append(system)
    if not systems:
        raise ActivationRefused()
    patient, code_id = lifecycle.check_activation_code(
        session,
        system=systems[0],
        identifier=cleaned,
        code=code,
        birth_date=birth_date,
        clock=clock,
    )
    return Newcomer(
        kind=ActorKind.PATIENT,
        subject_id=patient.id,
        code_id=code_id,
        identifiers=tuple(i.value for i in patient.identifiers),
        has_account=session.get(PatientAccount, patient.id) is not None,
    )


def invite_professional(
    session: Session,
    *,
    identifier: str,
    issued_by: str,
    clock: Clock,
    lifetime: dt.timedelta = dt.timedelta(days=INVITATION_DAYS),
) -> tuple[ProfessionalInvitation, str]:
    """A one-time invitation for the directory professional ``identifier``; its code in clear.

    Earlier invitations of the same professional are revoked. Raises ``ProfessionalNotFound``
    (no such active professional). Audited as the agency's act.
    """
    found = accounts.find_professional_by_identifier(session, identifier)
    if found is None or not found.active:
        raise ProfessionalNotFound()
    now = clock.now()
    session.execute(
        update(ProfessionalInvitation)
        .where(
            ProfessionalInvitation.professional_id == found.id,
            ProfessionalInvitation.used_at.is_(None),
            ProfessionalInvitation.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    code = secrets.token_urlsafe(32)
    row = ProfessionalInvitation(
        id=uuid.uuid4(),
        professional_id=found.id,
        code_hash=_digest(code),
        issued_at=now,
        expires_at=now + lifetime,
        issued_by=issued_by,
    )
    session.add(row)
    session.flush()
    audit_trail.record(
        session,
        agent=Agent(kind=ActorKind.OPERATOR.value, subject=issued_by),
        action=AuditAction.SIGN_IN,
        clock=clock,
        entity_ids=[row.id],
        details={"invitation": "issued", "professional": str(found.id)},
    )
    return row, code


def check_invitation(session: Session, *, code: str, clock: Clock) -> Newcomer:
    """The professional a live invitation ``code`` was issued to; nothing spent.

    Raises ``InvitationRefused`` for an unknown, spent, revoked or expired code.
    """
    row = _live_invitation(session, code=code, now=clock.now())
    professional = get_professional(session, row.professional_id)
    if not professional.active:
        raise InvitationRefused()
    return Newcomer(
        kind=ActorKind.PROFESSIONAL,
        subject_id=professional.id,
        code_id=row.id,
        identifiers=(professional.identifier_value,),
        has_account=session.get(ProfessionalAccount, professional.id) is not None,
    )


def resume(  # patient-data: the sign-in, before any actor
    session: Session, *, kind: ActorKind, subject_id: uuid.UUID, code_id: uuid.UUID
) -> Newcomer:
    """The newcomer a signed onboarding state names, as they stand now (account or not).

    The code itself is checked again when it is spent (``enrol_credentials``).
    """
    if kind is ActorKind.PATIENT:
        patient = get_patient(session, subject_id)
        found = tuple(i.value for i in patient.identifiers)
        has_account = session.get(PatientAccount, subject_id) is not None
    else:
        found = (get_professional(session, subject_id).identifier_value,)
        has_account = session.get(ProfessionalAccount, subject_id) is not None
    return Newcomer(kind, subject_id, code_id, found, has_account)


def new_totp_secret() -> str:
    """A fresh TOTP secret (base32, 160 bits) to show before the account exists."""
    return pyotp.random_base32(32)


def check_first_code(totp_secret: str, otp: str, *, clock: Clock) -> None:
    """``OtpRefused`` unless ``otp`` is the authenticator's code now (one step either side)."""
    code = otp.strip().replace(" ", "")
    if not code or not pyotp.TOTP(totp_secret).verify(code, for_time=clock.now(), valid_window=1):
        raise OtpRefused()


# --- creating the account (or replacing its credentials) ------------------------------------


def enrol_credentials(
    session: Session,
    newcomer: Newcomer,
    *,
    password: str,
    totp_secret: str,
    second_factor: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    network_address: str | None = None,
) -> Principal:
    """Create the newcomer's account, spend their code, open a patient's dossier; who signs in.

    ``second_factor`` says what the person just set up: ``"totp"`` (``totp_secret``, confirmed
    by ``check_first_code`` before) or ``"passkey"`` (registered by the way in in this same
    transaction; ``totp_secret`` is then one nobody was shown). An existing account's password
    and TOTP are replaced, its passkeys and refresh tokens revoked (recovery). Raises
    ``PasswordRefused``, ``ActivationRefused`` / ``InvitationRefused`` if the code was spent or
    revoked meanwhile, ``InvalidRequest`` for an unknown second factor. Audited.
    """
    if second_factor not in ENROLLED_METHODS:
        raise InvalidRequest("Choose a passkey or an authenticator app.", field="second_factor")
    check_new_password(password, identifiers=newcomer.identifiers)
    now = clock.now()
    if newcomer.kind is ActorKind.PATIENT:
        lifecycle.spend_activation_code(session, newcomer.subject_id, newcomer.code_id, clock=clock)
    else:
        _spend_invitation(session, newcomer.code_id, now=now)
    recovered = _reset_credentials(
        session,
        newcomer,
        password=password,
        totp_secret=totp_secret,
        key_wrapper=key_wrapper,
        clock=clock,
    )
    if not recovered:
        create = (
            accounts.create_patient_account
            if newcomer.kind is ActorKind.PATIENT
            else accounts.create_professional_account
        )
        subject = (
            {"patient_id": newcomer.subject_id}
            if newcomer.kind is ActorKind.PATIENT
            else {"professional_id": newcomer.subject_id}
        )
        create(
            session,
            **subject,
            password=password,
            key_wrapper=key_wrapper,
            clock=clock,
            totp_secret=totp_secret,
        )
    methods = ENROLLED_METHODS[second_factor]
    principal = sign_in.principal_for(
        session,
        newcomer.kind,
        newcomer.subject_id,
        assurance=Assurance.SUBSTANTIAL,
        methods=methods,
        auth_time=now,
    )
    audit_trail.record(
        session,
        agent=Agent(
            kind=principal.kind.value,
            subject=principal.subject,
            professional_id=principal.professional_id,
            organisation_id=principal.organisation_id,
            profession=principal.profession,
            network_address=network_address,
        ),
        action=AuditAction.SIGN_IN,
        clock=clock,
        patient_id=newcomer.subject_id if newcomer.kind is ActorKind.PATIENT else None,
        entity_ids=[newcomer.code_id],
        reason=f"acr {principal.assurance.acr}",
        details={
            "method": "letter" if newcomer.kind is ActorKind.PATIENT else "invitation",
            "onboarding": "credentials reset" if recovered else "account created",
            "second_factor": second_factor,
        },
    )
    return principal


def _reset_credentials(
    session: Session,
    newcomer: Newcomer,
    *,
    password: str,
    totp_secret: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
) -> bool:
    """Replace an existing account's secrets and revoke what the old ones let in; False if none.

    Old passkeys are deleted and live refresh tokens revoked: whoever held the lost password,
    authenticator or passkey is out. Access tokens already issued expire within minutes.
    """
    account: PatientAccount | ProfessionalAccount | None
    if newcomer.kind is ActorKind.PATIENT:
        account, holder = session.get(PatientAccount, newcomer.subject_id), PasskeyHolder.PATIENT
    else:
        account = session.get(ProfessionalAccount, newcomer.subject_id)
        holder = PasskeyHolder.PROFESSIONAL
    if account is None:
        return False
    now = clock.now()
    fresh = accounts.credential_columns(
        newcomer.kind,
        newcomer.subject_id,
        password_hash=accounts.hash_secret(password),
        totp_secret=totp_secret,
        key_wrapper=key_wrapper,
        clock=clock,
    )
    account.password_hash = fresh["password_hash"]
    account.totp_secret_sealed = fresh["totp_secret_sealed"]
    account.totp_last_step = None
    account.failed_sign_ins = 0
    account.locked_until = None
    account.updated_at = now
    session.execute(
        delete(PasskeyCredential)
        .where(
            PasskeyCredential.holder == holder, PasskeyCredential.subject_id == newcomer.subject_id
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.subject_kind == newcomer.kind,
            RefreshToken.subject_id == newcomer.subject_id,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return True


def _spend_invitation(session: Session, invitation_id: uuid.UUID, *, now: dt.datetime) -> None:
    row = session.scalar(
        select(ProfessionalInvitation)
        .where(ProfessionalInvitation.id == invitation_id)
        .with_for_update()
    )
    if row is None or not _is_live(row, now):
        raise InvitationRefused()
    row.used_at = now
    session.flush()


def _live_invitation(session: Session, *, code: str, now: dt.datetime) -> ProfessionalInvitation:
    row = session.scalar(
        select(ProfessionalInvitation).where(ProfessionalInvitation.code_hash == _digest(code))
    )
    if row is None or not _is_live(row, now):
        raise InvitationRefused()
    return row


def _is_live(row: ProfessionalInvitation, now: dt.datetime) -> bool:
    return row.used_at is None and row.revoked_at is None and row.expires_at > now


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()
