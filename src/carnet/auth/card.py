"""Professional cards: verifying a card's answer, and issuing the demo's emulated cards.

A professional card holds a key that never leaves it and an X.509 certificate, issued by a card
authority (possibly through intermediate authorities), naming the professional's national
identifier. Signing in by card: the server sends a random challenge, the card agent (the card
vendor's middleware, or the demo's emulated reader) asks the card, after its PIN, to sign it, and
returns the card's certificate, its chain and the signature. The server checks, in this order and
each with its own refusal reason: the chain up to an authority Carnet trusts (signatures, CA
constraints, validity dates), the card's key usage, revocation through the registered CRLs (fail
closed: no CRL, or an outdated one, refuses the card), the signature of the challenge, and the
identifier the certificate names.

The checks are explicit rather than ``cryptography.x509.verification``'s client verifier: that
verifier answers one opaque error, where a professional refused at the door must be told why
(an expired card is not a revoked one), and the audit trail must record which rule refused.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from carnet.auth.errors import CardRefused

CARD_VALIDITY = dt.timedelta(days=3 * 365)
AUTHORITY_VALIDITY = dt.timedelta(days=10 * 365)
_SIGNATURE = ec.ECDSA(hashes.SHA256())
# A card, its intermediate authorities and the trusted one: national card hierarchies are two
# or three levels deep; a longer chain is refused rather than walked.
MAX_CHAIN = 4
_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)


class CardRefusal(enum.StrEnum):
    """Why a card was refused: recorded in the audit trail and shown to the person."""

    UNREADABLE = "unreadable-certificate"
    UNTRUSTED = "untrusted-authority"
    NOT_YET_VALID = "card-not-yet-valid"
    EXPIRED = "card-expired"
    AUTHORITY_EXPIRED = "authority-expired"
    KEY_USAGE = "not-a-signing-card"
    NO_REVOCATION_LIST = "no-revocation-list"
    REVOCATION_LIST_EXPIRED = "revocation-list-expired"
    REVOKED = "card-revoked"
    WRONG_SIGNATURE = "wrong-signature"
    NO_IDENTIFIER = "no-professional-identifier"
    UNKNOWN_PROFESSIONAL = "unknown-professional"


@dataclass(frozen=True)
class CardHolder:
    """Whom a verified card names: a professional identifier (system and value)."""

    identifier_system: str
    identifier_value: str


@dataclass(frozen=True)
class CardResponse:
    """What the card agent returns for a challenge: certificates and the card's signature.

    ``certificate_pem`` holds the card's certificate first, then any intermediate authorities'
    certificates (PEM blocks one after another), as the agent reads them from the card.
    """

    certificate_pem: bytes
    signature: bytes


@dataclass(frozen=True)
class TrustedAuthority:
    """A card authority Carnet trusts, with the revocation lists registered for its cards."""

    name: str
    certificate: x509.Certificate
    crls: tuple[x509.CertificateRevocationList, ...] = ()


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (Carnet seals it under the master key)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    """Load a PEM private key written by ``private_key_pem``."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("card and authority keys are EC keys")
    return key


def issue_authority(
    name: str, now: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed card authority certificate and its key."""
    key = new_private_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + AUTHORITY_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issue_card(
    authority: x509.Certificate,
    authority_key: ec.EllipticCurvePrivateKey,
    holder: CardHolder,
    *,
    name: str,
    now: dt.datetime,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A card for ``holder``: a new key and its certificate signed by ``authority``.

    The identifier travels in the subject: its value as ``serialNumber``, its system as
    ``dnQualifier``.
    """
    key = new_private_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, holder.identifier_value),
            x509.NameAttribute(NameOID.DN_QUALIFIER, holder.identifier_system),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + CARD_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(authority_key, hashes.SHA256())
    )
    return certificate, key


def sign_challenge(
    certificate_pem: bytes, key: ec.EllipticCurvePrivateKey, challenge: bytes
) -> CardResponse:
    """What the card does once its PIN is verified: sign the server's challenge."""
    return CardResponse(certificate_pem, key.sign(challenge, _SIGNATURE))


def issue_crl(
    authority: x509.Certificate,
    authority_key: ec.EllipticCurvePrivateKey,
    *,
    revoked_serials: Sequence[int] = (),
    now: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``authority`` listing ``revoked_serials`` (the demo's, and tests')."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(authority.subject)
        .last_update(now)
        .next_update(next_update)
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now).build()
        )
    return builder.sign(authority_key, hashes.SHA256())


def load_crls(data: bytes) -> tuple[x509.CertificateRevocationList, ...]:
    """The CRLs in a file: PEM blocks one after another, or one DER CRL.

    Raises ``ValueError`` if there is none or one is unreadable.
    """
    blocks = _PEM_CRL.findall(data)
    if blocks:
        return tuple(x509.load_pem_x509_crl(block) for block in blocks)
    return (x509.load_der_x509_crl(data),)


def verify_card_response(
    response: CardResponse,
    challenge: bytes,
    *,
    authorities: Sequence[TrustedAuthority],
    now: dt.datetime,
) -> CardHolder:
    """Check a card's answer to ``challenge`` and return whom the card names.

    Raises ``CardRefused`` with the first rule the card fails (see the module docstring).
    """
    try:
        certificates = x509.load_pem_x509_certificates(response.certificate_pem)
    except ValueError:
        raise CardRefused(CardRefusal.UNREADABLE) from None
    card, intermediates = certificates[0], certificates[1 : MAX_CHAIN - 1]
    if now < card.not_valid_before_utc:
        raise CardRefused(CardRefusal.NOT_YET_VALID)
    if now > card.not_valid_after_utc:
        raise CardRefused(CardRefusal.EXPIRED)
    if not _is_end_entity_signer(card):
        raise CardRefused(CardRefusal.KEY_USAGE)
    path, anchor = _chain(card, intermediates, authorities, now)
    _check_revocation(path, anchor, now)
    _check_signature(card, response.signature, challenge)
    values = {
        oid: card.subject.get_attributes_for_oid(oid)
        for oid in (NameOID.SERIAL_NUMBER, NameOID.DN_QUALIFIER)
    }
    if not all(len(found) == 1 for found in values.values()):
        raise CardRefused(CardRefusal.NO_IDENTIFIER)
    return CardHolder(
        identifier_system=str(values[NameOID.DN_QUALIFIER][0].value),
        identifier_value=str(values[NameOID.SERIAL_NUMBER][0].value),
    )


def _chain(
    card: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    authorities: Sequence[TrustedAuthority],
    now: dt.datetime,
) -> tuple[list[x509.Certificate], TrustedAuthority]:
    """The path from the card up to (not including) a trusted authority, and that authority.

    Intermediates come from the card agent and are trusted only through the signature of the
    authority above them; a trusted authority ends the walk as soon as it signed the last link.
    """
    path = [card]
    while len(path) < MAX_CHAIN:
        current = path[-1]
        for authority in authorities:
            if _issued_by(current, authority.certificate):
                if not _valid_at(authority.certificate, now):
                    raise CardRefused(CardRefusal.AUTHORITY_EXPIRED)
                return path, authority
        issuer = next((c for c in intermediates if _issued_by(current, c)), None)
        if issuer is None or issuer in path:
            break
        if not _valid_at(issuer, now):
            raise CardRefused(CardRefusal.AUTHORITY_EXPIRED)
        path.append(issuer)
    raise CardRefused(CardRefusal.UNTRUSTED)


def _check_revocation(
    path: Sequence[x509.Certificate], anchor: TrustedAuthority, now: dt.datetime
) -> None:
    """Each certificate of the path against its issuer's CRL, registered with the authority.

    Fails closed: a missing CRL, one not signed by the issuer, or one past its ``nextUpdate``
    refuses the card, since a revoked card cannot be told from a valid one without it.
    """
    issuers = [*path[1:], anchor.certificate]
    for certificate, issuer in zip(path, issuers, strict=True):
        crl = next((crl for crl in anchor.crls if crl_signed_by(crl, issuer)), None)
        if crl is None:
            raise CardRefused(CardRefusal.NO_REVOCATION_LIST)
        if crl.next_update_utc is None or crl.next_update_utc < now:
            raise CardRefused(CardRefusal.REVOCATION_LIST_EXPIRED)
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            raise CardRefused(CardRefusal.REVOKED)


def crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    """Whether ``crl`` names ``issuer`` and carries its valid signature."""
    return crl.issuer == issuer.subject and _crl_signed_by(crl, issuer)


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return False
    return crl.is_signature_valid(key)


def _check_signature(card: x509.Certificate, signature: bytes, challenge: bytes) -> None:
    # Cards hold EC keys (newer generations) or RSA keys (the French CPS3 signs RSA PKCS#1 v1.5).
    key = card.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, challenge, _SIGNATURE)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, challenge, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise CardRefused(CardRefusal.WRONG_SIGNATURE)
    except InvalidSignature:
        raise CardRefused(CardRefusal.WRONG_SIGNATURE) from None


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


def _is_end_entity_signer(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return not constraints.ca and usage.digital_signature


def _issued_by(certificate: x509.Certificate, authority: x509.Certificate) -> bool:
    """``authority`` is a CA allowed to sign certificates, and signed ``certificate``."""
    if certificate.issuer != authority.subject:
        return False
    try:
        constraints = authority.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            return False
        usage = authority.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            return False
        certificate.verify_directly_issued_by(authority)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return True
