"""A patient's vaccination record: every vaccination the actor may see, and what is due next.

The vaccinations are the Immunization facts of the dossier (``clinical.facts``: each seen
exactly when its source document is). What is due comes from a vaccination schedule kept as
data (``vaccination_schedules.toml``: France's and Luxembourg's routine series), the patient's
birth date and the doses already given: a reminder, said as one, never a prescription.

How "due" is read, per series of the schedule:

* a child (under 18) who has had fewer doses than the childhood series counts is due the next
  one at its age (overdue once that age is past);
* after the childhood series, or for an adult, the next booster is the first booster age not
  yet reached at the last dose, then one every ``every_years`` after the last dose;
* a series that starts at an age (influenza from 65) is due at that age, then every
  ``every_years`` after the last dose;
* an adult whose childhood series is incomplete and who has no booster to come is "incomplete":
  the record says to ask a doctor, not when.
"""

from __future__ import annotations

import calendar
import datetime as dt
import enum
import functools
import tomllib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy.orm import Session

from carnet.access.door import OpenedDossier
from carnet.clinical.facts import Fact, find_facts, kinds_in_scope
from carnet.clinical.models import FactKind

_RESOURCE = "vaccination_schedules.toml"
_ADULT_YEARS = 18
# An Immunization not given (``not-done``) or recorded in error is no dose.
_NOT_A_DOSE = frozenset({"not-done", "entered-in-error"})


class DueState(enum.StrEnum):
    """Where a series stands for the patient today."""

    UP_TO_DATE = "up-to-date"
    DUE = "due"
    OVERDUE = "overdue"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class Series:
    """One series of a country's schedule (``doses`` in months, ``boosters`` in years)."""

    key: str
    names: Mapping[str, str]
    codes: frozenset[tuple[str, str]]
    doses: tuple[int, ...] = ()
    boosters: tuple[int, ...] = ()
    every_years: int | None = None
    from_years: int | None = None

    def name(self, language: str) -> str:
        """The series' name in ``language`` (English where the schedule lacks it)."""
        return self.names.get(language) or self.names["en"]

    def counts(self, fact: Fact) -> bool:
        """Whether the vaccination ``fact`` is a dose of this series."""
        return (fact.code_system, fact.code) in self.codes


@dataclass(frozen=True)
class Schedule:
    """A country's routine vaccination schedule."""

    country: str
    name: str
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Vaccination:
    """One vaccination given, as the record lists it."""

    id: uuid.UUID
    document_id: uuid.UUID
    given_on: dt.date | None
    vaccine: str
    code_system: str
    code: str
    series: tuple[str, ...]


@dataclass(frozen=True)
class Reminder:
    """Where one series of the schedule stands, and when its next dose is due."""

    series: Series
    doses: int
    state: DueState
    due_on: dt.date | None


@dataclass(frozen=True)
class VaccinationRecord:
    """The vaccinations given (newest first) and the schedule's reminders."""

    vaccinations: list[Vaccination]
    reminders: list[Reminder]
    schedule: Schedule
    withheld: bool


def vaccination_record(
    session: Session,
    dossier: OpenedDossier,
    *,
    born: dt.date,
    schedule: Schedule,
) -> VaccinationRecord:
    """The vaccinations the actor may see and what ``schedule`` says is due next.

    Serves a dossier opened to read clinical facts (the Immunization scope is needed; without
    it the record is empty). Reminders are worked out from the vaccinations the actor sees:
    a document kept from them may hide a dose, which ``withheld`` says.
    """
    kinds = kinds_in_scope(dossier, (FactKind.IMMUNIZATION,))
    page = find_facts(session, dossier, kinds) if kinds else None
    return record_of(
        page.facts if page else [],
        withheld=bool(page and page.withheld),
        born=born,
        schedule=schedule,
        today=dossier.clock.now().date(),
    )


def record_of(
    facts: Sequence[Fact], *, withheld: bool, born: dt.date, schedule: Schedule, today: dt.date
) -> VaccinationRecord:
    """The record ``facts`` (already seen through the policy) make, with ``schedule``'s
    reminders; facts of other kinds are left out."""
    doses = [f for f in facts if f.kind is FactKind.IMMUNIZATION and f.status not in _NOT_A_DOSE]
    vaccinations = [
        Vaccination(
            id=fact.id,
            document_id=fact.document_id,
            given_on=fact.started_at.date() if fact.started_at else None,
            vaccine=fact.display or fact.code,
            code_system=fact.code_system,
            code=fact.code,
            series=tuple(s.key for s in schedule.series if s.counts(fact)),
        )
        for fact in doses
    ]
    reminders = [
        due_reminder(series, [v for v in vaccinations if series.key in v.series], born, today)
        for series in schedule.series
    ]
    return VaccinationRecord(vaccinations, reminders, schedule, withheld=withheld)


def due_reminder(
    series: Series, doses: Sequence[Vaccination], born: dt.date, today: dt.date
) -> Reminder:
    dates = sorted(d.given_on for d in doses if d.given_on is not None)
    last = dates[-1] if dates else None
    count = len(dates)
    adult_on = _years_after(born, _ADULT_YEARS)
    due: dt.date | None = None
    incomplete = False
    if series.from_years is not None:
        starts = _years_after(born, series.from_years)
        due = starts if last is None or last < starts else _next(last, series.every_years)
    elif count < len(series.doses) and today < adult_on:
        due = _months_after(born, series.doses[count])
    else:
        incomplete = count < len(series.doses)
        reached = last or born
        boosters = [
            _years_after(born, age) for age in series.boosters if _years_after(born, age) > reached
        ]
        if boosters:
            due = boosters[0]
        elif series.every_years is not None and (last is not None and not incomplete):
            due = _next(last, series.every_years)
    if due is None:
        state = DueState.INCOMPLETE if incomplete else DueState.UP_TO_DATE
    elif due < today:
        state = DueState.OVERDUE
    elif due <= today + dt.timedelta(days=90):
        state = DueState.DUE
    else:
        state = DueState.UP_TO_DATE
    return Reminder(series, count, state, due)


def _next(last: dt.date, every_years: int | None) -> dt.date | None:
    return _years_after(last, every_years) if every_years is not None else None


def _years_after(day: dt.date, years: int) -> dt.date:
    return _months_after(day, 12 * years)


def _months_after(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` later, or the month's last day where it has fewer (31 January
    and 2 months: 31 March; 29 February and a year: 28 February)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def schedule_for(country: str) -> Schedule:
    """The schedule of ``country`` (``fr``, ``lu``); ``KeyError`` for another."""
    return _schedules()[country]


@functools.cache
def _schedules() -> dict[str, Schedule]:
    data = tomllib.loads(
        resources.files("carnet.clinical").joinpath(_RESOURCE).read_text(encoding="utf-8")
    )
    systems: dict[str, str] = data["systems"]
    found = {}
    for country, rules in data["countries"].items():
        found[country] = Schedule(
            country=country,
            name=rules["name"],
            series=tuple(
                _series(key, data["series"][key], rule, systems)
                for key, rule in rules.items()
                if key != "name"
            ),
        )
    return found


def _series(
    key: str, definition: dict[str, Any], rule: dict[str, Any], systems: dict[str, str]
) -> Series:
    return Series(
        key=key,
        names=definition["name"],
        codes=frozenset(
            (system, code) for name, system in systems.items() for code in definition.get(name, [])
        ),
        doses=tuple(rule.get("doses", ())),
        boosters=tuple(rule.get("boosters", ())),
        every_years=rule.get("every_years"),
        from_years=rule.get("from_years"),
    )
