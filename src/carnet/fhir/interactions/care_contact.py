"""The care contact over FHIR: the patient present opens their dossier to a professional.

Three operations (http://hl7.org/fhir/R4/operations.html), each taking and answering a
``Parameters`` resource:

- ``POST /fhir/Patient/{id}/$care-contact-code`` — the patient (or their representative) asks
  for a one-time code to show a professional: ``code`` (valueString, 8 digits) and ``expires``
  (valueInstant, 15 minutes later). Needs ``Consent.c`` in the token's scope.
- ``POST /fhir/Patient/{id}/$care-contact`` — the professional records the care contact:
  ``code`` (valueString), the patient's code, or ``method`` = ``card`` (valueCode), the patient's
  card read in the professional's software (a card sign-in only). The answer names the window
  opened: ``consent`` (the care contact as the ``Consent`` that ``/fhir/Consent`` lists) and
  ``windowEnd`` (valueDateTime). Needs ``Consent.c``.
- ``POST /fhir/Consent/{id}/$adjust-window`` — the patient moves the end of a care-contact
  window (``end``, valueDateTime; a past instant ends it now). Needs ``Consent.u``. Ending it at
  once is also ``DELETE /fhir/Consent/{id}`` (see ``consent.py``).

``access.care`` asks the policy and records every step on the dossier's audit trail; a refusal
answers 404 like a dossier that does not exist, recorded. A wrong or expired code is 422 with
``expression`` ``Parameters.parameter[code]``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from carnet.access import care as access_care
from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, InvalidAccessRule
from carnet.access.models import CareContactMethod
from carnet.access.scopes import Interaction
from carnet.audit.models import AuditAction
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.consent import RuleKind, care_contact_consent, parse_consent_id
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import InvalidPatientReference
from carnet.fhir.patient_reference import patient_id as patient_of
from carnet.fhir.validation import InvalidResource, read_json, validate
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (
    ResourceSupport("Patient", operations=("care-contact", "care-contact-code")),
    ResourceSupport("Consent", operations=("adjust-window",)),
)
_MEDIA_TYPES = ("application/fhir+json", "application/json")


async def parameters_body(request: Request) -> dict[str, Any]:
    """A dependency: the request's ``Parameters``, valid FHIR R4, as ``{name: part}``.

    An empty body is no parameter at all (the code operation takes none).
    """
    body = await request.body()
    if not body.strip():
        return {}
    if request.headers.get("content-type", "").split(";")[0].strip() not in _MEDIA_TYPES:
        raise HTTPException(415, "Send the Parameters as application/fhir+json.")
    data = read_json(body, root="Parameters")
    validate(data, expected="Parameters")
    parts: dict[str, Any] = {}
    for part in data.get("parameter", []):
        if part["name"] in parts:
            raise InvalidResource(
                f"Give {part['name']} once.", field=f"Parameters.parameter[{part['name']}]"
            )
        parts[part["name"]] = part
    return parts


ParametersBody = Annotated[dict[str, Any], Depends(parameters_body)]


@router.post(
    "/Patient/{patient}/$care-contact-code",
    summary="A one-time code the patient shows a professional",
    tags=["Care contact"],
)
def care_contact_code(
    patient: str, actor: CurrentActor, platform: CurrentPlatform, parameters: ParametersBody
) -> JSONResponse:
    """Issue the patient's one-time code (stored hashed; this answer is the only copy)."""
    patient_id = _patient(patient)
    _require_scope(actor, Interaction.CREATE, patient_id, AuditAction.CARE_CONTACT_CODE)
    clock = platform.clock
    with transaction(platform) as session:
        code = access_care.issue_care_contact_code(
            session,
            open_dossier(session, actor, patient_id, purposes.ISSUE_CARE_CONTACT_CODE, clock=clock),
        )
    expires = clock.now() + access_care.CARE_CONTACT_CODE_LIFETIME
    return FhirResponse(
        _parameters(
            {"name": "code", "valueString": code},
            {"name": "expires", "valueInstant": _instant(expires)},
        ),
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/Patient/{patient}/$care-contact",
    summary="Record a care contact with the patient present",
    tags=["Care contact"],
)
def record_care_contact(
    patient: str,
    actor: CurrentActor,
    platform: CurrentPlatform,
    base: BaseUrl,
    parameters: ParametersBody,
) -> JSONResponse:
    """Open the care-contact window on the patient's code or card; answer the window."""
    patient_id = _patient(patient)
    _require_scope(actor, Interaction.CREATE, patient_id, AuditAction.CARE_CONTACT)
    method, code = _presence(parameters)
    try:
        with transaction(platform) as session:
            dossier = open_dossier(
                session, actor, patient_id, purposes.RECORD_CARE_CONTACT, clock=platform.clock
            )
            contact = access_care.record_care_contact(session, dossier, method=method, code=code)
            consent = care_contact_consent(contact)
    except InvalidAccessRule as error:
        raise InvalidResource(
            error.message, field=f"Parameters.parameter[{error.field or 'code'}]"
        ) from error
    return FhirResponse(
        _parameters(
            {"name": "consent", "resource": consent},
            {"name": "windowEnd", "valueDateTime": _instant(contact.window_ends_at)},
        ),
        headers={"Content-Location": f"{base}/Consent/{consent['id']}"},
    )


@router.post(
    "/Consent/{resource_id}/$adjust-window",
    summary="Move the end of a care-contact window",
    tags=["Care contact"],
)
def adjust_window(
    resource_id: str, actor: CurrentActor, platform: CurrentPlatform, parameters: ParametersBody
) -> JSONResponse:
    """The patient shortens, extends (up to 365 days from the contact) or ends the window."""
    parsed = parse_consent_id(resource_id)
    if parsed is None or parsed[0] is not RuleKind.CARE_CONTACT:
        raise AccessDenied("no such care contact")
    _, patient_id, contact_id = parsed
    _require_scope(actor, Interaction.UPDATE, patient_id, AuditAction.CARE_CONTACT)
    ends_at = _end(parameters)
    try:
        with transaction(platform) as session:
            dossier = open_dossier(
                session, actor, patient_id, purposes.ADJUST_CARE_CONTACT, clock=platform.clock
            )
            contact = access_care.adjust_care_contact(session, dossier, contact_id, ends_at=ends_at)
            consent = care_contact_consent(contact)
            ended = contact.ended_at is not None
    except InvalidAccessRule as error:
        raise InvalidResource(error.message, field="Parameters.parameter[end]") from error
    return FhirResponse(
        _parameters(
            {"name": "consent", "resource": consent},
            {"name": "ended", "valueBoolean": ended},
        )
    )


def _patient(reference: str) -> uuid.UUID:
    try:
        return patient_of(reference, field="patient")
    except InvalidPatientReference:
        raise AccessDenied("malformed id") from None


def _require_scope(
    actor: Actor, interaction: Interaction, patient_id: uuid.UUID, audit: AuditAction
) -> None:
    access_guard.check_scope(actor, "Consent", interaction, patient_id, audit=audit)


def _presence(parameters: dict[str, Any]) -> tuple[CareContactMethod, str | None]:
    """How the patient's presence is shown: their code, or their card."""
    method = parameters.get("method", {}).get("valueCode", CareContactMethod.CODE.value)
    if method == CareContactMethod.CARD.value:
        return CareContactMethod.CARD, None
    if method != CareContactMethod.CODE.value:
        raise InvalidResource("method is code or card.", field="Parameters.parameter[method]")
    code = parameters.get("code", {}).get("valueString")
    if not code:
        raise InvalidResource(
            "Give the patient's code (valueString).", field="Parameters.parameter[code]"
        )
    return CareContactMethod.CODE, "".join(character for character in code if character.isdigit())


def _end(parameters: dict[str, Any]) -> dt.datetime:
    text = parameters.get("end", {}).get("valueDateTime")
    where = "Parameters.parameter[end]"
    if not text:
        raise InvalidResource("Give the new end of the window (valueDateTime).", field=where)
    try:
        end = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidResource("end is not a date and time.", field=where) from None
    if end.tzinfo is None:
        raise InvalidResource("end needs a time zone (for example Z).", field=where)
    return end.astimezone(dt.UTC)


def _parameters(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def _instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
