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
    """A certification authority whose professional cards Carnet trusts (the demo CA)."""

    __tablename__ = "card_authorities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    certificate_pem: Mapped[str] = mapped_column(Text)
    # None for an authority Carnet trusts but does not run (a national card CA).
    sealed_private_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


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
