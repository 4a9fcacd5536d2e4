"""The dossier's structured data as a person reads it: treatments, vaccinations, results.

Shared by both portals (``patient_health``, ``professional_health``): the medication list
(``clinical.medications``), the vaccination record with the schedule's reminders
(``clinical.vaccinations``), the latest value of each result, and one result's values over time
drawn as a chart with the same numbers in a table. Everything comes through a dossier opened to
read clinical facts: each fact is shown exactly when its source document would be.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pygal  # type: ignore[import-untyped]
from markupsafe import Markup
from sqlalchemy.orm import Session

from carnet.access.door import OpenedDossier
from carnet.clinical import medications, vaccinations
from carnet.clinical.facts import Code, Fact, FactFilter, find_facts, kinds_in_scope
from carnet.clinical.models import FactKind
from carnet.patients import identifiers
from carnet.patients.models import Patient
from carnet.portal.charts import chart_options, inline_svg
from carnet.portal.visits import Visit

# The results page lists this many tests, latest first; each opens its chart.
RESULTS_SHOWN = 60


@dataclass(frozen=True)
class ResultLine:
    """One test: its latest value and how many values the dossier holds."""

    code_system: str
    code: str
    name: str
    latest: str
    latest_at: dt.datetime | None
    values: int
    numeric: int
    flagged: bool


@dataclass(frozen=True)
class HealthView:
    """What the health page shows."""

    treatments: list[medications.Treatment]
    record: vaccinations.VaccinationRecord
    results: list[ResultLine]


@dataclass(frozen=True)
class ResultPoint:
    """One value of a test, as the chart's table lists it."""

    at: dt.datetime | None
    value: str
    number: float | None
    unit: str
    reference: str
    flagged: bool
    document_id: uuid.UUID


@dataclass(frozen=True)
class ResultChart:
    """One test's values over time, and its chart (None when fewer than two are numbers)."""

    name: str
    points: list[ResultPoint]
    svg: Markup | None


def schedule_of(patient: Patient) -> vaccinations.Schedule:
    """The schedule of the patient's country: France's for a NIR, else Luxembourg's."""
    systems = {identifier.system for identifier in patient.identifiers}
    return vaccinations.schedule_for("fr" if identifiers.FR_NIR in systems else "lu")


def health_view(session: Session, dossier: OpenedDossier, patient: Patient) -> HealthView:
    """The treatments, vaccinations and latest results the actor may see.

    Read in one search of every kind the token covers: one look at the page is one entry in
    the patient's history, not one per list.
    """
    wanted = (*medications.KINDS, FactKind.IMMUNIZATION, FactKind.OBSERVATION)
    kinds = kinds_in_scope(dossier, wanted)
    page = find_facts(session, dossier, kinds) if kinds else None
    facts = page.facts if page else []
    withheld = page.withheld_kinds if page else frozenset()
    return HealthView(
        treatments=medications.treatments_of(facts, now=dossier.clock.now()),
        record=vaccinations.record_of(
            facts,
            withheld=FactKind.IMMUNIZATION in withheld,
            born=patient.birth_date,
            schedule=schedule_of(patient),
            today=dossier.clock.now().date(),
        ),
        results=_results([fact for fact in facts if fact.kind is FactKind.OBSERVATION]),
    )


def result_chart(
    session: Session, visit: Visit, dossier: OpenedDossier, system: str, code: str
) -> ResultChart:
    """Every value of one test the actor may see, oldest first, and their chart."""
    facts = find_facts(
        session,
        dossier,
        kinds_in_scope(dossier, (FactKind.OBSERVATION,)),
        FactFilter(codes=(Code(system or None, code),), newest_first=False),
    ).facts
    points = [_point(fact) for fact in facts]
    name = facts[-1].display if facts else code
    numbers = [p for p in points if p.number is not None and p.at is not None]
    svg = _chart(visit, name, numbers) if len(numbers) >= 2 else None
    return ResultChart(name, points, svg)


def chart_query(line: ResultLine) -> str:
    """The query string of a test's chart page."""
    return urlencode({"system": line.code_system, "code": line.code})


def _results(facts: list[Fact]) -> list[ResultLine]:
    grouped: dict[tuple[str, str], list[Fact]] = {}
    for fact in facts:  # newest first
        grouped.setdefault((fact.code_system, fact.code), []).append(fact)
    lines = []
    for (system, code), group in grouped.items():
        latest = _point(group[0])
        lines.append(
            ResultLine(
                code_system=system,
                code=code,
                name=group[0].display or code,
                latest=f"{latest.value} {latest.unit}".strip(),
                latest_at=latest.at,
                values=len(group),
                numeric=sum(1 for fact in group if _number(fact.resource) is not None),
                flagged=latest.flagged,
            )
        )
    return lines[:RESULTS_SHOWN]


def _point(fact: Fact) -> ResultPoint:
    resource = fact.resource
    quantity = resource.get("valueQuantity") or {}
    number = _number(resource)
    if number is not None:
        value = f"{number:g}"
    elif "valueString" in resource:
        value = str(resource["valueString"])
    elif "valueCodeableConcept" in resource:
        concept = resource["valueCodeableConcept"]
        value = concept.get("text") or next(
            (c.get("display", "") for c in concept.get("coding", [])), ""
        )
    else:
        value = ""
    ranges = resource.get("referenceRange") or [{}]
    flags = {
        coding.get("code", "")
        for concept in resource.get("interpretation", [])
        for coding in concept.get("coding", [])
    }
    return ResultPoint(
        at=fact.started_at,
        value=value,
        number=number,
        unit=str(quantity.get("unit") or quantity.get("code") or ""),
        reference=str(ranges[0].get("text", "")),
        flagged=bool(flags - {"N", ""}),
        document_id=fact.document_id,
    )


def _number(resource: Any) -> float | None:
    value = (resource.get("valueQuantity") or {}).get("value")
    return float(value) if isinstance(value, int | float) else None


def _chart(visit: Visit, name: str, points: list[ResultPoint]) -> Markup:
    chart = pygal.Line(
        **chart_options(visit, width=800, height=320),
        show_legend=False,
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(points) // 6),
        show_dots=True,
    )
    chart.x_labels = [visit.formats.date(p.at, "short") for p in points if p.at is not None]
    chart.add(name, [p.number for p in points])
    return inline_svg(chart, "result-caption")
