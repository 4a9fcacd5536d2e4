"""The dossier's access history in the export file: its audit trail as FHIR AuditEvents.

Each event of the dossier's trail the patient may read is an ``AuditEvent`` in the bundle,
shaped as ``GET /fhir/AuditEvent`` serves it to the patient (IHE BALP; another patient who
tried to open the dossier is not named).

On import the history is not replayed: the new Carnet's trail is hash-chained and signed, and
events that happened elsewhere must not look as if they happened here. It is kept, as read
from the file, in the details of the one import event (``AuditAction.LIFECYCLE``) on the new
dossier's trail, under ``imported_history``: read-only, sealed by that event's hash, and read
by the patient with the rest of their trail. A table of imported events would let them be
searched one by one; one import event keeps it in a place that exists and that nobody writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from carnet.audit.models import AuditEvent
from carnet.exports.fields import json_path
from carnet.fhir.mapping.audit_event import audit_event
from carnet.lifecycle.errors import InvalidExportFile

AUDIT_EVENT = "AuditEvent"


def history_resources(events: Iterable[AuditEvent]) -> list[dict[str, Any]]:
    """The trail's events, oldest first, as the patient reads them."""
    return [audit_event(event, for_patient=True) for event in events]


def imported_history(resources: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The exported events as the import keeps them: when, what, how it ended, who (and for
    whom, with which application) and on what, oldest first."""
    history = []
    for rid, resource in resources.items():
        recorded = resource.get("recorded")
        action = json_path(resource, "subtype", 0, "code")
        if not isinstance(recorded, str) or not isinstance(action, str):
            raise InvalidExportFile(
                f"AuditEvent/{rid} has no recorded time or action.", field=AUDIT_EVENT
            )
        agents = resource.get("agent") or []
        history.append(
            {
                "recorded": recorded,
                "action": action,
                "outcome": resource.get("outcome"),
                "reason": resource.get("outcomeDesc"),
                "who": _who(json_path(agents, 0, "who")),
                "application": json_path(agents, 1, "who", "identifier", "value"),
                "what": [
                    json_path(entity, "what", "reference") for entity in resource.get("entity", [])
                ],
            }
        )
    return sorted(history, key=lambda entry: str(entry["recorded"]))


def _who(who: object) -> str | None:
    if not isinstance(who, dict):
        return None
    reference = who.get("reference") or who.get("display")
    return str(reference) if reference else None
