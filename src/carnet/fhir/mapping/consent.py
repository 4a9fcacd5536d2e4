"""The patient's access rules as FHIR R4 ``Consent`` resources (scope ``patient-privacy``).

http://hl7.org/fhir/R4/consent.html, in the manner of IHE Privacy Consent on FHIR and the Swiss
EPR's PPQm: one Consent per rule in force, read and written the same way.

- a grant: permit; actor ``Practitioner`` or ``Organization``; ``period.end``; securityLabel
  N (normal) or N and R (extended);
- a block: deny; actor ``Practitioner``;
- the treating doctor: permit; actor ``Practitioner`` with the role v3-RoleCode ``PCP``;
- emergency access opposed: deny, purpose v3-ActReason ``BTG``; widened: permit, ``BTG``, N and R;
- an open care-contact window (read only: a professional records it, the patient present):
  permit; actor ``Practitioner``; purpose ``TREAT``; ``period.end`` when the window closes.

The root provision carries the rule (R4 leaves its ``type`` optional: when absent, the
``policyRule`` OPTIN or OPTOUT says permit or deny). What Carnet's rules cannot say — nested
provisions, data, classes, codes, actions other than ``access``, other purposes — is refused,
naming the element, rather than recorded as something else. A Consent id is a letter for the
kind of rule and the base32 of the patient's and the rule's ids, so it routes to its dossier.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from carnet.access.models import (
    AccessPreferences,
    Block,
    CareContact,
    Grant,
    GrantLevel,
    TreatingDoctor,
)
from carnet.fhir.ids import document_resource_id, parse_document_resource_id
from carnet.fhir.mapping.document_reference import CONFIDENTIALITY_SYSTEM
from carnet.fhir.validation import InvalidResource, validate

SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"
_CATEGORY = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
_RECIPIENT = {"system": PARTICIPATION, "code": "PRCP", "display": "primary information recipient"}
_TREATING = {"system": ROLE_CODE, "code": "PCP", "display": "primary care provider"}
_ACCESS = {"coding": [{"system": CONSENT_ACTION, "code": "access"}]}
_UNSUPPORTED = {
    "provision": "Nested provisions are not supported: send one rule per Consent.",
    "data": "Per-document rules (masks) are not written as Consent yet.",
    "dataPeriod": "Carnet's rules cover the whole dossier, whatever the period of the data.",
    "class": "Carnet's rules cover the whole dossier, not classes of resources.",
    "code": "Carnet's rules cover the whole dossier, not kinds of documents.",
}


class RuleKind(enum.Enum):
    """The kind of access rule a Consent stands for; its value leads the Consent id."""

    GRANT = "g"
    BLOCK = "b"
    TREATING_DOCTOR = "t"
    EMERGENCY = "e"
    CARE_CONTACT = "c"


def consent_id(kind: RuleKind, patient_id: uuid.UUID, rule_id: uuid.UUID) -> str:
    """The Consent id of a rule: its kind, then its dossier and its own id (as document ids)."""
    return kind.value + document_resource_id(patient_id, rule_id)


def parse_consent_id(resource_id: str) -> tuple[RuleKind, uuid.UUID, uuid.UUID] | None:
    """``(kind, patient_id, rule_id)`` of a Consent id, or None if it is not one of ours."""
    try:
        kind = RuleKind(resource_id[:1])
    except ValueError:
        return None
    ids = parse_document_resource_id(resource_id[1:])
    return None if ids is None else (kind, *ids)


# --- Carnet's rules as Consent resources ----------------------------------------------------


def grant_consent(grant: Grant) -> dict[str, Any]:
    """A grant: permit for the named professional or organisation, until its end."""
    grantee = (
        f"Practitioner/{grant.professional_id}"
        if grant.professional_id
        else f"Organization/{grant.organisation_id}"
    )
    labels = ("N", "R") if grant.level is GrantLevel.EXTENDED else ("N",)
    provision = _provision(
        "permit", grant.starts_at, grant.ends_at, actor=(_RECIPIENT, grantee), labels=labels
    )
    return _consent(RuleKind.GRANT, grant.patient_id, grant.id, grant.starts_at, provision)


def block_consent(block: Block) -> dict[str, Any]:
    """A block: deny for the named professional, emergencies included."""
    grantee = f"Practitioner/{block.professional_id}"
    provision = _provision("deny", block.created_at, actor=(_RECIPIENT, grantee))
    return _consent(RuleKind.BLOCK, block.patient_id, block.id, block.created_at, provision)


def treating_doctor_consent(designation: TreatingDoctor) -> dict[str, Any]:
    """The treating-doctor designation: permit, normal and restricted documents."""
    doctor = f"Practitioner/{designation.professional_id}"
    since = designation.designated_at
    provision = _provision("permit", since, actor=(_TREATING, doctor), labels=("N", "R"))
    return _consent(
        RuleKind.TREATING_DOCTOR, designation.patient_id, designation.id, since, provision
    )


def care_contact_consent(contact: CareContact) -> dict[str, Any]:
    """An open care-contact window: permit for the professional, normal documents, until it ends."""
    provision = _provision(
        "permit",
        contact.recorded_at,
        contact.window_ends_at,
        actor=(_RECIPIENT, f"Practitioner/{contact.professional_id}"),
        labels=("N",),
        purpose=("TREAT", "treatment"),
    )
    return _consent(
        RuleKind.CARE_CONTACT, contact.patient_id, contact.id, contact.recorded_at, provision
    )


def emergency_consent(preferences: AccessPreferences) -> dict[str, Any] | None:
    """The patient's emergency choice (opposed or widened); None while they keep the default."""
    if not (preferences.emergency_opposed or preferences.emergency_widened):
        return None
    provision = _provision(
        "permit" if preferences.emergency_widened else "deny",
        preferences.set_at,
        labels=("N", "R") if preferences.emergency_widened else (),
        purpose=("BTG", "break the glass"),
    )
    return _consent(
        RuleKind.EMERGENCY, preferences.patient_id, preferences.id, preferences.set_at, provision
    )


def _provision(
    kind: str,
    start: dt.datetime,
    end: dt.datetime | None = None,
    *,
    actor: tuple[dict[str, str], str] | None = None,
    labels: tuple[str, ...] = (),
    purpose: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A root provision; ``actor`` is (role, reference), ``purpose`` (ActReason code, display)."""
    period = {"start": _instant(start)} | ({"end": _instant(end)} if end else {})
    provision: dict[str, Any] = {"type": kind, "period": period}
    if actor is not None:
        role, reference = actor
        provision["actor"] = [{"role": {"coding": [role]}, "reference": {"reference": reference}}]
        provision["action"] = [_ACCESS]
    if labels:
        provision["securityLabel"] = [
            {"system": CONFIDENTIALITY_SYSTEM, "code": code} for code in labels
        ]
    if purpose is not None:
        code, display = purpose
        provision["purpose"] = [{"system": ACT_REASON, "code": code, "display": display}]
    return provision


def _consent(
    kind: RuleKind,
    patient_id: uuid.UUID,
    rule_id: uuid.UUID,
    recorded: dt.datetime,
    provision: dict[str, Any],
) -> dict[str, Any]:
    opt = "OPTIN" if provision["type"] == "permit" else "OPTOUT"
    return {
        "resourceType": "Consent",
        "id": consent_id(kind, patient_id, rule_id),
        "status": "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [_CATEGORY]}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "dateTime": _instant(recorded),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": opt}]},
        "provision": provision,
    }


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# --- A Consent as one of Carnet's rules -----------------------------------------------------


@dataclass(frozen=True)
class RuleRequest:
    """The rule an incoming Consent asks for.

    ``professional_id`` or ``organisation_id`` names the actor (grants, blocks, designations);
    for ``EMERGENCY``, ``permit`` says widened (True) or opposed (False).
    """

    kind: RuleKind
    patient_id: uuid.UUID
    permit: bool
    professional_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    level: GrantLevel = GrantLevel.NORMAL
    ends_at: dt.datetime | None = None


ACTOR_REFERENCE = "Consent.provision.actor[0].reference"
PERIOD_END = "Consent.provision.period.end"


def rule_from_consent(data: Any, *, now: dt.datetime) -> RuleRequest:
    """The rule a Consent asks for; ``InvalidResource`` names the element Carnet cannot take.

    The resource is first validated against the FHIR R4 structure (fhir.resources).
    """
    validate(data, expected="Consent")
    if data.get("status") != "active":
        raise _refused("Only an active Consent records a rule.", "Consent.status")
    if not any(
        coding.get("system") == SCOPE_SYSTEM and coding.get("code") == "patient-privacy"
        for coding in data["scope"].get("coding", [])
    ):
        raise _refused("Carnet's Consents have the scope patient-privacy.", "Consent.scope")
    patient_id = _reference_id(data.get("patient"), "Patient", "Consent.patient.reference")
    provision = data.get("provision")
    if not isinstance(provision, dict):
        raise _refused("Say what the patient decides in Consent.provision.", "Consent.provision")
    _refuse_unsupported(provision)
    permit = _permits(data, provision)
    if _is_emergency(provision):
        return _emergency_rule(provision, patient_id, permit)
    actors = provision.get("actor", [])
    if len(actors) != 1:
        raise _refused("Name exactly one professional or organisation.", "Consent.provision.actor")
    actor = actors[0]
    treating = any(
        coding.get("system") == ROLE_CODE and coding.get("code") == "PCP"
        for coding in actor["role"].get("coding", [])
    )
    kind = RuleKind.TREATING_DOCTOR if treating else RuleKind.GRANT if permit else RuleKind.BLOCK
    resource_type, actor_id = _actor_id(actor.get("reference"))
    if kind is not RuleKind.GRANT and resource_type != "Practitioner":
        raise _refused(
            "A block or a treating-doctor designation names one professional.", ACTOR_REFERENCE
        )
    if kind is RuleKind.TREATING_DOCTOR and not permit:
        raise _refused("A treating-doctor designation permits.", "Consent.provision.type")
    ends_at = _period_end(provision, now)
    if kind is not RuleKind.GRANT and ends_at is not None:
        raise _refused("Only a grant has an end date; this rule lasts until ended.", PERIOD_END)
    return RuleRequest(
        kind=kind,
        patient_id=patient_id,
        permit=permit,
        professional_id=actor_id if resource_type == "Practitioner" else None,
        organisation_id=actor_id if resource_type == "Organization" else None,
        level=_level(provision),
        ends_at=ends_at,
    )


def _refuse_unsupported(provision: dict[str, Any]) -> None:
    for element, reason in _UNSUPPORTED.items():
        if provision.get(element):
            raise _refused(reason, f"Consent.provision.{element}")
    for index, action in enumerate(provision.get("action", [])):
        codes = {coding.get("code") for coding in action.get("coding", [])}
        if "access" not in codes:
            raise _refused(
                "Carnet's rules are about access (reading the dossier) only.",
                f"Consent.provision.action[{index}]",
            )
    for index, purpose in enumerate(provision.get("purpose", [])):
        if (purpose.get("system"), purpose.get("code")) == (ACT_REASON, "TREAT"):
            raise _refused(
                "A care contact is recorded by the professional, with the patient present.",
                f"Consent.provision.purpose[{index}]",
            )
        if (purpose.get("system"), purpose.get("code")) != (ACT_REASON, "BTG"):
            raise _refused(
                "Carnet's rules hold for every purpose but emergencies (v3-ActReason BTG).",
                f"Consent.provision.purpose[{index}]",
            )


def _permits(data: dict[str, Any], provision: dict[str, Any]) -> bool:
    kind = provision.get("type")
    if kind is None:
        codes = {coding.get("code") for coding in data.get("policyRule", {}).get("coding", [])}
        kind = "permit" if "OPTIN" in codes else "deny" if "OPTOUT" in codes else None
    if kind not in ("permit", "deny"):
        raise _refused(
            "Say permit or deny (or a policyRule OPTIN or OPTOUT).", "Consent.provision.type"
        )
    return bool(kind == "permit")


def _is_emergency(provision: dict[str, Any]) -> bool:
    return any(purpose.get("code") == "BTG" for purpose in provision.get("purpose", []))


def _emergency_rule(provision: dict[str, Any], patient_id: uuid.UUID, permit: bool) -> RuleRequest:
    if provision.get("actor"):
        raise _refused(
            "An emergency choice holds for every emergency physician: name no actor.",
            "Consent.provision.actor",
        )
    if provision.get("period", {}).get("end"):
        raise _refused("An emergency choice lasts until withdrawn.", PERIOD_END)
    return RuleRequest(kind=RuleKind.EMERGENCY, patient_id=patient_id, permit=permit)


def _level(provision: dict[str, Any]) -> GrantLevel:
    codes: set[str] = set()
    for index, label in enumerate(provision.get("securityLabel", [])):
        code = label.get("code")
        if label.get("system") != CONFIDENTIALITY_SYSTEM or code not in ("N", "R"):
            raise _refused(
                "Access reaches normal (N) or also restricted (R) documents; "
                "secret ones (V) are never shared.",
                f"Consent.provision.securityLabel[{index}]",
            )
        codes.add(code)
    return GrantLevel.EXTENDED if "R" in codes else GrantLevel.NORMAL


def _period_end(provision: dict[str, Any], now: dt.datetime) -> dt.datetime | None:
    period = provision.get("period", {})
    start = _moment(period.get("start"), "Consent.provision.period.start", day_end=False)
    if start is not None and start > now + dt.timedelta(minutes=5):
        raise _refused("A rule starts when it is recorded.", "Consent.provision.period.start")
    return _moment(period.get("end"), PERIOD_END, day_end=True)


def _moment(text: str | None, where: str, *, day_end: bool) -> dt.datetime | None:
    """A FHIR date or dateTime as an instant; a bare date ends (or starts) with its day."""
    if text is None:
        return None
    if len(text) < 10:
        raise _refused("Give a day, not only a year or a month.", where)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _refused("Give a date, or a date and time with its time zone.", where) from None
    if len(text) == 10:
        moment = moment.replace(tzinfo=dt.UTC) + (
            dt.timedelta(days=1) if day_end else dt.timedelta()
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _actor_id(reference: Any) -> tuple[str, uuid.UUID]:
    text = (reference or {}).get("reference") or ""
    # ``Practitioner/<id>``, or the same after a base URL.
    resource_type = text.rstrip("/").rpartition("/")[0].rpartition("/")[2]
    if resource_type not in ("Practitioner", "Organization"):
        raise _refused("Name the actor as Practitioner/<id> or Organization/<id>.", ACTOR_REFERENCE)
    return resource_type, _reference_id(reference, resource_type, ACTOR_REFERENCE)


def _reference_id(reference: Any, resource_type: str, where: str) -> uuid.UUID:
    text = (reference or {}).get("reference") or ""
    try:
        return uuid.UUID(text.rpartition(f"{resource_type}/")[2] or "-")
    except ValueError:
        raise _refused(
            f"Expected a reference {resource_type}/<id> known to Carnet.", where
        ) from None


def _refused(message: str, where: str) -> InvalidResource:
    return InvalidResource(message, field=where)


def all_consents(
    *,
    grants: Iterable[Grant],
    blocks: Iterable[Block],
    treating_doctor: TreatingDoctor | None,
    care_contacts: Iterable[CareContact],
    preferences: AccessPreferences | None,
) -> list[dict[str, Any]]:
    """Every rule in force on a dossier as a Consent, the strongest kinds first."""
    resources = [treating_doctor_consent(treating_doctor)] if treating_doctor else []
    resources += [grant_consent(grant) for grant in grants]
    resources += [care_contact_consent(contact) for contact in care_contacts]
    resources += [block_consent(block) for block in blocks]
    emergency = emergency_consent(preferences) if preferences else None
    return resources + ([emergency] if emergency else [])
