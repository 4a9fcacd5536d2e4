"""Scenario-based narratives: discharge summary, consultation note, emergency visit, operation.

A scenario (``carnet/demo/data/scenarios.json``) gives one coherent story in the three
languages, one text per section; the builders pick a scenario and add the drawn parts
(dates, vital signs, medicines, durations).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from carnet.demo.documents.clinical import vitals
from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    Table,
    document_date,
    fmt_date,
    text_section,
    tr,
)
from carnet.demo.documents.pools import (
    CONSULTATIONS,
    DISCHARGES,
    EMERGENCIES,
    MEDICINES,
    OPERATIONS,
    Scenario,
    term,
)


def _scenario_sections(
    scenario: Scenario, keys: Sequence[str], lang: str, loincs: Sequence[str | None] = ()
) -> list[Section]:
    """One paragraph section per scenario key, with optional section LOINC codes."""
    codes = list(loincs) or [None] * len(keys)
    return [
        text_section(term(key, lang), tr(scenario[key], lang), loinc=code)
        for key, code in zip(keys, codes, strict=True)
    ]


def discharge_summary(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Discharge summary: reason, course, diagnosis, medications, follow-up."""
    lang = ctx.language
    scenario, medicines = rng.choice(DISCHARGES)
    end = document_date(ctx)
    start = end - dt.timedelta(days=rng.randint(2, 9))
    stay = term("stay", lang, start=fmt_date(start, lang), end=fmt_date(end, lang))
    reason = text_section(
        term("admission_reason", lang),
        stay,
        tr(scenario["admission_reason"], lang),
        loinc="29299-5",
    )
    middle = _scenario_sections(
        scenario, ("hospital_course", "discharge_diagnosis"), lang, ("8648-8", "11535-2")
    )
    header = (term("medicine", lang), term("dosage", lang))
    rows = tuple(
        (tr(MEDICINES[key].name, lang), tr(MEDICINES[key].dosage, lang)) for key in medicines
    )
    meds = Section(
        term("discharge_medications", lang),
        table=Table(header, rows, (45, 55), "LL"),
        loinc="10183-2",
    )
    return [reason, *middle, meds, *_scenario_sections(scenario, ("follow_up",), lang, ("8653-8",))]


def consultation_note(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Consultation note: reason, history, examination with vital signs, plan."""
    lang = ctx.language
    scenario = rng.choice(CONSULTATIONS)
    sections = _scenario_sections(
        scenario,
        ("consultation_reason", "history", "examination", "assessment"),
        lang,
        ("42349-1", "10164-2", "29545-1", "51847-2"),
    )
    exam = sections[2]
    sections[2] = Section(exam.heading, (vitals(rng, lang), *exam.paragraphs), loinc=exam.loinc)
    return sections


def emergency_visit_summary(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Emergency department summary: arrival, reason, findings, treatment, outcome."""
    lang = ctx.language
    scenario = rng.choice(EMERGENCIES)
    arrival = ctx.created_at - dt.timedelta(minutes=rng.randint(90, 480))
    when = f"{fmt_date(arrival.date(), lang)} {arrival:%H:%M} UTC"
    reason = text_section(
        term("visit_reason", lang),
        term("arrival", lang, when=when),
        tr(scenario["visit_reason"], lang),
    )
    exam = text_section(
        term("examination", lang), vitals(rng, lang), tr(scenario["examination"], lang)
    )
    rest = _scenario_sections(scenario, ("ed_treatment", "diagnosis", "instructions"), lang)
    return [reason, exam, *rest]


def operative_report(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Operative report: diagnosis, procedure, anaesthesia, description, aftercare."""
    lang = ctx.language
    scenario = rng.choice(OPERATIONS)
    facts = term(
        "surgery_facts", lang, date=fmt_date(document_date(ctx), lang), minutes=rng.randint(35, 95)
    )
    sections = _scenario_sections(
        scenario,
        ("preop_diagnosis", "procedure", "anaesthesia", "operative_description", "postop"),
        lang,
    )
    procedure = sections[1]
    sections[1] = Section(procedure.heading, (*procedure.paragraphs, facts))
    return sections
