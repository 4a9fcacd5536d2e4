"""The patient's access rules as FHIR ``Consent``: search, read, create, delete.

http://hl7.org/fhir/R4/consent.html (scope ``patient-privacy``; the mapping is in
``fhir/mapping/consent.py``):

- ``GET /fhir/Consent?patient=Patient/<id>`` — one Consent per rule in force: grants, open
  care-contact windows, blocks, the treating doctor, the emergency choice;
- ``GET /fhir/Consent/{id}`` — one of them;
- ``POST /fhir/Consent`` — record the rule a Consent asks for (201, with its ``Location``);
- ``DELETE /fhir/Consent/{id}`` — end it: revoke the grant, lift the block, end the designation
  or the care-contact window, withdraw the emergency choice (204). The rule stays in the history.

Everything goes through ``access.rules``: only the patient, or their representative, with a
strong sign-in, reads or changes the rules. Anyone else gets 404 for a read, a creation or a
deletion, and an empty Bundle for a search, as for a dossier that does not exist; each refusal
is recorded. Tokens need Consent scopes (``patient/Consent.rs``, ``.c`` to create, ``.d`` to
delete). An incoming Consent is validated against FHIR R4, then refused, naming the element at
fault in ``expression``, if Carnet's rules cannot say what it says.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier, Purpose, open_dossier
from carnet.access.errors import (
    AccessDenied,
    AccessRuleNotFound,
    InvalidAccessRule,
)
from carnet.access.scopes import Interaction
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory.errors import OrganisationNotFound, ProfessionalNotFound
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.consent import (
    ACTOR_REFERENCE,
    PERIOD_END,
    RuleKind,
    RuleRequest,
    all_consents,
    block_consent,
    emergency_consent,
    grant_consent,
    parse_consent_id,
    rule_from_consent,
    treating_doctor_consent,
)
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import patient_id as patient_of
from carnet.fhir.search import InvalidSearch, Parameter, Search, SearchPairs, SearchType
from carnet.fhir.searchset import Found, searchset
from carnet.fhir.validation import InvalidResource, read_json
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
SEARCH = SearchType("Consent", parameters=(Parameter("patient", "reference"),))
SUPPORT = (
    ResourceSupport(
        "Consent",
        interactions=("read", "search-type", "create", "delete"),
        search_params=SEARCH.search_params(),
    ),
)
_MEDIA_TYPES = ("application/fhir+json", "application/json")
# Where an access rule's fault lies in the Consent that asked for it.
_EXPRESSIONS = {
    "grantee": "Consent.provision.actor",
    "professional": ACTOR_REFERENCE,
    "ends_at": PERIOD_END,
    "emergency_widened": "Consent.provision.purpose",
}


async def consent_body(request: Request) -> Any:
    """A dependency: the request's JSON body, sent as ``application/fhir+json``."""
    if request.headers.get("content-type", "").split(";")[0].strip() not in _MEDIA_TYPES:
        raise HTTPException(415, "Send the Consent as application/fhir+json.")
    return read_json(await request.body(), root="Consent")


ConsentBody = Annotated[Any, Depends(consent_body)]


@router.get("/Consent", summary="The patient's access rules", tags=["Consent"])
def search_consents(
    *, pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Every rule in force on the dossier, one Consent each (the patient or representative)."""
    search = Search.read(pairs, SEARCH)
    reference = search.one("patient")
    if reference is None:
        raise InvalidSearch("Give the patient whose rules to list.", field="patient")
    patient_id = patient_of(reference, base=base, field="patient")
    _require_scope(actor, Interaction.SEARCH, patient_id, AuditAction.ACCESS_OVERVIEW)
    try:
        with transaction(platform) as session:
            resources = _dossier_consents(session, actor, patient_id, platform.clock)
    except AccessDenied as denied:
        record_refusal(platform, denied)
        resources = []
    # The rules in force are read whole; the page is cut from them.
    page = resources[search.offset : search.offset + search.count]
    return FhirResponse(searchset(base, search, Found(page, total=len(resources))))


@router.get("/Consent/{resource_id}", summary="One access rule", tags=["Consent"])
def read_consent(
    *, resource_id: str, actor: CurrentActor, platform: CurrentPlatform
) -> JSONResponse:
    """One rule in force, as a Consent; 404 once it has ended."""
    _, patient_id, _ = _parse(resource_id)
    _require_scope(actor, Interaction.READ, patient_id, AuditAction.ACCESS_OVERVIEW)
    with transaction(platform) as session:
        resources = _dossier_consents(session, actor, patient_id, platform.clock)
    for resource in resources:
        if resource["id"] == resource_id:
            return FhirResponse(resource)
    raise AccessRuleNotFound("rule in force")


@router.post("/Consent", summary="Record an access rule", tags=["Consent"], status_code=201)
def create_consent(
    *, body: ConsentBody, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Record the grant, block, designation or emergency choice the Consent asks for."""
    rule = rule_from_consent(body, now=platform.clock.now())
    _require_scope(actor, Interaction.CREATE, rule.patient_id, _AUDIT_OF_CREATION[rule.kind])
    with transaction(platform) as session:
        resource = _record(session, actor, rule, platform.clock)
    return FhirResponse(
        resource,
        status_code=201,
        headers={"Location": f"{base}/Consent/{resource['id']}"},
    )


@router.delete("/Consent/{resource_id}", summary="End an access rule", tags=["Consent"])
def delete_consent(*, resource_id: str, actor: CurrentActor, platform: CurrentPlatform) -> Response:
    """End the rule now; it stays in the dossier's history."""
    kind, patient_id, rule_id = _parse(resource_id)
    _require_scope(actor, Interaction.DELETE, patient_id, _AUDIT_OF_ENDING[kind])
    with transaction(platform) as session:
        purpose, end = _ENDINGS[kind]
        end(
            session,
            open_dossier(session, actor, patient_id, purpose, clock=platform.clock),
            rule_id,
        )
    return Response(status_code=204)


def _parse(resource_id: str) -> tuple[RuleKind, uuid.UUID, uuid.UUID]:
    parsed = parse_consent_id(resource_id)
    if parsed is None:
        raise AccessDenied("malformed id")
    return parsed


def _require_scope(
    actor: Actor, interaction: Interaction, patient_id: uuid.UUID, audit: AuditAction
) -> None:
    access_guard.check_scope(actor, "Consent", interaction, patient_id, audit=audit)


def _dossier_consents(
    session: Session, actor: Actor, patient_id: uuid.UUID, clock: Clock
) -> list[dict[str, Any]]:
    overview = access_rules.access_overview(
        session, open_dossier(session, actor, patient_id, purposes.READ_ACCESS_RULES, clock=clock)
    )
    return all_consents(
        grants=overview.grants,
        blocks=overview.blocks,
        treating_doctor=overview.treating_doctor,
        care_contacts=overview.care_contacts,
        preferences=access_rules.preferences_in_force(session, patient_id),
    )


def _record(session: Session, actor: Actor, rule: RuleRequest, clock: Clock) -> dict[str, Any]:
    patient_id = rule.patient_id
    try:
        if rule.kind is RuleKind.GRANT:
            grant = access_rules.grant_access(
                session,
                open_dossier(session, actor, patient_id, purposes.GRANT_ACCESS, clock=clock),
                level=rule.level,
                professional_id=rule.professional_id,
                organisation_id=rule.organisation_id,
                ends_at=rule.ends_at,
            )
            return grant_consent(grant)
        if rule.kind is RuleKind.EMERGENCY:
            chosen = replace(
                access_rules.current_preferences(session, patient_id),
                emergency_opposed=not rule.permit,
                emergency_widened=rule.permit,
            )
            row = access_rules.set_preferences(
                session,
                open_dossier(
                    session, actor, patient_id, purposes.SET_ACCESS_PREFERENCES, clock=clock
                ),
                chosen,
            )
            resource = emergency_consent(row)
            assert resource is not None  # the row makes an emergency choice
            return resource
        assert rule.professional_id is not None  # blocks and designations name a professional
        if rule.kind is RuleKind.BLOCK:
            block = access_rules.block_professional(
                session,
                open_dossier(session, actor, patient_id, purposes.BLOCK_PROFESSIONAL, clock=clock),
                rule.professional_id,
            )
            return block_consent(block)
        designation = access_rules.designate_treating_doctor(
            session,
            open_dossier(
                session, actor, patient_id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock
            ),
            rule.professional_id,
        )
        return treating_doctor_consent(designation)
    except InvalidAccessRule as error:
        where = _EXPRESSIONS.get(error.field or "", "Consent.provision")
        raise InvalidResource(error.message, field=where) from error
    except (ProfessionalNotFound, OrganisationNotFound) as error:
        raise InvalidResource(
            "No such professional or organisation in the directory.", field=ACTOR_REFERENCE
        ) from error


def _end_care_contact(session: Session, dossier: OpenedDossier, contact_id: uuid.UUID) -> object:
    return access_care.adjust_care_contact(
        session, dossier, contact_id, ends_at=dossier.clock.now()
    )


# How each kind of rule is ended: the purpose the dossier is opened for, and the service.
_ENDINGS: dict[RuleKind, tuple[Purpose, Callable[[Session, OpenedDossier, uuid.UUID], object]]] = {
    RuleKind.GRANT: (purposes.REVOKE_ACCESS, access_rules.revoke_grant),
    RuleKind.BLOCK: (purposes.LIFT_BLOCK, access_rules.lift_block_by_id),
    RuleKind.TREATING_DOCTOR: (
        purposes.DESIGNATE_TREATING_DOCTOR,
        access_rules.end_treating_doctor,
    ),
    RuleKind.CARE_CONTACT: (purposes.ADJUST_CARE_CONTACT, _end_care_contact),
    RuleKind.EMERGENCY: (purposes.SET_ACCESS_PREFERENCES, access_rules.withdraw_emergency_choice),
}
_AUDIT_OF_CREATION = {
    RuleKind.GRANT: AuditAction.GRANT,
    RuleKind.BLOCK: AuditAction.BLOCK,
    RuleKind.TREATING_DOCTOR: AuditAction.DESIGNATE,
    RuleKind.EMERGENCY: AuditAction.PREFERENCES,
    RuleKind.CARE_CONTACT: AuditAction.CARE_CONTACT,
}
_AUDIT_OF_ENDING = {
    **_AUDIT_OF_CREATION,
    RuleKind.GRANT: AuditAction.REVOKE,
    RuleKind.BLOCK: AuditAction.UNBLOCK,
}
