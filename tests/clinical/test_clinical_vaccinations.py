"""The vaccination record: every vaccination seen, and what a schedule says is due (issue 20)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.scopes import parse_scopes
from carnet.clinical.vaccinations import (
    DueState,
    Reminder,
    Series,
    Vaccination,
    due_reminder,
    schedule_for,
    vaccination_record,
)
from clinical.sources import Clinic, synthea_document, synthea_files

ALVA = next(p for p in synthea_files() if p.name.startswith("Alva958"))
ALVA_BORN = dt.date(1998, 4, 29)  # the Synthea record's Patient.birthDate


def _record(clinic: Clinic, country: str = "fr") -> Any:
    dossier = open_dossier(
        clinic.session,
        clinic.doctor,
        clinic.patient.id,
        purposes.READ_CLINICAL_FACTS,
        clock=clinic.clock,
    )
    return vaccination_record(
        clinic.session, dossier, born=ALVA_BORN, schedule=schedule_for(country)
    )


def test_every_vaccination_of_a_synthea_record_is_listed_with_its_series(clinic: Clinic) -> None:
    assert clinic.publish(synthea_document(ALVA)).status_code == 200
    record = _record(clinic)
    assert len(record.vaccinations) == 52
    by_code = Counter(v.code for v in record.vaccinations)
    assert (by_code["140"], by_code["20"], by_code["115"], by_code["113"]) == (20, 5, 1, 1)
    influenza = next(v for v in record.vaccinations if v.code == "140")
    assert influenza.series == ("influenza",)
    assert influenza.vaccine == "Influenza, seasonal, injectable, preservative free"
    dtap = next(v for v in record.vaccinations if v.code == "20")
    assert dtap.series == ("dtp",)
    # Newest first.
    dates = [v.given_on for v in record.vaccinations]
    assert dates == sorted(dates, reverse=True)
    reminders = {r.series.key: r for r in record.reminders}
    assert reminders["dtp"].doses == 7  # DTaP x5, Tdap, Td
    assert reminders["polio"].doses == 4
    assert reminders["mmr"].doses == 2
    assert reminders["mmr"].state is DueState.UP_TO_DATE
    assert reminders["mmr"].due_on is None


def test_nothing_is_listed_without_the_immunization_scope(clinic: Clinic) -> None:
    assert clinic.publish(synthea_document(ALVA)).status_code == 200
    observations_only = replace(
        clinic.doctor, scopes=parse_scopes("user/Observation.rs user/DocumentReference.rs")[0]
    )
    dossier = open_dossier(
        clinic.session,
        observations_only,
        clinic.patient.id,
        purposes.READ_CLINICAL_FACTS,
        clock=clinic.clock,
    )
    record = vaccination_record(
        clinic.session, dossier, born=ALVA_BORN, schedule=schedule_for("lu")
    )
    assert record.vaccinations == []
    assert {r.doses for r in record.reminders} == {0}


def _series(**rule: Any) -> Series:
    return Series(key="x", names={"en": "X"}, codes=frozenset(), **rule)


def _doses(*days: dt.date) -> list[Vaccination]:
    return [
        Vaccination(
            id=None,  # type: ignore[arg-type]
            document_id=None,  # type: ignore[arg-type]
            given_on=day,
            vaccine="v",
            code_system="s",
            code="c",
            series=("x",),
        )
        for day in days
    ]


BORN = dt.date(2020, 1, 31)


@pytest.mark.parametrize(
    ("rule", "given", "today", "expected"),
    [
        # A child's next dose of the series, at its age (the end of a short month kept).
        ({"doses": (2, 4, 11)}, [dt.date(2020, 3, 31)], dt.date(2020, 2, 1),
         (DueState.UP_TO_DATE, dt.date(2020, 5, 31))),
        ({"doses": (2, 4, 11)}, [dt.date(2020, 3, 31)], dt.date(2020, 4, 1),
         (DueState.DUE, dt.date(2020, 5, 31))),
        ({"doses": (2, 4, 11)}, [], dt.date(2020, 4, 1), (DueState.OVERDUE, dt.date(2020, 3, 31))),
        ({"doses": (2, 4, 11)}, [], dt.date(2020, 3, 10), (DueState.DUE, dt.date(2020, 3, 31))),
        # After the childhood series: the first booster age not reached at the last dose.
        ({"doses": (2,), "boosters": (25, 45), "every_years": 10}, [dt.date(2046, 2, 1)],
         dt.date(2047, 1, 1), (DueState.UP_TO_DATE, dt.date(2065, 1, 31))),
        # Past the last booster age: every ten years after the last dose.
        ({"doses": (2,), "boosters": (25,), "every_years": 10}, [dt.date(2046, 2, 1)],
         dt.date(2047, 1, 1), (DueState.UP_TO_DATE, dt.date(2056, 2, 1))),
        # An adult whose childhood series is incomplete and with no booster to come.
        ({"doses": (12, 16)}, [dt.date(2021, 1, 31)], dt.date(2040, 1, 1),
         (DueState.INCOMPLETE, None)),
        # A series from an age, then yearly.
        ({"from_years": 65, "every_years": 1}, [], dt.date(2040, 1, 1),
         (DueState.UP_TO_DATE, dt.date(2085, 1, 31))),
        ({"from_years": 65, "every_years": 1}, [dt.date(2086, 10, 1)], dt.date(2088, 1, 1),
         (DueState.OVERDUE, dt.date(2087, 10, 1))),
    ],
)  # fmt: skip
def test_what_is_due_next(
    rule: dict[str, Any],
    given: list[dt.date],
    today: dt.date,
    expected: tuple[DueState, dt.date | None],
) -> None:
    reminder: Reminder = due_reminder(_series(**rule), _doses(*given), BORN, today)
    assert (reminder.state, reminder.due_on) == expected


def test_both_schedules_load_and_name_their_series_in_three_languages() -> None:
    for country in ("fr", "lu"):
        schedule = schedule_for(country)
        assert {s.key for s in schedule.series} >= {"dtp", "mmr", "influenza"}
        for series in schedule.series:
            assert {series.name(language) for language in ("fr", "en", "de")} == set(
                series.names.values()
            )
            assert series.codes
    with pytest.raises(KeyError):
        schedule_for("xx")
