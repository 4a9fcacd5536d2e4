"""A patient's medication list: current and past treatments, assembled from the prescriptions
(MedicationRequest), statements (MedicationStatement) and dispensations (MedicationDispense) the
actor may see.

Facts naming the same medication (system and code, or the text where there is no code) make one
treatment: it started at the earliest of them and stopped at the latest end, unless one of them
is still running (active, on hold, or intended without an end past). The dose and the prescriber
are the latest fact's that names them; every source document is kept.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from carnet.access.door import OpenedDossier
from carnet.clinical.facts import Fact, find_facts, kinds_in_scope
from carnet.clinical.models import FactKind

KINDS = (
    FactKind.MEDICATION_REQUEST,
    FactKind.MEDICATION_STATEMENT,
    FactKind.MEDICATION_DISPENSE,
)
_RUNNING = frozenset({"active", "on-hold", "intended", "draft", "in-progress"})


@dataclass(frozen=True)
class Treatment:
    """One medication the patient takes or took, from the facts that name it."""

    code_system: str
    code: str
    display: str
    started_at: dt.datetime | None
    stopped_at: dt.datetime | None
    current: bool
    dose: str
    prescriber: str
    document_ids: tuple[uuid.UUID, ...]


def medication_list(session: Session, dossier: OpenedDossier) -> list[Treatment]:
    """The treatments the actor may see, current first, then by start (latest first).

    Serves a dossier opened to read clinical facts; only the kinds the token's scopes cover are
    read, and the policy on each source document decides as for any fact.
    """
    kinds = kinds_in_scope(dossier, KINDS)
    facts = find_facts(session, dossier, kinds).facts if kinds else []
    return treatments_of(facts, now=dossier.clock.now())


def treatments_of(facts: Sequence[Fact], *, now: dt.datetime) -> list[Treatment]:
    """The treatments ``facts`` (already seen through the policy) describe, as
    ``medication_list`` orders them; facts of other kinds are left out."""
    grouped: dict[tuple[str, str], list[Fact]] = {}
    for fact in (fact for fact in facts if fact.kind in KINDS):
        key = (fact.code_system, fact.code) if fact.code else ("", fact.display.casefold())
        grouped.setdefault(key, []).append(fact)
    treatments = [_treatment(group, now) for group in grouped.values()]
    treatments.sort(
        key=lambda t: (t.current, t.started_at or dt.datetime.min.replace(tzinfo=dt.UTC)),
        reverse=True,
    )
    return treatments


def _treatment(facts: Sequence[Fact], now: dt.datetime) -> Treatment:
    latest_first = sorted(facts, key=_start, reverse=True)
    starts = [fact.started_at for fact in facts if fact.started_at is not None]
    ends = [fact.ended_at for fact in facts if fact.ended_at is not None]
    current = any(
        fact.status in _RUNNING and (fact.ended_at is None or fact.ended_at > now) for fact in facts
    )
    return Treatment(
        code_system=latest_first[0].code_system,
        code=latest_first[0].code,
        display=latest_first[0].display,
        started_at=min(starts) if starts else None,
        stopped_at=None if current or not ends else max(ends),
        current=current,
        dose=next((d for d in map(_dose, latest_first) if d), ""),
        prescriber=next((p for p in map(_prescriber, latest_first) if p), ""),
        document_ids=tuple(dict.fromkeys(fact.document_id for fact in latest_first)),
    )


def _start(fact: Fact) -> dt.datetime:
    return fact.started_at or dt.datetime.min.replace(tzinfo=dt.UTC)


def _dose(fact: Fact) -> str:
    dosages: Any = fact.resource.get("dosageInstruction") or fact.resource.get("dosage") or []
    if not isinstance(dosages, list) or not dosages or not isinstance(dosages[0], dict):
        return ""
    return str(dosages[0].get("text") or "")


def _prescriber(fact: Fact) -> str:
    who: Any = fact.resource.get("requester") or fact.resource.get("informationSource") or {}
    return str(who.get("display") or "") if isinstance(who, dict) else ""
