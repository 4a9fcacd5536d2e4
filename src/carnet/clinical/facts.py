"""Reading a dossier's clinical facts, through the door: the policy on the source document decides.

A fact has no access rule of its own. It is seen exactly when the document it came with is
(``documents.guard.sees``): masking, confidentiality, the patient's blocks and the profession
matrix reach the fact as they reach the document. Only facts of *current* documents count: a
withdrawn (entered-in-error) document takes its facts away, and a replaced (superseded) one
gives way to its replacement, which brings its own.

Two sources answer as one: the facts taken from FHIR documents (``clinical_facts``) and the
laboratory results received over HL7 v2 (``carnet.laboratory``'s ``lab_results``), which are
read as observations rather than copied. Each kind's own SMART scope (``Observation``,
``Immunization``…) is checked here, as the essential data's categories are.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.access.errors import InsufficientScope
from carnet.access.policy import scope_allows
from carnet.access.scopes import Interaction
from carnet.audit.service import Refusal
from carnet.clinical.models import ClinicalFact, FactKind
from carnet.documents import guard
from carnet.documents.models import Document, DocumentStatus
from carnet.laboratory.models import LabResult

LOINC = "http://loinc.org"
# HL7 v2 table 0396 coding-system names, as the FHIR systems searches name them by.
_V2_SYSTEMS = {"LN": LOINC, "SCT": "http://snomed.info/sct", "SNM": "http://snomed.info/sct"}
_V2_STATUS = {"F": "final", "P": "preliminary", "C": "corrected", "X": "cancelled"}
_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True)
class Fact:
    """One fact the actor may see: what, when, its status, and the document it came from.

    ``resource`` holds the FHIR elements kept of it (no id, subject nor references);
    ``from_laboratory`` marks a result received over HL7 v2.
    """

    kind: FactKind
    id: uuid.UUID
    patient_id: uuid.UUID
    document_id: uuid.UUID
    code_system: str
    code: str
    display: str
    category: str
    status: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    resource: Mapping[str, Any]
    from_laboratory: bool = False


@dataclass(frozen=True)
class Code:
    """A code to match: ``system`` None matches any system, ``""`` only facts without one."""

    system: str | None
    code: str


@dataclass(frozen=True)
class FactFilter:
    """What a search asks for; empty means anything. ``since``/``until`` bound ``started_at``
    (half-open); ``ids``, the facts by id (None: any)."""

    codes: tuple[Code, ...] = ()
    categories: tuple[str, ...] = ()
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    ids: tuple[uuid.UUID, ...] | None = None
    newest_first: bool = True


@dataclass(frozen=True)
class FactPage:
    """One page of the facts seen, how many there are in all, and whether the policy kept
    some from the actor (``withheld``, said without saying which)."""

    facts: list[Fact]
    total: int
    withheld: bool = False
    kinds: tuple[FactKind, ...] = field(default=())
    # The kinds of the facts kept from the actor: a page of several kinds read once (the
    # portal's health page) still says which of its lists may be incomplete.
    withheld_kinds: frozenset[FactKind] = field(default=frozenset())


def kinds_in_scope(dossier: OpenedDossier, kinds: Iterable[FactKind]) -> tuple[FactKind, ...]:
    """The kinds whose SMART scope the dossier's actor holds for the purpose it was opened."""
    interaction = _interaction(dossier)
    return tuple(
        kind
        for kind in kinds
        if scope_allows(dossier.actor, kind.value, interaction, dossier.patient_id)
    )


def find_facts(
    session: Session,
    dossier: OpenedDossier,
    kinds: Sequence[FactKind],
    filters: FactFilter = FactFilter(),
    *,
    offset: int = 0,
    limit: int | None = None,
) -> FactPage:
    """The facts of ``kinds`` the actor may see, matching ``filters``, by date (newest first
    unless asked otherwise), from ``offset``, at most ``limit``.

    Serves a dossier opened to find or read clinical facts. Raises ``InsufficientScope`` for a
    kind the token does not cover. The facts returned are recorded on the dossier's trail by
    their source documents (a consultation: the basis, the patient's first-look notice).
    """
    dossier.require(purposes.FIND_CLINICAL_FACTS, purposes.READ_CLINICAL_FACTS)
    missing = [kind for kind in kinds if kind not in kinds_in_scope(dossier, kinds)]
    if missing:
        needed = f"{_interaction(dossier).name.lower()} on {missing[0].value}"
        raise InsufficientScope(needed).for_audit(
            Refusal(dossier.actor.agent, dossier.purpose.audit, "scope", dossier.patient_id)
        )
    seen, withheld_kinds = _seen(session, dossier, kinds, filters)
    seen.sort(key=_date_key, reverse=filters.newest_first)
    page = seen[offset : None if limit is None else offset + limit]
    dossier.record(
        session,
        dossier.purpose.audit,
        entity_ids=sorted({fact.document_id for fact in page}),
        details={"resource": ",".join(kind.value for kind in kinds), "count": len(page)},
    )
    return FactPage(
        page,
        total=len(seen),
        withheld=bool(withheld_kinds),
        kinds=tuple(kinds),
        withheld_kinds=withheld_kinds,
    )


def get_fact(session: Session, dossier: OpenedDossier, kind: FactKind, fact_id: uuid.UUID) -> Fact:
    """The fact ``fact_id`` of ``kind``, if the actor may see its source document.

    Serves a dossier opened to read clinical facts. Raises ``InsufficientScope`` without the
    kind's read scope, and ``AccessDenied`` — audited, and the same as for a missing fact —
    when there is no such fact or the policy keeps its document from the actor.
    """
    dossier.require(purposes.READ_CLINICAL_FACTS)
    page = find_facts(session, dossier, (kind,), FactFilter(ids=(fact_id,)))
    if not page.facts:
        raise dossier.refuse("no such fact, or its document is not shown", (fact_id,))
    return page.facts[0]


def _interaction(dossier: OpenedDossier) -> Interaction:
    if dossier.purpose == purposes.FIND_CLINICAL_FACTS:
        return Interaction.SEARCH
    return Interaction.READ


def _seen(
    session: Session, dossier: OpenedDossier, kinds: Sequence[FactKind], filters: FactFilter
) -> tuple[list[Fact], frozenset[FactKind]]:
    candidates = [
        *(_stored(row) for row in session.scalars(_stored_query(dossier, kinds, filters))),
        *(
            _laboratory(row)
            for row in (
                session.scalars(_laboratory_query(dossier, filters))
                if FactKind.OBSERVATION in kinds and _may_be_laboratory(filters)
                else ()
            )
        ),
    ]
    candidates = [fact for fact in candidates if _matches_code(fact, filters.codes)]
    documents = _current_documents(session, dossier, {fact.document_id for fact in candidates})
    sees = {document_id: guard.sees(dossier, doc) for document_id, doc in documents.items()}
    seen = [fact for fact in candidates if sees.get(fact.document_id)]
    withheld = frozenset(f.kind for f in candidates if sees.get(f.document_id) is False)
    return seen, withheld


def _stored_query(
    dossier: OpenedDossier, kinds: Sequence[FactKind], filters: FactFilter
) -> Select[ClinicalFact]:
    query = select(ClinicalFact).where(
        ClinicalFact.patient_id == dossier.patient_id, ClinicalFact.kind.in_(kinds)
    )
    codes = {code.code for code in filters.codes}
    if codes:
        query = query.where(ClinicalFact.code.in_(codes))
    if filters.categories:
        query = query.where(ClinicalFact.category.in_(filters.categories))
    if filters.since is not None:
        query = query.where(ClinicalFact.started_at >= filters.since)
    if filters.until is not None:
        query = query.where(ClinicalFact.started_at < filters.until)
    if filters.ids is not None:
        query = query.where(ClinicalFact.id.in_(filters.ids))
    return query


def _may_be_laboratory(filters: FactFilter) -> bool:
    return not filters.categories or "laboratory" in filters.categories


def _laboratory_query(dossier: OpenedDossier, filters: FactFilter) -> Select[LabResult]:
    query = select(LabResult).where(LabResult.patient_id == dossier.patient_id)
    codes = {code.code for code in filters.codes}
    if codes:
        query = query.where(LabResult.code.in_(codes))
    if filters.since is not None:
        query = query.where(LabResult.observed_at >= filters.since)
    if filters.until is not None:
        query = query.where(LabResult.observed_at < filters.until)
    if filters.ids is not None:
        query = query.where(LabResult.id.in_(filters.ids))
    return query


def _current_documents(
    session: Session, dossier: OpenedDossier, document_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Document]:
    if not document_ids:
        return {}
    rows = session.scalars(
        select(Document).where(
            Document.patient_id == dossier.patient_id,
            Document.id.in_(document_ids),
            Document.status == DocumentStatus.CURRENT,
        )
    )
    return {row.id: row for row in rows}


def _matches_code(fact: Fact, codes: tuple[Code, ...]) -> bool:
    if not codes:
        return True
    return any(
        code.code == fact.code and (code.system is None or code.system == fact.code_system)
        for code in codes
    )


def _date_key(fact: Fact) -> tuple[dt.datetime, str]:
    return (fact.started_at or dt.datetime.min.replace(tzinfo=dt.UTC), str(fact.id))


def _stored(row: ClinicalFact) -> Fact:
    return Fact(
        kind=row.kind,
        id=row.id,
        patient_id=row.patient_id,
        document_id=row.document_id,
        code_system=row.code_system,
        code=row.code,
        display=row.display,
        category=row.category,
        status=row.status,
        started_at=row.started_at,
        ended_at=row.ended_at,
        resource=row.resource,
    )


def _laboratory(row: LabResult) -> Fact:
    """A laboratory result read as a FHIR Observation's elements."""
    system = _V2_SYSTEMS.get(row.code_system, row.code_system)
    status = _V2_STATUS.get(row.result_status, "final")
    resource: dict[str, Any] = {
        "status": status,
        "category": [
            {
                "coding": [
                    {
                        "system": _OBSERVATION_CATEGORY,
                        "code": "laboratory",
                        "display": "Laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": system, "code": row.code, "display": row.display}],
            "text": row.display,
        },
    }
    if row.observed_at is not None:
        resource["effectiveDateTime"] = row.observed_at.isoformat().replace("+00:00", "Z")
    if row.numeric_value is not None:
        quantity: dict[str, Any] = {"value": row.numeric_value}
        if row.unit:
            quantity["unit"] = row.unit
        resource["valueQuantity"] = quantity
    elif row.value:
        resource["valueString"] = row.value
    flags = [flag for flag in row.abnormal_flags.split(",") if flag]
    if flags:
        resource["interpretation"] = [
            {"coding": [{"system": _INTERPRETATION, "code": flag}]} for flag in flags
        ]
    if row.reference_range:
        resource["referenceRange"] = [{"text": row.reference_range}]
    return Fact(
        kind=FactKind.OBSERVATION,
        id=row.id,
        patient_id=row.patient_id,
        document_id=row.document_id,
        code_system=system,
        code=row.code,
        display=row.display,
        category="laboratory",
        status=status,
        started_at=row.observed_at,
        ended_at=None,
        resource=resource,
        from_laboratory=True,
    )
