"""Professional cards, emulated: a demo certification authority, cards and a card reader.

A professional card holds an EC P-256 key that never leaves it and an X.509 certificate, issued
by a card authority, naming the professional's national identifier. Signing in by card: the
server sends a random challenge, the reader asks the card (after the PIN) to sign it, and the
server checks the signature with the certificate's key and the certificate against the
authorities it trusts. Only the reader is emulated here; the verification is what a real card
would go through.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from carnet.auth.errors import SignInRefused

CARD_VALIDITY = dt.timedelta(days=3 * 365)
AUTHORITY_VALIDITY = dt.timedelta(days=10 * 365)
_SIGNATURE = ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class CardHolder:
    """Whom a verified card names: a professional identifier (system and value)."""

    identifier_system: str
    identifier_value: str


@dataclass(frozen=True)
class CardResponse:
    """What the reader returns for a challenge: the card's certificate and its signature."""

    certificate_pem: bytes
    signature: bytes


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


def verify_card_response(
    response: CardResponse,
    challenge: bytes,
    *,
    authorities: list[x509.Certificate],
    now: dt.datetime,
) -> CardHolder:
    """Check a card's answer to ``challenge`` and return whom the card names.

    The certificate must be issued by one of ``authorities`` (signature, validity dates, CA
    constraint), be a valid end-entity signing certificate now, and its key must have signed the
    challenge. Raises ``SignInRefused`` otherwise.
    """
    try:
        certificate = x509.load_pem_x509_certificate(response.certificate_pem)
    except ValueError:
        raise SignInRefused() from None
    if not (certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc):
        raise SignInRefused()
    if not _is_end_entity_signer(certificate) or not any(
        _issued_by(certificate, authority, now) for authority in authorities
    ):
        raise SignInRefused()
    public_key = certificate.public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise SignInRefused()
    try:
        public_key.verify(response.signature, challenge, _SIGNATURE)
    except InvalidSignature:
        raise SignInRefused() from None
    values = {
        oid: certificate.subject.get_attributes_for_oid(oid)
        for oid in (NameOID.SERIAL_NUMBER, NameOID.DN_QUALIFIER)
    }
    if not all(len(found) == 1 for found in values.values()):
        raise SignInRefused()
    return CardHolder(
        identifier_system=str(values[NameOID.DN_QUALIFIER][0].value),
        identifier_value=str(values[NameOID.SERIAL_NUMBER][0].value),
    )


def _is_end_entity_signer(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return not constraints.ca and usage.digital_signature


def _issued_by(
    certificate: x509.Certificate, authority: x509.Certificate, now: dt.datetime
) -> bool:
    if not (authority.not_valid_before_utc <= now <= authority.not_valid_after_utc):
        return False
    try:
        constraints = authority.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            return False
        certificate.verify_directly_issued_by(authority)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return True
