"""An audit event as a FHIR R4 ``AuditEvent``, shaped after IHE Basic Audit Log Patterns.

http://hl7.org/fhir/R4/auditevent.html and https://profiles.ihe.net/ITI/BALP/
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.fhir.ids import document_resource_id

_EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_CARNET_ACTIONS = "https://carnet.health/fhir/CodeSystem/audit-action"
_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_ROLE = "http://terminology.hl7.org/CodeSystem/extra-security-role-type"
# FHIR AuditEvent.action: Create, Read, Update, Delete, Execute (searches are Execute in BALP).
_FHIR_ACTION = {
    AuditAction.SEARCH: "E",
    AuditAction.READ: "R",
    AuditAction.RETRIEVE: "R",
    AuditAction.PUBLISH: "C",
    AuditAction.REPLACE: "C",
    AuditAction.CARE_CONTACT_CODE: "C",
    AuditAction.REPRESENTATION: "C",
    AuditAction.GRANT: "C",
    AuditAction.ACCESS_OVERVIEW: "R",
    AuditAction.AUDIT_SEARCH: "E",
    AuditAction.EXPORT: "R",
    AuditAction.BREAK_GLASS: "E",
    AuditAction.SIGN_IN: "E",
}


def audit_event_id(event: AuditEvent) -> str:
    """The FHIR id of an event: its chain and its place in it."""
    chain = base64.b32encode(event.chain_id.bytes).decode("ascii").rstrip("=").lower()
    return f"{chain}-{event.seq}"


def fhir_action(action: AuditAction) -> str:
    """The FHIR AuditEvent.action code of a Carnet action."""
    return _FHIR_ACTION.get(action, "U")


def audit_event(event: AuditEvent, *, for_patient: bool = False) -> dict[str, Any]:
    """The AuditEvent resource of ``event``; ``for_patient`` when a patient (or their
    representative) reads it, who is not told which other patient made an attempt."""
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": audit_event_id(event),
        "type": {"system": _EVENT_TYPE, "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": _CARNET_ACTIONS, "code": event.action.value}],
        "action": fhir_action(event.action),
        "recorded": event.recorded_at.isoformat().replace("+00:00", "Z"),
        "outcome": "0" if event.outcome is AuditOutcome.ALLOWED else "4",
        "agent": _agents(event, for_patient=for_patient),
        "source": {"observer": {"display": "Carnet"}},
    }
    if event.reason:
        resource["outcomeDesc"] = event.reason
    if event.action is AuditAction.BREAK_GLASS:
        resource["purposeOfEvent"] = [
            {"coding": [{"system": _ACT_REASON, "code": "BTG", "display": "break the glass"}]}
        ]
    entities = []
    if event.patient_id is not None:
        entities.append({"what": {"reference": f"Patient/{event.patient_id}"}, "role": _role("1")})
        for entity in json.loads(event.entity_ids):
            entities.append(
                {
                    "what": {
                        "reference": "DocumentReference/"
                        + document_resource_id(event.patient_id, uuid.UUID(entity))
                    },
                    "role": _role("3"),
                }
            )
    if entities:
        resource["entity"] = entities
    return resource


def _agents(event: AuditEvent, *, for_patient: bool) -> list[dict[str, Any]]:
    who: dict[str, Any] = {"display": event.agent_subject}
    if event.agent_professional_id:
        who = {"reference": f"Practitioner/{event.agent_professional_id}"}
    elif event.agent_kind == "patient":
        who = {"reference": event.agent_subject}
        if _another_patient(event):
            # Not the dossier's patient nor their representative: named as such, and the
            # other person's identity is the security officer's to see, not the patient's.
            who = {"display": "another patient"} | ({} if for_patient else who)
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": _ROLE, "code": "humanuser", "display": "human user"}]}
        if event.agent_kind in ("patient", "professional")
        else {"coding": [{"system": _ROLE, "code": "dataprocessor"}]},
        "who": who,
        "requestor": True,
    }
    if event.agent_organisation_id:
        agent["location"] = {"reference": f"Organization/{event.agent_organisation_id}"}
    if event.network_address:
        agent["network"] = {"address": event.network_address, "type": "2"}
    agents = [agent]
    if event.on_behalf_of:
        agent["extension"] = [
            {
                "url": "https://carnet.health/fhir/StructureDefinition/on-behalf-of",
                "valueReference": {"reference": f"Patient/{event.on_behalf_of}"},
            }
        ]
    if event.client_id:
        agents.append(
            {
                "type": {"coding": [{"system": _ROLE, "code": "application"}]},
                "who": {"identifier": {"value": event.client_id}},
                "requestor": False,
            }
        )
    return agents


def _another_patient(event: AuditEvent) -> bool:
    return (
        event.patient_id is not None
        and event.agent_subject != f"Patient/{event.patient_id}"
        and event.on_behalf_of != event.patient_id
    )


def _role(code: str) -> dict[str, str]:
    return {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": code}
