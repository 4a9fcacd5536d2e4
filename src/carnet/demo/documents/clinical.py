"""Clinical facts drawn for a patient and shared by several document types and formats.

A patient summary, an allergy record and an emergency liaison file all draw allergies,
medicines and problems the same way, and the FHIR document Bundle codes the very facts
the narrative sections show; vaccination records follow the Luxembourg/French schedules
by birth cohort. Drawing lives here once so every format of a type tells the same story.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass

from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    Table,
    age_in_years,
    document_date,
    fmt_date,
    fmt_num,
    random_date,
    text_section,
    tr,
    years_after,
)
from carnet.demo.documents.pools import (
    ALLERGENS,
    MEDICINES,
    PROBLEMS,
    REACTIONS,
    VACCINES,
    Allergen,
    Coded,
    Medicine,
    Problem,
    term,
)


def vitals(rng: random.Random, lang: str) -> str:
    """A line of plausible vital signs."""
    return term(
        "vitals",
        lang,
        sys=rng.randint(108, 152),
        dia=rng.randint(64, 94),
        hr=rng.randint(56, 96),
        temp=fmt_num(rng.uniform(36.2, 37.6), 1, lang),
        spo2=rng.randint(94, 99),
        kg=rng.randint(52, 104),
    )


# --- Patient summary and allergies -------------------------------------------------

# Allergies of a patient: (substance, typical reaction) pairs.
Allergies = tuple[tuple[Allergen, Coded], ...]


@dataclass(frozen=True, slots=True)
class Summary:
    """Drawn clinical data of a patient summary."""

    allergies: Allergies
    medications: tuple[tuple[Medicine, dt.date], ...]
    problems: tuple[tuple[Problem, dt.date], ...]


def draw_allergies(rng: random.Random, *, at_least_one: bool = False) -> Allergies:
    """Allergies with one typical reaction each: 0-2 in a summary, 1-3 in an allergy record."""
    counts, weights = ((1, 2, 3), (60, 30, 10)) if at_least_one else ((0, 1, 2), (60, 30, 10))
    count = rng.choices(counts, weights=weights)[0]
    return tuple((a, REACTIONS[rng.choice(a.reactions)]) for a in rng.sample(ALLERGENS, count))


def draw_summary(ctx: DocumentContext, rng: random.Random) -> Summary:
    """Draw age-appropriate problems, the medicines treating them, and allergies."""
    today = document_date(ctx)
    birth = ctx.patient_birth_date
    age = age_in_years(birth, today)
    eligible = [p for p in PROBLEMS if p.min_age <= age]
    most = 0 if age < 5 else 1 if age < 30 else 2 if age < 50 else 4
    chosen = rng.sample(eligible, min(len(eligible), rng.randint(0, most)))
    problems = tuple((p, random_date(rng, years_after(birth, p.min_age), today)) for p in chosen)
    starts: dict[str, dt.date] = {}
    for problem, onset in problems:
        for key in problem.medicines:
            starts.setdefault(key, random_date(rng, onset, today))
    medications = tuple((MEDICINES[key], start) for key, start in starts.items())
    return Summary(draw_allergies(rng), medications, problems)


def allergy_section(lang: str, allergies: Sequence[tuple[Allergen, Coded]]) -> Section:
    """Allergies section (LOINC 48765-2) as a table, or "no known allergy"."""
    heading = term("allergies", lang)
    if not allergies:
        return text_section(heading, term("no_allergy", lang), loinc="48765-2")
    header = (term("substance", lang), term("reaction", lang), term("criticality", lang))
    rows = tuple(
        (tr(a.concept.label, lang), tr(r.label, lang), term(criticality(r), lang))
        for a, r in allergies
    )
    return Section(heading, table=Table(header, rows, (40, 40, 20), "LLL"), loinc="48765-2")


def criticality(reaction: Coded) -> str:
    """FHIR AllergyIntolerance criticality implied by a reaction."""
    return "high" if reaction.code == REACTIONS["anaphylaxis"].code else "low"


def medication_section(lang: str, medications: Sequence[tuple[Medicine, dt.date]]) -> Section:
    """Medication section (LOINC 10160-0)."""
    heading = term("medications", lang)
    if not medications:
        return text_section(heading, term("no_medication", lang), loinc="10160-0")
    header = (term("medicine", lang), term("dosage", lang), term("since", lang))
    rows = tuple((tr(m.name, lang), tr(m.dosage, lang), fmt_date(d, lang)) for m, d in medications)
    return Section(heading, table=Table(header, rows, (38, 46, 16), "LLL"), loinc="10160-0")


def problem_section(lang: str, problems: Sequence[tuple[Problem, dt.date]]) -> Section:
    """Problem list section (LOINC 11450-4)."""
    heading = term("problems", lang)
    if not problems:
        return text_section(heading, term("no_problem", lang), loinc="11450-4")
    header = (term("condition", lang), "SNOMED CT", term("since", lang))
    rows = tuple(
        (tr(p.concept.label, lang), p.concept.code, fmt_date(d, lang)) for p, d in problems
    )
    return Section(heading, table=Table(header, rows, (50, 25, 25), "LLL"), loinc="11450-4")


def summary_sections(lang: str, summary: Summary) -> list[Section]:
    """The three sections of a patient summary."""
    return [
        allergy_section(lang, summary.allergies),
        medication_section(lang, summary.medications),
        problem_section(lang, summary.problems),
    ]


def patient_summary(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Patient summary: allergies, current medications, active problems."""
    return summary_sections(ctx.language, draw_summary(ctx, rng))


def allergy_record(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Allergy record: the allergy table alone."""
    return [allergy_section(ctx.language, draw_allergies(rng, at_least_one=True))]


# --- Vaccination record -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vaccination:
    """One administered vaccine dose."""

    date: dt.date
    vaccine: Coded
    dose: int
    lot: str


def _childhood_doses(birth: dt.date, rng: random.Random) -> list[tuple[dt.date, str, int]]:
    """Infant and adolescent doses of the Luxembourg/French schedules, by birth cohort."""

    def at(months: float, code: str, dose: int) -> tuple[dt.date, str, int]:
        return birth + dt.timedelta(days=round(months * 30.44) + rng.randint(0, 20)), code, dose

    doses: list[tuple[dt.date, str, int]] = []
    if birth.year >= 2000:
        doses += [at(2, "146", 1), at(4, "146", 2), at(11, "146", 3)]
    elif birth.year >= 1970:
        doses += [at(2, "20", 1), at(3, "20", 2), at(4, "20", 3)]
    if birth.year >= 1985:
        doses += [at(12, "03", 1), at(16, "03", 2)]
    if 1985 <= birth.year < 2000:
        doses += [at(132, "08", 1), at(138, "08", 2)]
    if birth.year >= 2006:
        doses += [at(134, "165", 1), at(140, "165", 2)]
    return doses


def _adult_doses(
    birth: dt.date, today: dt.date, rng: random.Random
) -> list[tuple[dt.date, str, int]]:
    """Adult boosters, seasonal influenza, COVID-19 and pneumococcal doses."""
    doses: list[tuple[dt.date, str, int]] = []
    for number, age in enumerate((25, 45, 65, 75), start=1):
        if rng.random() < 0.75:
            doses.append(
                (
                    random_date(rng, years_after(birth, age), years_after(birth, age + 1)),
                    "115" if age == 25 else "113",
                    number,
                )
            )
    for year in range(today.year - 4, today.year + 1):
        season = dt.date(year, 10, 10)
        if age_in_years(birth, season) >= 18 and rng.random() < (
            0.8 if age_in_years(birth, season) >= 65 else 0.15
        ):
            doses.append((random_date(rng, season, season + dt.timedelta(days=50)), "141", 1))
    covid_age = age_in_years(birth, dt.date(2021, 1, 1))
    if covid_age >= 12 and rng.random() < 0.85:
        first = random_date(rng, dt.date(2021, 2, 1), dt.date(2021, 7, 31))
        doses += [(first, "208", 1), (first + dt.timedelta(days=rng.randint(21, 42)), "208", 2)]
        if covid_age >= 18:
            doses.append((random_date(rng, dt.date(2021, 11, 15), dt.date(2022, 1, 31)), "208", 3))
        if covid_age >= 60:
            doses.append((random_date(rng, dt.date(2022, 10, 1), dt.date(2022, 12, 15)), "208", 4))
    if rng.random() < 0.5:
        doses.append((random_date(rng, years_after(birth, 65), years_after(birth, 66)), "133", 1))
    return doses


def draw_vaccinations(ctx: DocumentContext, rng: random.Random) -> list[Vaccination]:
    """All doses given up to the document date, oldest first, with lot numbers."""
    today = document_date(ctx)
    birth = ctx.patient_birth_date
    doses = _childhood_doses(birth, rng) + _adult_doses(birth, today, rng)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    return [
        Vaccination(
            day,
            VACCINES[code],
            dose,
            f"{rng.choice(letters)}{rng.choice(letters)}{rng.randint(1000, 9999)}",
        )
        for day, code, dose in sorted(doses)
        if day <= today
    ]


def vaccination_section(lang: str, vaccinations: Sequence[Vaccination]) -> Section:
    """Immunization history section (LOINC 11369-6)."""
    heading = term("vaccinations", lang)
    if not vaccinations:
        return text_section(heading, term("no_vaccination", lang), loinc="11369-6")
    header = (term("date", lang), term("vaccine", lang), term("dose", lang), term("lot", lang))
    rows = tuple(
        (fmt_date(v.date, lang), tr(v.vaccine.label, lang), str(v.dose), v.lot)
        for v in vaccinations
    )
    return Section(heading, table=Table(header, rows, (16, 56, 10, 18), "LLCL"), loinc="11369-6")


def vaccination_record(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Vaccination record: a table of administered doses."""
    return [vaccination_section(ctx.language, draw_vaccinations(ctx, rng))]
