"""The card authorities Carnet trusts, and their revocation lists.

A deployment trusts the national card authority (France's IGC-Santé, Luxembourg's LuxTrust
professional CA…) by registering its certificate with ``carnet cards trust``; the demo registers
its own authority through the same functions. Each authority carries the CRLs of its hierarchy,
replaced whole when the operator fetches fresh ones (``carnet cards crl``): card sign-in fails
closed on an authority without a current CRL, so keeping them fresh is part of running Carnet.

Changes are audited on the operator's own chain, as other agency actions are.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Agent
from carnet.auth import card
from carnet.auth.errors import InvalidCardAuthority, UnknownSubject
from carnet.auth.models import CardAuthority
from carnet.clock import Clock


@dataclass(frozen=True)
class AuthoritySummary:
    """What ``carnet cards list`` shows of a trusted authority."""

    name: str
    subject: str
    fingerprint: str
    not_after: dt.datetime
    crl_next_update: dt.datetime | None
    crl_count: int


def trust(
    session: Session,
    *,
    certificate_pem: bytes,
    name: str | None = None,
    crl: bytes | None = None,
    agent: Agent,
    clock: Clock,
) -> CardAuthority:
    """Register a card authority's certificate (and its CRLs); returns the new row.

    The certificate must be a CA certificate allowed to sign certificates, valid now, and not
    already registered; ``name`` defaults to its subject's common name. Raises
    ``InvalidCardAuthority`` otherwise.
    """
    now = clock.now()
    certificate = _authority_certificate(certificate_pem, now)
    name = (name or _common_name(certificate)).strip()
    if not name or len(name) > 200:
        raise InvalidCardAuthority("Give the authority a name of 1 to 200 characters.")
    for row in session.scalars(select(CardAuthority)):
        if row.name == name:
            raise InvalidCardAuthority(f"An authority named {name!r} is already trusted.")
        if _certificate_of(row) == certificate:
            raise InvalidCardAuthority(f"This certificate is already trusted as {row.name!r}.")
    authority = CardAuthority(
        name=name,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
        created_at=now,
    )
    if crl is not None:
        _set_crls(authority, certificate, crl, now)
    session.add(authority)
    session.flush()
    _audit(
        session, agent, AuditAction.GRANT, authority, reason="card authority trusted", clock=clock
    )
    return authority


def update_crl(
    session: Session, *, name: str, crl: bytes, agent: Agent, clock: Clock
) -> CardAuthority:
    """Replace the CRLs registered for the authority ``name``.

    Raises ``UnknownSubject`` for an unknown authority, ``InvalidCardAuthority`` for an
    unreadable, expired or foreign CRL.
    """
    authority = _named(session, name)
    _set_crls(authority, _certificate_of(authority), crl, clock.now())
    session.flush()
    _audit(
        session,
        agent,
        AuditAction.GRANT,
        authority,
        reason="card revocation list updated",
        clock=clock,
    )
    return authority


def distrust(session: Session, *, name: str, agent: Agent, clock: Clock) -> None:
    """Stop trusting the authority ``name``: its cards are refused from now on."""
    authority = _named(session, name)
    _audit(
        session,
        agent,
        AuditAction.REVOKE,
        authority,
        reason="card authority distrusted",
        clock=clock,
    )
    session.delete(authority)
    session.flush()


def trusted(session: Session) -> list[card.TrustedAuthority]:
    """Every trusted authority with its CRLs, as card verification takes them."""
    return [
        card.TrustedAuthority(
            name=row.name,
            certificate=_certificate_of(row),
            crls=card.load_crls(row.crl_pem.encode()) if row.crl_pem else (),
        )
        for row in session.scalars(select(CardAuthority).order_by(CardAuthority.created_at))
    ]


def any_trusted(session: Session) -> bool:
    """Whether card sign-in can succeed at all (the sign-in page offers it only then)."""
    return session.scalar(select(CardAuthority.id).limit(1)) is not None


def summaries(session: Session) -> list[AuthoritySummary]:
    """The trusted authorities, oldest first, for ``carnet cards list``."""
    listed = []
    for authority in trusted(session):
        updates = [crl.next_update_utc for crl in authority.crls if crl.next_update_utc]
        listed.append(
            AuthoritySummary(
                name=authority.name,
                subject=authority.certificate.subject.rfc4514_string(),
                fingerprint=_fingerprint(authority.certificate),
                not_after=authority.certificate.not_valid_after_utc,
                crl_next_update=min(updates) if updates else None,
                crl_count=len(authority.crls),
            )
        )
    return listed


def _authority_certificate(pem: bytes, now: dt.datetime) -> x509.Certificate:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        try:
            certificates = [x509.load_der_x509_certificate(pem)]
        except ValueError:
            raise InvalidCardAuthority(
                "The file is not a certificate (PEM or DER expected)."
            ) from None
    if len(certificates) != 1:
        raise InvalidCardAuthority("Give one authority certificate per registration.")
    certificate = certificates[0]
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidCardAuthority(
            "The certificate lacks the CA constraint or key usage of an authority."
        ) from None
    if not constraints.ca or not usage.key_cert_sign:
        raise InvalidCardAuthority("The certificate is not a certification authority's.")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise InvalidCardAuthority(
            f"The certificate is valid from {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}, not now."
        )
    return certificate


def _set_crls(
    authority: CardAuthority, certificate: x509.Certificate, data: bytes, now: dt.datetime
) -> None:
    """Check and store CRLs: current, and signed by the authority or naming another issuer.

    A CRL of an intermediate authority cannot be checked yet (its key comes with the card's
    chain): it is checked at each sign-in, against the intermediate the card presents.
    """
    try:
        crls = card.load_crls(data)
    except ValueError:
        raise InvalidCardAuthority("The file is not a CRL (PEM or DER expected).") from None
    for crl in crls:
        if crl.issuer == certificate.subject and not card.crl_signed_by(crl, certificate):
            raise InvalidCardAuthority("A CRL names this authority but its signature is not valid.")
        if crl.next_update_utc is None or crl.next_update_utc < now:
            raise InvalidCardAuthority(
                f"The CRL of {crl.issuer.rfc4514_string()} is out of date: fetch a fresh one."
            )
    authority.crl_pem = "".join(
        crl.public_bytes(serialization.Encoding.PEM).decode() for crl in crls
    )
    authority.crl_updated_at = now


def _named(session: Session, name: str) -> CardAuthority:
    authority = session.scalar(select(CardAuthority).where(CardAuthority.name == name))
    if authority is None:
        raise UnknownSubject(f"No trusted card authority is named {name!r}.")
    return authority


def _certificate_of(row: CardAuthority) -> x509.Certificate:
    return x509.load_pem_x509_certificate(row.certificate_pem.encode())


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else certificate.subject.rfc4514_string()


def _fingerprint(certificate: x509.Certificate) -> str:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def _audit(
    session: Session,
    agent: Agent,
    action: AuditAction,
    authority: CardAuthority,
    *,
    reason: str,
    clock: Clock,
) -> None:
    audit_trail.record(
        session,
        agent=agent,
        action=action,
        clock=clock,
        reason=reason,
        details={
            "card_authority": authority.name,
            "fingerprint": _fingerprint(_certificate_of(authority)),
        },
    )
