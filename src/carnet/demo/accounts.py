"""The demo's accounts: its documented password, PIN and TOTP seed, its card authority and reader.

Production code never imports this package (an import-linter contract says so): a deployment
holds no demo secret. Only the ways in that switch the demo on reach it: ``carnet demo`` seeds
the accounts, and the application installs ``read_demo_card`` as its card reader when
``CARNET_DEMO_IDP`` is on. Accounts are built the way ``carnet.auth.accounts`` builds them (its
sealing and lockout helpers), so a demo account signs in exactly as a real one does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.audit.service import Agent
from carnet.auth import accounts, card, card_authorities
from carnet.auth.errors import SignInRefused, UnknownSubject
from carnet.auth.models import CardAuthority, OperatorAccount, PatientAccount, ProfessionalAccount
from carnet.clock import Clock
from carnet.directory.models import Professional
from carnet.directory.service import get_professional
from carnet.patients.models import Patient
from carnet.storage.crypto import open_sealed, seal
from carnet.storage.ports import KeyWrapper

# The demo identity provider's documented credentials (README, "Authentication").
DEMO_PASSWORD = "carnet-demo"  # noqa: S105 — the documented demo password, public on purpose
DEMO_PIN = "1234"
DEMO_TOTP_SEED = b"carnet-demo-totp"
DEMO_AUTHORITY_NAME = "Carnet demo professional card authority"
# The demo agency operator's account name (password ``DEMO_PASSWORD``, TOTP ``demo_totp_secret``).
DEMO_OPERATOR = "agency"


def issue_demo_card(
    session: Session,
    *,
    professional_id: uuid.UUID,
    pin: str,
    key_wrapper: KeyWrapper,
    clock: Clock,
    pin_hash: str | None = None,
) -> x509.Certificate:
    """Issue the professional an emulated card from the demo authority; returns its certificate.

    The card's key is sealed in the account (it stands for the chip); the PIN is hashed.
    Raises ``UnknownSubject`` if the professional has no account.
    """
    account = session.get(ProfessionalAccount, professional_id)
    if account is None:
        raise UnknownSubject("This professional has no account to attach a card to.")
    professional = get_professional(session, professional_id)
    authority, authority_key = demo_card_authority(session, key_wrapper=key_wrapper, clock=clock)
    certificate, key = card.issue_card(
        authority,
        authority_key,
        card.CardHolder(professional.identifier_system, professional.identifier_value),
        name=f"{professional.given} {professional.family}",
        now=clock.now(),
    )
    account.card_certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    account.card_key_sealed = seal(
        card.private_key_pem(key), aad=_card_aad(professional_id), wrapper=key_wrapper
    )
    account.card_pin_hash = pin_hash or accounts.hash_secret(pin)
    account.updated_at = clock.now()
    session.flush()
    return certificate


def demo_card_authority(
    session: Session, *, key_wrapper: KeyWrapper, clock: Clock
) -> tuple[x509.Certificate, Any]:
    """The demo card authority's certificate and private key, created on first use."""
    row = session.scalar(
        select(CardAuthority)
        .where(CardAuthority.name == DEMO_AUTHORITY_NAME)
        .order_by(CardAuthority.created_at.desc())
        .limit(1)
    )
    if row is None or row.sealed_private_key is None:
        certificate, key = card.issue_authority(DEMO_AUTHORITY_NAME, clock.now())
        # Registered as any national authority is (``carnet cards trust``), with its CRL.
        row = card_authorities.trust(
            session,
            certificate_pem=certificate.public_bytes(serialization.Encoding.PEM),
            name=DEMO_AUTHORITY_NAME,
            crl=_demo_crl(certificate, key, clock),
            agent=_DEMO_AGENT,
            clock=clock,
        )
        row.sealed_private_key = seal(
            card.private_key_pem(key), aad=_authority_aad(row.id), wrapper=key_wrapper
        )
        session.flush()
        return certificate, key
    pem = open_sealed(row.sealed_private_key, aad=_authority_aad(row.id), wrapper=key_wrapper)
    certificate = x509.load_pem_x509_certificate(row.certificate_pem.encode())
    key = card.load_private_key(pem)
    if row.crl_pem is None:  # registered before CRLs were checked (revision 0013)
        card_authorities.update_crl(
            session,
            name=row.name,
            crl=_demo_crl(certificate, key, clock),
            agent=_DEMO_AGENT,
            clock=clock,
        )
    return certificate, key


def _card_aad(professional_id: uuid.UUID) -> bytes:
    return f"carnet-card:{professional_id}".encode()


def _authority_aad(authority_id: uuid.UUID) -> bytes:
    return f"carnet-card-authority:{authority_id}".encode()


_DEMO_AGENT = Agent(kind="job", subject="job:demo-accounts")


def _demo_crl(certificate: x509.Certificate, key: Any, clock: Clock) -> bytes:
    """The demo authority's CRL: nothing revoked, current as long as the authority is."""
    crl = card.issue_crl(
        certificate, key, now=clock.now(), next_update=certificate.not_valid_after_utc
    )
    return crl.public_bytes(serialization.Encoding.PEM)


def provision_demo_accounts(session: Session, *, key_wrapper: KeyWrapper, clock: Clock) -> int:
    """Give every patient and professional without an account the demo credentials.

    Password ``DEMO_PASSWORD``; a TOTP secret derived from ``DEMO_TOTP_SEED`` and the national
    identifier (``demo_totp_secret``), so it is the same after a reload; every professional
    also gets a demo card with PIN ``DEMO_PIN``. The agency gets its operator ``DEMO_OPERATOR``
    (TOTP secret ``demo_totp_secret(DEMO_OPERATOR)``). Idempotent; returns the accounts created.
    """
    # One hash for every demo account: they share a documented password anyway, and hashing
    # hundreds of times would make the demo load crawl.
    password_hash = accounts.hash_secret(DEMO_PASSWORD)
    pin_hash = accounts.hash_secret(DEMO_PIN)
    created = 0
    lonely_patients = select(Patient).where(  # patient-data: the demo's fictional patients
        ~exists().where(PatientAccount.patient_id == Patient.id)
    )
    for patient in session.scalars(lonely_patients).all():
        first = min((i.system, i.value) for i in patient.identifiers)
        session.add(
            PatientAccount(
                patient_id=patient.id,
                **accounts.credential_columns(
                    ActorKind.PATIENT,
                    patient.id,
                    password_hash=password_hash,
                    totp_secret=demo_totp_secret(first[1]),
                    key_wrapper=key_wrapper,
                    clock=clock,
                ),
            )
        )
        created += 1
    lonely_professionals = select(Professional).where(
        ~exists().where(ProfessionalAccount.professional_id == Professional.id)
    )
    for professional in session.scalars(lonely_professionals).all():
        session.add(
            ProfessionalAccount(
                professional_id=professional.id,
                **accounts.credential_columns(
                    ActorKind.PROFESSIONAL,
                    professional.id,
                    password_hash=password_hash,
                    totp_secret=demo_totp_secret(professional.identifier_value),
                    key_wrapper=key_wrapper,
                    clock=clock,
                ),
            )
        )
        created += 1
    if (
        session.scalar(select(OperatorAccount.id).where(OperatorAccount.name == DEMO_OPERATOR))
        is None
    ):
        operator_id = uuid.uuid4()
        session.add(
            OperatorAccount(
                id=operator_id,
                name=DEMO_OPERATOR,
                kind=ActorKind.OPERATOR,
                active=True,
                **accounts.credential_columns(
                    ActorKind.OPERATOR,
                    operator_id,
                    password_hash=password_hash,
                    totp_secret=demo_totp_secret(DEMO_OPERATOR),
                    key_wrapper=key_wrapper,
                    clock=clock,
                ),
            )
        )
        created += 1
    session.flush()
    cardless = select(ProfessionalAccount.professional_id).where(
        ProfessionalAccount.card_certificate_pem.is_(None)
    )
    for professional_id in session.scalars(cardless).all():
        issue_demo_card(
            session,
            professional_id=professional_id,
            pin=DEMO_PIN,
            key_wrapper=key_wrapper,
            clock=clock,
            pin_hash=pin_hash,
        )
    return created


def demo_totp_secret(identifier_value: str) -> str:
    """The demo TOTP secret (base32) of the account of this national identifier (or name)."""
    digest = hmac.new(DEMO_TOTP_SEED, identifier_value.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:20]).decode("ascii")


def read_demo_card(
    session: Session,
    *,
    identifier: str,
    pin: str,
    challenge: bytes,
    key_wrapper: KeyWrapper,
    clock: Clock,
) -> card.CardResponse:
    """The emulated card reader: check the PIN, then have the card sign ``challenge``.

    A wrong PIN counts as a failed sign-in (``SignInRefused``, recorded before raising).
    """
    now = clock.now()
    found = accounts.find_account(session, ActorKind.PROFESSIONAL, identifier)
    account = found[0] if found else None
    if not isinstance(account, ProfessionalAccount):
        accounts.verify_secret(pin, accounts.cached_decoy_hash())
        raise SignInRefused()
    pin_ok = accounts.verify_secret(pin, account.card_pin_hash or accounts.cached_decoy_hash())
    if account.card_key_sealed is None or account.card_certificate_pem is None:
        raise SignInRefused()
    accounts.refuse_if_locked(account, now)
    accounts.record_attempt(account, ok=pin_ok, now=now)
    key = card.load_private_key(
        open_sealed(
            account.card_key_sealed,
            aad=_card_aad(account.professional_id),
            wrapper=key_wrapper,
        )
    )
    return card.sign_challenge(account.card_certificate_pem.encode(), key, challenge)
