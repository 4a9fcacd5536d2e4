"""Taking the structured facts out of a published FHIR document (a ``Bundle`` of type document).

Called by the way in that published the document, in the same transaction, with the dossier it
opened to publish: the facts then exist exactly when their document does. Each entry of a kind
Carnet keeps (``FactKind``) is validated as FHIR R4 (fhir.resources' R4B models, as every
resource Carnet takes); one that is not refuses the whole publication with ``InvalidDocument``
naming the entry's element, so nothing is half-written.

What is kept of a resource is the elements Carnet shows and serves (``_KEPT``), with every
reference to another resource of the document cut to its ``display`` (or left out): a fact
served alone must not point into a document the reader may not hold. The medication of a
``medicationReference`` is resolved in the Bundle and kept as a ``medicationCodeableConcept``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError
from sqlalchemy import Column
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.clinical.models import ClinicalFact, FactKind
from carnet.documents.errors import InvalidDocument
from carnet.documents.models import Document
from carnet.storable import check_column

# The MIME types a FHIR document travels as (MHD "fdoc": application/fhir+json).
FHIR_JSON = ("application/fhir+json", "application/json")
_BUNDLE_TYPES = ("document", "collection")
_COMMON = ("status", "category", "note")
_KEPT: dict[FactKind, tuple[str, ...]] = {
    FactKind.OBSERVATION: (
        *_COMMON,
        "code",
        "effectiveDateTime",
        "effectivePeriod",
        "effectiveInstant",
        "issued",
        "valueQuantity",
        "valueCodeableConcept",
        "valueString",
        "valueBoolean",
        "valueInteger",
        "valueRange",
        "valueRatio",
        "valueTime",
        "valueDateTime",
        "valuePeriod",
        "dataAbsentReason",
        "interpretation",
        "bodySite",
        "method",
        "referenceRange",
        "component",
    ),
    FactKind.IMMUNIZATION: (
        "status",
        "statusReason",
        "vaccineCode",
        "occurrenceDateTime",
        "occurrenceString",
        "recorded",
        "primarySource",
        "lotNumber",
        "expirationDate",
        "site",
        "route",
        "doseQuantity",
        "note",
        "protocolApplied",
    ),
    FactKind.ALLERGY: (
        "clinicalStatus",
        "verificationStatus",
        "type",
        "category",
        "criticality",
        "code",
        "onsetDateTime",
        "onsetPeriod",
        "onsetString",
        "recordedDate",
        "lastOccurrence",
        "note",
        "reaction",
    ),
    FactKind.CONDITION: (
        "clinicalStatus",
        "verificationStatus",
        "category",
        "severity",
        "code",
        "bodySite",
        "onsetDateTime",
        "onsetPeriod",
        "onsetString",
        "abatementDateTime",
        "abatementPeriod",
        "abatementString",
        "recordedDate",
        "note",
    ),
    FactKind.MEDICATION_STATEMENT: (
        *_COMMON,
        "statusReason",
        "medicationCodeableConcept",
        "effectiveDateTime",
        "effectivePeriod",
        "dateAsserted",
        "informationSource",
        "reasonCode",
        "dosage",
    ),
    FactKind.MEDICATION_REQUEST: (
        *_COMMON,
        "statusReason",
        "intent",
        "priority",
        "medicationCodeableConcept",
        "authoredOn",
        "requester",
        "reasonCode",
        "dosageInstruction",
        "dispenseRequest",
        "substitution",
    ),
    FactKind.MEDICATION_DISPENSE: (
        *_COMMON,
        "medicationCodeableConcept",
        "performer",
        "quantity",
        "daysSupply",
        "whenPrepared",
        "whenHandedOver",
        "dosageInstruction",
    ),
}
# Where each kind says what it is about (FHIR R4 names it ``code`` for most).
_CODE = {
    FactKind.IMMUNIZATION: "vaccineCode",
    FactKind.MEDICATION_STATEMENT: "medicationCodeableConcept",
    FactKind.MEDICATION_REQUEST: "medicationCodeableConcept",
    FactKind.MEDICATION_DISPENSE: "medicationCodeableConcept",
}


_COLUMNS: dict[str, Column[Any]] = {
    column.name: column for column in ClinicalFact.__table__.columns if isinstance(column, Column)
}


@dataclass(frozen=True)
class _Found:
    index: int
    kind: FactKind
    resource: dict[str, Any]


def record_facts(
    session: Session, dossier: OpenedDossier, published: Iterable[tuple[Document, bytes]]
) -> list[ClinicalFact]:
    """Record the facts of each published document that is a FHIR document Bundle.

    Serves a dossier opened to publish (``PUBLISH_DOCUMENTS``, ``REPLACE_DOCUMENT``); the
    publication is audited already, the facts are part of it. Other content (PDF, CDA, text, a
    Bundle of another type) brings no fact. Raises ``InvalidDocument`` naming the element of an
    entry that is not valid FHIR R4, or too long to keep.
    """
    dossier.require(purposes.PUBLISH_DOCUMENTS, purposes.REPLACE_DOCUMENT)
    recorded: list[ClinicalFact] = []
    now = dossier.clock.now()
    for document, content in published:
        bundle = _fhir_document(document, content)
        if bundle is None:
            continue
        for found in _entries(bundle):
            recorded.append(_fact(dossier, document, bundle, found, now))
    session.add_all(recorded)
    session.flush()
    return recorded


def _fhir_document(document: Document, content: bytes) -> dict[str, Any] | None:
    if document.mime_type.split(";")[0].strip().lower() not in FHIR_JSON:
        return None
    try:
        data = json.loads(content)
    except (UnicodeDecodeError, ValueError):
        return None  # the publication refused invalid JSON already; nothing to take
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        return None
    if data.get("type") not in _BUNDLE_TYPES:
        return None
    return data


def _entries(bundle: dict[str, Any]) -> list[_Found]:
    found = []
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = (entry or {}).get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        try:
            kind = FactKind(str(resource.get("resourceType")))
        except ValueError:
            continue
        path = f"Bundle.entry[{index}].resource"
        try:
            get_fhir_model_class(kind.value).model_validate(resource)
        except ValidationError as error:
            where = _fhir_path(path, error.errors()[0]["loc"])
            raise InvalidDocument(
                f"{where} is not valid FHIR R4: {error.errors()[0]['msg']}", field=where
            ) from error
        found.append(_Found(index, kind, resource))
    return found


def _fact(
    dossier: OpenedDossier,
    document: Document,
    bundle: dict[str, Any],
    found: _Found,
    now: dt.datetime,
) -> ClinicalFact:
    resource = _resolved_medication(found.resource, bundle)
    kept = {
        name: _without_references(resource[name]) for name in _KEPT[found.kind] if name in resource
    }
    kept = {name: value for name, value in kept.items() if value not in (None, [], {})}
    coding, text = _coding(kept.get(_CODE.get(found.kind, "code")))
    started, ended = _times(found.kind, kept)
    path = f"Bundle.entry[{found.index}].resource"
    fact = ClinicalFact(
        patient_id=dossier.patient_id,
        document_id=document.id,
        kind=found.kind,
        entry=found.index,
        code_system=coding.get("system") or "",
        code=coding.get("code") or "",
        display=coding.get("display") or text,
        category=_category(kept),
        status=_status(found.kind, kept),
        started_at=started,
        ended_at=ended,
        recorded_at=now,
        resource=kept,
    )
    for column, field in (
        ("code_system", "code.coding[0].system"),
        ("code", "code.coding[0].code"),
        ("display", "code.coding[0].display"),
        ("category", "category"),
        ("status", "status"),
    ):
        check_column(_COLUMNS[column], getattr(fact, column), field=f"{path}.{field}")
    return fact


def _resolved_medication(resource: dict[str, Any], bundle: dict[str, Any]) -> dict[str, Any]:
    reference = (resource.get("medicationReference") or {}).get("reference")
    if not reference or "medicationCodeableConcept" in resource:
        return resource
    for entry in bundle.get("entry") or []:
        candidate = (entry or {}).get("resource") or {}
        if candidate.get("resourceType") != "Medication":
            continue
        names = {entry.get("fullUrl"), f"Medication/{candidate.get('id')}"}
        if reference in names and candidate.get("code"):
            return {**resource, "medicationCodeableConcept": candidate["code"]}
    display = (resource.get("medicationReference") or {}).get("display")
    return {**resource, "medicationCodeableConcept": {"text": display or "medication"}}


def _without_references(value: Any) -> Any:
    """``value`` with every Reference cut to its display, or left out when it has none."""
    if isinstance(value, list):
        items = [_without_references(item) for item in value]
        return [item for item in items if item not in (None, {}, [])]
    if not isinstance(value, dict):
        return value
    if "reference" in value or ("identifier" in value and "type" in value):
        return {"display": value["display"]} if value.get("display") else None
    cleaned = {key: _without_references(item) for key, item in value.items()}
    return {key: item for key, item in cleaned.items() if item not in (None, {}, [])}


def _coding(concept: Any) -> tuple[dict[str, Any], str]:
    if not isinstance(concept, dict):
        return {}, ""
    codings = concept.get("coding") or [{}]
    return codings[0], concept.get("text") or ""


def _category(kept: dict[str, Any]) -> str:
    categories = kept.get("category") or []
    if isinstance(categories, dict):
        categories = [categories]
    for category in categories:
        if isinstance(category, str):  # AllergyIntolerance.category is a code
            return category
        coding, text = _coding(category)
        if coding.get("code") or text:
            return str(coding.get("code") or text)
    return ""


def _status(kind: FactKind, kept: dict[str, Any]) -> str:
    if kind in (FactKind.ALLERGY, FactKind.CONDITION):
        coding, _ = _coding(kept.get("clinicalStatus"))
        return str(coding.get("code") or "")
    return str(kept.get("status") or "")


# Where each kind says when what it tells began, and when it stopped, first found first.
_STARTS: dict[FactKind, tuple[str, ...]] = {
    FactKind.OBSERVATION: (
        "effectiveDateTime",
        "effectiveInstant",
        "effectivePeriod.start",
        "issued",
    ),
    FactKind.IMMUNIZATION: ("occurrenceDateTime", "recorded"),
    FactKind.ALLERGY: ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    FactKind.CONDITION: ("onsetDateTime", "onsetPeriod.start", "recordedDate"),
    FactKind.MEDICATION_STATEMENT: ("effectiveDateTime", "effectivePeriod.start", "dateAsserted"),
    FactKind.MEDICATION_REQUEST: ("authoredOn",),
    FactKind.MEDICATION_DISPENSE: ("whenHandedOver", "whenPrepared"),
}
_ENDS: dict[FactKind, tuple[str, ...]] = {
    FactKind.OBSERVATION: ("effectivePeriod.end",),
    FactKind.CONDITION: ("abatementDateTime", "abatementPeriod.end"),
    FactKind.MEDICATION_STATEMENT: ("effectivePeriod.end",),
}


def _times(kind: FactKind, kept: dict[str, Any]) -> tuple[dt.datetime | None, dt.datetime | None]:
    started = _first(kept, _STARTS[kind])
    ended = _first(kept, _ENDS.get(kind, ()))
    if kind is FactKind.MEDICATION_REQUEST:
        # A prescription's treatment runs over its dosage's bounds, when it gives them.
        bounds = _bounds(kept.get("dosageInstruction"))
        started = instant(bounds.get("start")) or started
        ended = instant(bounds.get("end"))
    return started, ended


def _first(kept: dict[str, Any], names: tuple[str, ...]) -> dt.datetime | None:
    for name in names:
        head, _, tail = name.partition(".")
        value = kept.get(head)
        if tail and isinstance(value, dict):
            value = value.get(tail)
        moment = instant(value)
        if moment is not None:
            return moment
    return None


def _bounds(dosages: Any) -> dict[str, Any]:
    if not isinstance(dosages, list) or not dosages:
        return {}
    repeat = ((dosages[0] or {}).get("timing") or {}).get("repeat") or {}
    bounds = repeat.get("boundsPeriod")
    return bounds if isinstance(bounds, dict) else {}


def instant(value: Any) -> dt.datetime | None:
    """A FHIR date or dateTime (``2020``, ``2020-05``, ``2020-05-01``, with a time and offset)
    as a UTC instant, its first moment for a partial date; None if it is none."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if len(text) == 4:
        text += "-01-01"
    elif len(text) == 7:
        text += "-01"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _fhir_path(root: str, location: Sequence[int | str]) -> str:
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "value_error", "model_")) or " " in part:
            continue
        else:
            path += f".{part}"
    return path
