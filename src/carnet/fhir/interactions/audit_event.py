"""AuditEvent search: ``GET /fhir/AuditEvent`` — who looked at what, for the patient.

A patient (or representative) searches their own dossier's events by ``date``, ``agent`` and
``action``/``subtype``; a security officer searches across dossiers; anybody else gets an empty
Bundle, as for a dossier without events. Events come oldest first: the order they happened in.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.access import history, purposes
from carnet.access.actors import ActorKind
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.audit.models import AuditAction
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.audit_event import audit_event, fhir_action
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import patient_id
from carnet.fhir.search import InvalidSearch, Parameter, Search, SearchPairs, SearchType
from carnet.fhir.searchset import Found, searchset
from carnet.web.authentication import CurrentActor
from carnet.web.refusals import record_refusal

router = APIRouter()
SEARCH = SearchType(
    "AuditEvent",
    parameters=(
        Parameter("patient", "reference"),
        Parameter("date", "date", repeats=True),
        Parameter("agent", "reference"),
        Parameter("action", "token"),
        Parameter("subtype", "token"),
    ),
    max_count=history.MAX_PAGE,
    default_count=100,
    declared=(Parameter("_count", "number"),),
)
SUPPORT = (
    ResourceSupport(
        "AuditEvent",
        interactions=("search-type",),
        search_params=SEARCH.search_params(),
        profiles=(
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead",
        ),
    ),
)
# ``_summary=count`` reads a page past any trail's end: the count, and no event read out.
_PAST_THE_END = 10**9


@router.get("/AuditEvent", summary="Search the audit trail", tags=["Audit"])
def search_audit_events(
    *, pairs: SearchPairs, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Search the audit events the actor may read (``patient``, ``date`` as ge2026-01-01,
    lt2026-02-01…, ``agent`` as Practitioner/<id>, ``action`` C, R, U, D or E, ``subtype`` a
    Carnet action such as search or retrieve)."""
    search = Search.read(pairs, SEARCH)
    since, until = search.dates("date")
    patient = search.one("patient")
    query = history.HistoryQuery(
        patient_id=None if patient is None else patient_id(patient, base=base, field="patient"),
        since=since,
        until=until,
        agent_professional_id=search.reference("agent", "Practitioner"),
        actions=_actions(search.one("action"), search.one("subtype")),
        limit=search.count,
        offset=_PAST_THE_END if search.count_only else search.offset,
    )
    try:
        with transaction(platform) as session:
            if query.patient_id is None or actor.kind is ActorKind.SECURITY_OFFICER:
                page = history.read_trail_across(session, actor, query, clock=platform.clock)
            else:
                dossier = open_dossier(
                    session,
                    actor,
                    query.patient_id,
                    purposes.READ_AUDIT_TRAIL,
                    clock=platform.clock,
                )
                page = history.read_dossier_trail(session, dossier, query)
            resources = [
                audit_event(event, for_patient=actor.kind is ActorKind.PATIENT)
                for event in page.events
            ]
            total = page.total
    except AccessDenied as denied:
        record_refusal(platform, denied)
        resources, total = [], 0
    return FhirResponse(searchset(base, search, Found(resources, total=total)))


def _actions(action: str | None, subtype: str | None) -> tuple[AuditAction, ...]:
    chosen = set(AuditAction)
    if action is not None:
        if action not in ("C", "R", "U", "D", "E"):
            raise InvalidSearch("action must be C, R, U, D or E.", field="action")
        chosen = {item for item in chosen if fhir_action(item) == action}
    if subtype is not None:
        try:
            chosen &= {AuditAction(code) for code in subtype.split(",")}
        except ValueError as error:
            raise InvalidSearch(
                f"subtype must be among {', '.join(a.value for a in AuditAction)}.",
                field="subtype",
            ) from error
    return () if chosen == set(AuditAction) else tuple(sorted(chosen))
