"""Authentication tables: signing keys, OAuth clients, accounts, codes, refresh tokens.

Secrets are never stored in the clear: passwords and PINs as scrypt hashes, TOTP secrets and
private keys sealed under the master key, authorization codes and refresh tokens as SHA-256
digests (they are high-entropy random strings, so a plain digest suffices to make a stolen table
useless).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from carnet.access.actors import ActorKind
from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class ClientKind(enum.StrEnum):
    """How a client authenticates and which grants it may use."""

    # A portal, mobile or SMART app: authorization code with PKCE, no client secret.
    PUBLIC = "public"
    # A feeding system: client credentials, authenticated with private_key_jwt (RFC 7523).
    BACKEND = "backend"


class SigningKey(Base):
    """A key that signs Carnet's tokens (ES256).

    The newest key that is not retired signs; a retired key stays published in the JWKS, and
    accepted, until ``expires_at``, when the last token it signed has expired.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    algorithm: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    retired_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CardAuthority(Base):
    """A certification authority whose professional cards Carnet trusts.

    Registered by ``carnet cards trust`` (a national card CA), or by the demo for its own.
    """

    __tablename__ = "card_authorities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    certificate_pem: Mapped[str] = mapped_column(Text)
    # None for an authority Carnet trusts but does not run (a national card CA).
    sealed_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The revocation lists of the authority and of its intermediates, PEM blocks one after
    # another, replaced whole by ``carnet cards crl``. Without them its cards are refused.
    crl_pem: Mapped[str | None] = mapped_column(Text)
    crl_updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class OAuthClient(Base):
    """An application or feeding system allowed to ask for tokens."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ClientKind] = mapped_column(checked_enum(ClientKind, "client_kind"))
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    allowed_scopes: Mapped[str] = mapped_column(Text)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    jwks_url: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # One of Carnet's own apps (the portals): trusted as Carnet itself, so no consent screen.
    first_party: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class _Credentials:
    """What every demo-IdP account holds, and its sign-in failure record."""

    password_hash: Mapped[str] = mapped_column(String(200))
    totp_secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # RFC 6238 section 5.2: a one-time code is accepted once; the last accepted time step
    # refuses a replay within the same window.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # Kept in the database, not in a worker's memory, so the lock holds across workers.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PatientAccount(_Credentials, Base):
    """A patient's sign-in on the demo identity provider (national identifier + password + TOTP)."""

    __tablename__ = "patient_accounts"

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )


class ProfessionalAccount(_Credentials, Base):
    """A professional's sign-in: password (+ TOTP), or their professional card and its PIN."""

    __tablename__ = "professional_accounts"

    professional_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("professionals.id", ondelete="CASCADE"), primary_key=True
    )
    card_certificate_pem: Mapped[str | None] = mapped_column(Text)
    # The emulated card's private key: on a real card it never leaves the chip.
    card_key_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    card_pin_hash: Mapped[str | None] = mapped_column(String(200))


class OperatorAccount(_Credentials, Base):
    """An agency operator's or security officer's sign-in: password and one-time code.

    They see indicators and run enrolments; never a patient's clinical content.
    """

    __tablename__ = "operator_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # The name they sign in with, and how the audit trail names them.
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[ActorKind] = mapped_column(checked_enum(ActorKind, "operator_kind"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class _IssuedTo:
    """Whom a code or refresh token speaks for, and how they signed in."""

    client_id: Mapped[str] = mapped_column(ForeignKey("oauth_clients.client_id"))
    scope: Mapped[str] = mapped_column(Text)
    subject_kind: Mapped[ActorKind] = mapped_column(checked_enum(ActorKind, "actor_kind"))
    subject_id: Mapped[uuid.UUID] = mapped_column()
    assurance: Mapped[int] = mapped_column(Integer)
    amr: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The access token issued from this row, revoked with it if the row turns out stolen.
    access_token_jti: Mapped[str | None] = mapped_column(String(64))
    access_token_expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The SMART launch context a patient chose: a person they represent (None: themself).
    launch_patient_id: Mapped[uuid.UUID | None] = mapped_column()
    # A staff member acting for the professional ``subject_id`` (France's CPE card): the
    # staff member's professional id, named in the token's ``act`` claim and the audit trail.
    staff_id: Mapped[uuid.UUID | None] = mapped_column()


class AuthorizationCode(_IssuedTo, Base):
    """A single-use authorization code (60 s), bound to its client, redirect URI and PKCE."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    code_challenge: Mapped[str] = mapped_column(String(128))
    nonce: Mapped[str | None] = mapped_column(String(255))
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The refresh token family started by this code: revoked if the code is replayed.
    family_id: Mapped[uuid.UUID | None] = mapped_column()

    __table_args__ = (Index(None, "expires_at"),)


class RefreshToken(_IssuedTo, Base):
    """A refresh token; each use rotates it, and reuse of a rotated one revokes its family."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column()
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "family_id"), Index(None, "expires_at"))


class RevokedToken(Base):
    """A revoked access token (by ``jti``), or a used client assertion (replay protection).

    Looked up on every authenticated request, by primary key; a row is useless once the token
    has expired, so ``expires_at`` is indexed for the purge.
    """

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "expires_at"),)


# --- passkeys (WebAuthn) -----------------------------------------------------------------------


class PasskeyHolder(enum.StrEnum):
    """Whose account a passkey signs in to: the three kinds of account Carnet keeps.

    An operator's passkey is the operator account's, whether it is an operator's or a security
    officer's: the account, not the passkey, says which.
    """

    PATIENT = "patient"
    PROFESSIONAL = "professional"
    OPERATOR = "operator"


class PasskeyCredential(Base):
    """A passkey: a WebAuthn public key credential registered to an account.

    Only the public key is kept; the private key never leaves the person's authenticator. Not
    keyed by patient: ``credential_id`` must be unique across every account (the sign-in looks
    the passkey up by it before knowing who signs in), which a table partitioned by patient
    could not enforce; it holds no health data.
    """

    __tablename__ = "passkey_credentials"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    holder: Mapped[PasskeyHolder] = mapped_column(checked_enum(PasskeyHolder, "passkey_holder"))
    # The patient's, professional's or operator account's id.
    subject_id: Mapped[uuid.UUID] = mapped_column()
    # WebAuthn Level 3, section 4: a credential id is at most 1,023 bytes.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    # The COSE_Key (RFC 9052) as the authenticator gave it.
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    # The authenticator's signature counter (a uint32): one that goes backwards is a clone.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The name the person gave it ("phone", "laptop"), to tell their passkeys apart.
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "holder", "subject_id"),)


class AppApproval(Base):
    """A person's approval of a third-party app (consent screen): which access, since when.

    Keyed by the person as the tokens are (``subject_kind``, ``subject_id``), not by dossier:
    it records what a user allowed an app to ask for, like a refresh token it holds no health
    data, and professionals approve apps too. Deleted when revoked, with the app's tokens.
    """

    __tablename__ = "app_approvals"

    subject_kind: Mapped[ActorKind] = mapped_column(
        checked_enum(ActorKind, "approval_subject_kind"), primary_key=True
    )
    subject_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(Text)
    approved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ProfessionalInvitation(Base):
    """A one-time invitation the agency gives a professional to set up their sign-in.

    ``carnet professionals invite`` prints a link carrying a random code (256 bits, so a plain
    SHA-256 digest suffices, as for refresh tokens); the code is spent when the account is
    created (or its credentials reset), expires, and issuing a new one revokes the earlier ones.
    """

    __tablename__ = "professional_invitations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    professional_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("professionals.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # As the audit trail names the agent who issued it: "operator:<name>" or "cli".
    issued_by: Mapped[str] = mapped_column(String(200))


# --- staff acting for a professional (cards slice) --------------------------------------------


class StaffDelegation(Base):
    """A professional's allowance for a staff member (a secretary) to act for them.

    France's CPE card ("carte de personnel d'établissement"): staff act under the responsibility
    of a named professional, with that professional's access and never more, and are audited as
    themselves. Revoked by setting ``revoked_at``: the row stays, as the audit trail refers to it.
    Not keyed by patient: it is about two directory entries, and holds no health data.
    """

    __tablename__ = "staff_delegations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    professional_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("professionals.id"))
    # Who allowed it: ``operator:<name>`` from the CLI, or ``Practitioner/<id>`` from the portal.
    granted_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index(None, "staff_id", "professional_id"),
        Index(None, "professional_id"),
    )
