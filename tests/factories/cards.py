"""A card public-key infrastructure built by the tests: authorities, intermediates, cards, CRLs.

Built with ``cryptography`` directly (not with ``carnet.auth.card``'s demo issuers), so the
verification is tested against certificates it did not make.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from carnet.audit.service import Agent
from carnet.auth import card, card_authorities
from carnet.clock import Clock
from carnet.directory.models import Professional

DAY = dt.timedelta(days=1)
# Who registers the authorities and their CRLs in the tests.
OPERATOR = Agent(kind="operator", subject="operator:test")


def _usage(*, sign: bool, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Authority:
    """A CA: its certificate and key, and the serials it revoked."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    revoked: list[int] = field(default_factory=list)

    @property
    def pem(self) -> bytes:
        """The certificate as PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def crl(self, now: dt.datetime, *, next_update: dt.datetime | None = None) -> bytes:
        """Its CRL (PEM), listing ``revoked``, current for a week unless ``next_update``."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now - DAY)
            .next_update(next_update or now + 7 * DAY)
        )
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - DAY)
                .build()
            )
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def root(name: str, now: dt.datetime) -> Authority:
    """A self-signed root authority valid for ten years around ``now``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 365 * DAY)
        .not_valid_after(now + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_usage(sign=False, ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(certificate, key)


def intermediate(parent: Authority, name: str, now: dt.datetime) -> Authority:
    """An authority signed by ``parent``."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(parent.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - 30 * DAY)
        .not_valid_after(now + 1000 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(sign=False, ca=True), critical=True)
        .sign(parent.key, hashes.SHA256())
    )
    return Authority(certificate, key)


@dataclass
class Card:
    """A card: its certificate, its key, and the chain the card agent sends with it."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def pem(self) -> bytes:
        """The card's certificate then its chain, as the card agent posts them."""
        return b"".join(
            certificate.public_bytes(serialization.Encoding.PEM)
            for certificate in (self.certificate, *self.chain)
        )

    def answer(self, challenge: bytes) -> card.CardResponse:
        """What the card agent returns: the certificates and the challenge signed."""
        return card.CardResponse(self.pem, self.key.sign(challenge, ec.ECDSA(hashes.SHA256())))


def issue(
    issuer: Authority,
    professional: Professional,
    now: dt.datetime,
    *,
    chain: tuple[Authority, ...] = (),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    signing: bool = True,
) -> Card:
    """A card for ``professional`` issued by ``issuer`` (identifier as Carnet reads it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"{professional.given} {professional.family}"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, professional.identifier_value),
            x509.NameAttribute(NameOID.DN_QUALIFIER, professional.identifier_system),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - DAY)
        .not_valid_after(not_after or now + 365 * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(sign=signing, ca=False), critical=True)
        .sign(issuer.key, hashes.SHA256())
    )
    return Card(certificate, key, tuple(link.certificate for link in chain))


def trust(session: Session, authority: Authority, clock: Clock, *, with_crl: bool = True) -> None:
    """Register ``authority`` as an operator does, with its current CRL unless ``with_crl``
    is False (an authority without one fails closed: its cards are refused)."""
    card_authorities.trust(
        session,
        certificate_pem=authority.pem,
        crl=authority.crl(clock.now()) if with_crl else None,
        agent=OPERATOR,
        clock=clock,
    )


def publish_crl(session: Session, authority: Authority, clock: Clock, *, name: str) -> None:
    """Replace the CRL of the authority trusted as ``name`` by ``authority``'s current one."""
    card_authorities.update_crl(
        session, name=name, crl=authority.crl(clock.now()), agent=OPERATOR, clock=clock
    )


def agent_fields(page: str, card: Card) -> dict[str, str]:
    """What the card agent posts from a sign-in page: the card's certificates (DER, base64url,
    dot-separated) and its signature of the page's challenge."""
    found = re.search(r'data-card-challenge="([^"]+)"', page)
    assert found is not None, "the sign-in page offers no card challenge"
    answer = card.answer(base64.urlsafe_b64decode(found.group(1) + "=="))
    chain = (card.certificate, *card.chain)
    return {
        "method": "card",
        "certificate": ".".join(_b64(c.public_bytes(serialization.Encoding.DER)) for c in chain),
        "signature": _b64(answer.signature),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
