"""AuditEvent search: ``GET /fhir/AuditEvent`` — who looked at what, for the patient.

A patient (or representative) searches their own dossier's events by ``date``, ``agent`` and
``action``/``subtype``; a security officer searches across dossiers; anybody else gets an empty
Bundle, as for a dossier without events. Events come oldest first: the order they happened in.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from carnet.access import history
from carnet.access.actors import ActorKind
from carnet.access.errors import AccessDenied, InvalidAccessRule
from carnet.audit.models import AuditAction
from carnet.fhir.capability import ResourceSupport, SearchParam
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import parse_reference
from carnet.fhir.mapping.audit_event import audit_event, fhir_action
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.search import date_range
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
SUPPORT = (
    ResourceSupport(
        "AuditEvent",
        interactions=("search-type",),
        search_params=(
            SearchParam("patient", "reference"),
            SearchParam("date", "date"),
            SearchParam("agent", "reference"),
            SearchParam("action", "token"),
            SearchParam("subtype", "token"),
            SearchParam("_count", "number"),
        ),
        profiles=(
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead",
        ),
    ),
)


@router.get("/AuditEvent", summary="Search the audit trail", tags=["Audit"])
def search_audit_events(
    *,
    actor: CurrentActor,
    platform: CurrentPlatform,
    base: BaseUrl,
    patient: Annotated[str | None, Query(description="Patient/<id>")] = None,
    date: Annotated[list[str] | None, Query(description="ge2026-01-01, lt2026-02-01…")] = None,
    agent: Annotated[str | None, Query(description="Practitioner/<id>")] = None,
    action: Annotated[str | None, Query(description="C, R, U, D or E")] = None,
    subtype: Annotated[str | None, Query(description="Carnet action: search, retrieve…")] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=history.MAX_PAGE)] = 100,
    offset: Annotated[int, Query(alias="_offset", ge=0)] = 0,
) -> JSONResponse:
    """Search the audit events the actor may read."""
    since, until = date_range(date or [], "date")
    query = history.HistoryQuery(
        patient_id=_reference(patient, "Patient", "patient"),
        since=since,
        until=until,
        agent_professional_id=_reference(agent, "Practitioner", "agent"),
        actions=_actions(action, subtype),
        limit=count,
        offset=offset,
    )
    try:
        with transaction(platform) as session:
            page = history.read_history(session, actor, query, clock=platform.clock)
            entries = [
                {
                    "fullUrl": f"{base}/AuditEvent/{resource['id']}",
                    "resource": resource,
                    "search": {"mode": "match"},
                }
                for resource in (
                    audit_event(event, for_patient=actor.kind is ActorKind.PATIENT)
                    for event in page.events
                )
            ]
            total = page.total
    except AccessDenied as denied:
        record_refusal(platform, denied)
        entries, total = [], 0
    params: dict[str, Any] = {
        key: value
        for key, value in {
            "patient": patient,
            "agent": agent,
            "action": action,
            "subtype": subtype,
            "_count": count,
        }.items()
        if value is not None
    }
    links = [{"relation": "self", "url": _url(base, params, date, offset)}]
    if offset + count < total:
        links.append({"relation": "next", "url": _url(base, params, date, offset + count)})
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": total,
        "link": links,
        "entry": entries,
    }
    return FhirResponse(bundle)


def _reference(value: str | None, resource_type: str, field: str) -> Any:
    if value is None:
        return None
    parsed = parse_reference(value, resource_type)
    if parsed is None:
        raise InvalidAccessRule(f"{field} must be {resource_type}/<id>.", field=field)
    return parsed


def _actions(action: str | None, subtype: str | None) -> tuple[AuditAction, ...]:
    chosen = set(AuditAction)
    if action is not None:
        if action not in ("C", "R", "U", "D", "E"):
            raise InvalidAccessRule("action must be C, R, U, D or E.", field="action")
        chosen = {item for item in chosen if fhir_action(item) == action}
    if subtype is not None:
        try:
            chosen &= {AuditAction(code) for code in subtype.split(",")}
        except ValueError as error:
            raise InvalidAccessRule(
                f"subtype must be among {', '.join(a.value for a in AuditAction)}.",
                field="subtype",
            ) from error
    return () if chosen == set(AuditAction) else tuple(sorted(chosen))


def _url(base: str, params: dict[str, Any], dates: list[str] | None, offset: int) -> str:
    pairs = list(params.items()) + [("date", value) for value in dates or []]
    return f"{base}/AuditEvent?{urlencode([*pairs, ('_offset', offset)])}"
