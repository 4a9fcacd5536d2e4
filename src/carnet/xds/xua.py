"""IHE XUA (ITI-40): the SAML 2.0 assertion in a SOAP header, mapped to Carnet's ``Actor``.

National document-sharing systems authenticate XDS.b callers this way (the French DMP's VIHF,
the Swiss EPR's XUA): an identity provider signs an assertion naming the user (``Subject/
NameID``, qualified by the identifier's OID), their role, the purpose of use and — for a
representative — the patient acted for (``resource-id``); the caller puts it in the
``wsse:Security`` header (OASIS WS-Security SAML Token Profile 1.1).

``actor_from_assertion`` checks, in order: an assertion is there; its XML signature verifies,
with signxml, against one of the trusted certificates (``XuaTrust``: the identity providers',
configured in ``CARNET_XUA_TRUSTED_CERTS``) and only what the signature covers is read further
(the defence against signature wrapping); the certificate and the assertion are within their
validity windows; the audience is Carnet's; the subject names a professional of the directory
(or a patient). The actor it returns then goes through the same door and policy as a bearer
token's. Every refusal is an ``AssertionRefused`` whose reason the router puts in the SOAP
Fault. Replay within the assertion's short lifetime is not detected (TF-2b 3.40.4.1.3 leaves
that to the assertion's validity window).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509
from lxml import etree
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import parse_scopes
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.errors import CarnetError
from carnet.patients import service as patients
from carnet.settings import Settings
from carnet.xds import mapping
from carnet.xds import vocabulary as v

SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"
PROVIDER_IDENTIFIER = "urn:ihe:iti:xua:2017:subject:provider-identifier"
HL7 = "urn:hl7-org:v3"
# An assertion's clock and Carnet's may differ by this much (SAML 2.0 core 2.5.1.2 leaves the
# tolerance to the relying party).
SKEW = dt.timedelta(minutes=2)
# What an XDS.b caller's assertion lets it do, at most: the policy still decides.
_SCOPES = parse_scopes("user/DocumentReference.crus user/List.rs user/Binary.r")[0]
# Roles (XUA Subject-Role: the Swiss EPR's codes, SNOMED CT's patient) that are the patient
# or their representative; every other role is a professional's.
_PATIENT_ROLES = frozenset({"PAT", "116154003"})
_REPRESENTATIVE_ROLES = frozenset({"REP"})
# Roles Carnet does not let act over XDS: an assistant (a staff member, who acts only through a
# professional's delegation in the portals), technical users and administrators.
_REFUSED_ROLES = frozenset({"ASS", "TCU", "PADM", "DADM"})
# Purposes of use (NHIN 2.16.840.1.113883.3.18.7.1, HL7 ActReason, the Swiss EPR's) that are
# ordinary care. An emergency purpose is refused: emergency access is opened through Carnet's
# break-glass, stated and bounded, not claimed by an assertion.
_CARE_PURPOSES = frozenset({"TREATMENT", "TREAT", "NORM", "CAREMGT", "PATRQT", "COVERAGE"})
_EMERGENCY_PURPOSES = frozenset({"EMERGENCY", "EMER", "ETREAT", "BTG"})
# How strongly the person authenticated (SAML AuthnContextClassRef; eIDAS levels of assurance).
_ASSURANCE = {
    "urn:oasis:names:tc:SAML:2.0:ac:classes:X509": Assurance.HIGH,
    "urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard": Assurance.HIGH,
    "urn:oasis:names:tc:SAML:2.0:ac:classes:SmartcardPKI": Assurance.HIGH,
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TLSClient": Assurance.HIGH,
    "http://eidas.europa.eu/LoA/high": Assurance.HIGH,
    "urn:oasis:names:tc:SAML:2.0:ac:classes:MobileTwoFactorContract": Assurance.SUBSTANTIAL,
    "urn:oasis:names:tc:SAML:2.0:ac:classes:TimeSyncToken": Assurance.SUBSTANTIAL,
    "http://eidas.europa.eu/LoA/substantial": Assurance.SUBSTANTIAL,
}
# The French national professional identifier is "8" followed by the RPPS number (ANS).
_RPPS_OID = "1.2.250.1.71.4.2.1"


class AssertionRefused(CarnetError):
    """A SAML assertion Carnet does not accept; the message says why, for the SOAP Fault."""


@dataclass(frozen=True)
class XuaTrust:
    """Whose assertions Carnet accepts, and for which audience."""

    certificates: tuple[x509.Certificate, ...]
    audience: str

    @classmethod
    def from_settings(cls, settings: Settings) -> XuaTrust | None:
        """The trust configured in ``settings``, or None when no certificate is configured."""
        if settings.xua_trusted_certs is None:
            return None
        audience = settings.xua_audience or f"{settings.public_url}/xds"
        return cls.from_pem(Path(settings.xua_trusted_certs).read_bytes(), audience=audience)

    @classmethod
    def from_pem(cls, pem: bytes, *, audience: str) -> XuaTrust:
        """Trust the certificates of a PEM bundle; ``ValueError`` if it holds none."""
        certificates = tuple(x509.load_pem_x509_certificates(pem))
        return cls(certificates, audience)


def actor_from_assertion(
    session: Session,
    security: etree._Element | None,
    *,
    trust: XuaTrust | None,
    clock: Clock,
    network_address: str | None = None,
) -> Actor:
    """The actor a signed assertion in the ``wsse:Security`` header speaks for.

    Raises ``AssertionRefused`` for no assertion, a missing, broken or untrusted signature, an
    expired or not yet valid assertion or certificate, another audience, a role or purpose of
    use Carnet does not accept, or a subject Carnet does not know.
    """
    if trust is None:
        raise AssertionRefused("This Carnet accepts no SAML assertions: use an access token.")
    assertion = _assertion(security)
    now = clock.now()
    signed = _verified(assertion, trust, now)
    _check_conditions(signed, trust.audience, now)
    attributes = _attributes(signed)
    role = _code(attributes.get(ROLE))
    if role in _REFUSED_ROLES:
        raise AssertionRefused(f"The role {role} may not act over XDS.b.")
    purpose = _code(attributes.get(PURPOSE_OF_USE))
    if purpose in _EMERGENCY_PURPOSES:
        raise AssertionRefused(
            "An emergency purpose of use is not accepted: open emergency access in Carnet."
        )
    if purpose is not None and purpose not in _CARE_PURPOSES:
        raise AssertionRefused(f"The purpose of use {purpose} is not one Carnet serves.")
    name_id = signed.find(f"{{{v.SAML2}}}Subject/{{{v.SAML2}}}NameID")
    if name_id is None or not (name_id.text or "").strip():
        raise AssertionRefused("The assertion names no subject (Subject/NameID).")
    # What every actor from this assertion carries, whoever it names.
    common = Actor(
        kind=ActorKind.PROFESSIONAL,
        subject="",
        assurance=_assurance(signed),
        scopes=_SCOPES,
        token_id=signed.get("ID"),
        network_address=network_address,
    )
    qualifier = (name_id.get("NameQualifier") or "").strip().removeprefix("urn:oid:")
    value = (name_id.text or "").strip()
    if role in _PATIENT_ROLES or role in _REPRESENTATIVE_ROLES:
        person = _patient(session, qualifier, value, "subject")
        acting_for = person
        if role in _REPRESENTATIVE_ROLES:
            resource = attributes.get(RESOURCE_ID)
            if resource is None or not _text(resource):
                raise AssertionRefused(
                    "A representative's assertion names the patient (resource-id)."
                )
            acting_for = _patient_of_cx(session, _text(resource))
        return replace(
            common,
            kind=ActorKind.PATIENT,
            subject=str(person),
            person_id=person,
            acting_for=acting_for,
            launch_patient=acting_for if acting_for != person else None,
        )
    return _professional(session, qualifier, value, attributes, common)


def _assertion(security: etree._Element | None) -> etree._Element:
    if security is None:
        raise AssertionRefused("No WS-Security header.")
    if security.tag == f"{{{v.SAML2}}}Assertion":
        return security
    assertion = security.find(f".//{{{v.SAML2}}}Assertion")
    if assertion is None:
        raise AssertionRefused("No SAML 2.0 assertion in the WS-Security header.")
    return assertion


def _verified(assertion: etree._Element, trust: XuaTrust, now: dt.datetime) -> etree._Element:
    """The assertion as its signature covers it, if a trusted certificate signed it."""
    if assertion.find(f"{{{v.XMLDSIG}}}Signature") is None:
        raise AssertionRefused("The assertion is not signed.")
    for certificate in trust.certificates:
        in_force = certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
        # signxml checks the certificate's window itself: at Carnet's time, or — for a
        # certificate out of its window — at its start, to tell "expired" from "not ours".
        at = now if in_force else certificate.not_valid_before_utc
        try:
            result = XMLVerifier().verify(
                assertion,
                x509_cert=certificate,
                id_attribute="ID",
                expect_config=SignatureConfiguration(require_x509=False, verification_time=at),
            )
        except (InvalidSignature, InvalidInput):
            continue
        if not in_force:
            raise AssertionRefused("The identity provider's certificate is not valid now.")
        # Only what the signature covers is read from here on (never the received tree).
        signed = result.signed_xml if not isinstance(result, list) else None
        if signed is None or signed.tag != f"{{{v.SAML2}}}Assertion":
            raise AssertionRefused("The signature does not cover the assertion.")
        return signed
    raise AssertionRefused("The assertion is not signed by an identity provider Carnet trusts.")


def _check_conditions(assertion: etree._Element, audience: str, now: dt.datetime) -> None:
    conditions = assertion.find(f"{{{v.SAML2}}}Conditions")
    if conditions is None or conditions.get("NotOnOrAfter") is None:
        raise AssertionRefused("The assertion has no validity window (Conditions NotOnOrAfter).")
    not_before = _instant(conditions.get("NotBefore"))
    not_after = _instant(conditions.get("NotOnOrAfter"))
    if not_after is not None and now >= not_after + SKEW:
        raise AssertionRefused(f"The assertion expired at {conditions.get('NotOnOrAfter')}.")
    if not_before is not None and now < not_before - SKEW:
        raise AssertionRefused(f"The assertion is not valid before {conditions.get('NotBefore')}.")
    audiences = [
        (element.text or "").strip()
        for element in conditions.iterfind(
            f"{{{v.SAML2}}}AudienceRestriction/{{{v.SAML2}}}Audience"
        )
    ]
    if audience not in audiences:
        raise AssertionRefused(f"The assertion is not for this audience ({audience}).")


def _instant(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        instant = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise AssertionRefused(f"{text!r} is not an xs:dateTime.") from None
    if instant.tzinfo is None:
        # SAML 2.0 core 1.3.3: times are UTC.
        instant = instant.replace(tzinfo=dt.UTC)
    return instant


def _attributes(assertion: etree._Element) -> dict[str, etree._Element]:
    """Each attribute's first ``AttributeValue``, by name."""
    found: dict[str, etree._Element] = {}
    for attribute in assertion.iterfind(f"{{{v.SAML2}}}AttributeStatement/{{{v.SAML2}}}Attribute"):
        value = attribute.find(f"{{{v.SAML2}}}AttributeValue")
        if value is not None:
            found.setdefault(attribute.get("Name", ""), value)
    return found


def _code(value: etree._Element | None) -> str | None:
    """A coded attribute: an HL7 ``Role``/``PurposeOfUse`` element's code, or the plain text."""
    if value is None:
        return None
    for child in value:
        if child.get("code"):
            return str(child.get("code")).strip()
    return _text(value) or None


def _text(value: etree._Element) -> str:
    return "".join(value.itertext()).strip()


def _assurance(assertion: etree._Element) -> Assurance:
    reference = assertion.find(
        f"{{{v.SAML2}}}AuthnStatement/{{{v.SAML2}}}AuthnContext/{{{v.SAML2}}}AuthnContextClassRef"
    )
    return (
        _ASSURANCE.get((reference.text or "").strip(), Assurance.LOW)
        if reference is not None
        else Assurance.LOW
    )


def _patient(session: Session, qualifier: str, value: str, what: str) -> uuid.UUID:
    system = mapping.ASSIGNING_AUTHORITIES.get(qualifier)
    if system is None:
        raise AssertionRefused(f"The {what} is not named by a national patient identifier.")
    try:
        found = patients.find_patient_id(session, system, value)
    except CarnetError:
        found = None
    if found is None:
        raise AssertionRefused(f"The {what} is not a patient known to Carnet.")
    return found


def _patient_of_cx(session: Session, cx: str) -> uuid.UUID:
    identifier = mapping.parse_patient_id(cx)
    if identifier is None:
        raise AssertionRefused("The resource-id is not a patient identifier Carnet holds.")
    oid = next(o for o, s in mapping.ASSIGNING_AUTHORITIES.items() if s == identifier.system)
    return _patient(session, oid, identifier.value, "patient acted for")


def _professional(
    session: Session,
    qualifier: str,
    value: str,
    attributes: dict[str, etree._Element],
    common: Actor,
) -> Actor:
    if not qualifier and PROVIDER_IDENTIFIER in attributes:
        # XUA 2017's provider identifier, as a CX: value^^^&OID&ISO.
        value, _, rest = _text(attributes[PROVIDER_IDENTIFIER]).partition("^^^")
        qualifier = [*rest.split("&"), "", ""][1]
    if not qualifier:
        raise AssertionRefused(
            "The subject's identifier has no assigning authority (NameQualifier)."
        )
    if qualifier == _RPPS_OID and len(value) == 12 and value.startswith("8"):
        value = value[1:]
    professional = directory.find_professional(session, f"urn:oid:{qualifier}", value)
    if professional is None:
        raise AssertionRefused("The subject is not a professional of Carnet's directory.")
    if not professional.active:
        raise AssertionRefused("The subject's entry in Carnet's directory is not active.")
    return replace(
        common,
        subject=str(professional.id),
        professional_id=professional.id,
        organisation_id=professional.organisation_id,
        profession=professional.profession.value,
    )
