"""A SAML identity provider for tests: its key and certificate, and the assertions it signs.

Assertions follow IHE XUA (ITI-40) and are signed with signxml, as a national identity
provider's would be (enveloped signature, exclusive canonicalisation, RSA-SHA256).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import methods
from signxml.signer import XMLSigner

from carnet.xds import vocabulary as v
from carnet.xds.xua import PURPOSE_OF_USE, RESOURCE_ID, ROLE, XuaTrust

SAML = v.SAML2
AUDIENCE = "http://testserver/xds"
X509_AUTHN = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"
PASSWORD_AUTHN = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@dataclass(frozen=True)
class IdentityProvider:
    """An identity provider's signing key and self-signed certificate."""

    key_pem: bytes
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def trust(self, audience: str = AUDIENCE) -> XuaTrust:
        """A trust holding only this provider."""
        return XuaTrust.from_pem(self.certificate_pem, audience=audience)


def identity_provider(now: dt.datetime, name: str = "idp.sante.example") -> IdentityProvider:
    """A provider whose certificate is valid a year around ``now``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return IdentityProvider(key_pem, certificate)


def assertion(
    idp: IdentityProvider | None,
    now: dt.datetime,
    *,
    subject: str,
    qualifier: str | None,
    role: str | None = None,
    purpose: str | None = "TREATMENT",
    resource_id: str | None = None,
    audience: str = AUDIENCE,
    lifetime: dt.timedelta = dt.timedelta(minutes=5),
    issued: dt.datetime | None = None,
    authn: str = X509_AUTHN,
) -> etree._Element:
    """An XUA assertion about ``subject``, signed by ``idp`` (unsigned when ``idp`` is None)."""
    issued = issued or now
    identifier = "_" + uuid.uuid4().hex
    root = etree.Element(f"{{{SAML}}}Assertion", nsmap={"saml2": SAML})
    root.set("ID", identifier)
    root.set("Version", "2.0")
    root.set("IssueInstant", _xs(issued))
    etree.SubElement(root, f"{{{SAML}}}Issuer").text = "https://idp.sante.example"
    if idp is not None:
        # Where the signature goes (SAML 2.0 core 5.4.1: right after the Issuer).
        etree.SubElement(
            root, f"{{{v.XMLDSIG}}}Signature", Id="placeholder", nsmap={"ds": v.XMLDSIG}
        )
    subject_element = etree.SubElement(root, f"{{{SAML}}}Subject")
    name_id = etree.SubElement(subject_element, f"{{{SAML}}}NameID")
    name_id.text = subject
    if qualifier is not None:
        name_id.set("NameQualifier", qualifier)
    confirmation = etree.SubElement(subject_element, f"{{{SAML}}}SubjectConfirmation")
    confirmation.set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    conditions = etree.SubElement(root, f"{{{SAML}}}Conditions")
    conditions.set("NotBefore", _xs(issued))
    conditions.set("NotOnOrAfter", _xs(issued + lifetime))
    restriction = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
    etree.SubElement(restriction, f"{{{SAML}}}Audience").text = audience
    statement = etree.SubElement(root, f"{{{SAML}}}AuthnStatement")
    statement.set("AuthnInstant", _xs(issued))
    context = etree.SubElement(statement, f"{{{SAML}}}AuthnContext")
    etree.SubElement(context, f"{{{SAML}}}AuthnContextClassRef").text = authn
    attributes = etree.SubElement(root, f"{{{SAML}}}AttributeStatement")
    if role is not None:
        _coded(attributes, ROLE, "Role", role, "2.16.756.5.30.1.127.3.10.6")
    if purpose is not None:
        _coded(attributes, PURPOSE_OF_USE, "PurposeOfUse", purpose, "2.16.840.1.113883.3.18.7.1")
    if resource_id is not None:
        attribute = etree.SubElement(attributes, f"{{{SAML}}}Attribute", Name=RESOURCE_ID)
        etree.SubElement(attribute, f"{{{SAML}}}AttributeValue").text = resource_id
    if idp is None:
        return root
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed: etree._Element = signer.sign(
        root, key=idp.key_pem, cert=[idp.certificate], reference_uri=identifier, id_attribute="ID"
    )
    return signed


def security_header(*assertions: etree._Element) -> etree._Element:
    """A ``wsse:Security`` header block holding the assertions, as received in an envelope."""
    envelope = etree.Element(f"{{{v.SOAP12}}}Envelope", nsmap={"s": v.SOAP12})
    header = etree.SubElement(envelope, f"{{{v.SOAP12}}}Header")
    security = etree.SubElement(header, f"{{{v.WSSE}}}Security", nsmap={"wsse": v.WSSE})
    for item in assertions:
        security.append(etree.fromstring(etree.tostring(item)))
    # Parsed again from bytes, as the router would see it.
    received = etree.fromstring(etree.tostring(envelope))
    found = received.find(f".//{{{v.WSSE}}}Security")
    assert found is not None
    return found


def _coded(parent: etree._Element, name: str, tag: str, code: str, system: str) -> None:
    attribute = etree.SubElement(parent, f"{{{SAML}}}Attribute", Name=name)
    value = etree.SubElement(attribute, f"{{{SAML}}}AttributeValue")
    coded = etree.SubElement(value, f"{{urn:hl7-org:v3}}{tag}", nsmap={"hl7": "urn:hl7-org:v3"})
    coded.set("code", code)
    coded.set("codeSystem", system)


def _xs(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
