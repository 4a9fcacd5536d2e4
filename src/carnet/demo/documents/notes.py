"""Short notes: nursing note, dental report, emergency liaison file, advance directives,
the patient's own home readings.

Their texts are short phrases from ``carnet/demo/data/notes.json``, drawn a few at a time.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from carnet.demo.documents.clinical import draw_summary, summary_sections, vitals
from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    Table,
    Tr,
    document_date,
    fmt_date,
    fmt_num,
    text_section,
    tr,
)
from carnet.demo.documents.pools import (
    AUTONOMY,
    COGNITION,
    DENTAL,
    DIRECTIVE_STATUS,
    NURSING_CARE,
    NURSING_OBSERVATIONS,
    NURSING_PLAN,
    RELATIVES,
    WISHES,
    term,
)


def _pick(
    rng: random.Random, pool: Sequence[Tr], count: int, lang: str, **values: object
) -> list[str]:
    """``count`` distinct texts from ``pool`` in ``lang``, formatted with ``values``."""
    return [tr(text, lang).format(**values) for text in rng.sample(pool, count)]


def nursing_note(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Nursing note: observations with vital signs, care given, plan."""
    lang = ctx.language
    values = {"pain": rng.randint(0, 5), "glucose": fmt_num(rng.uniform(5.2, 11.8), 1, lang)}
    return [
        text_section(
            term("observations", lang),
            vitals(rng, lang),
            *_pick(rng, NURSING_OBSERVATIONS, 1, lang, **values),
        ),
        text_section(term("care", lang), *_pick(rng, NURSING_CARE, 2, lang, **values)),
        text_section(term("plan", lang), *_pick(rng, NURSING_PLAN, 1, lang)),
    ]


def dental_report(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Dental report: findings (FDI tooth numbers), treatment, recall."""
    lang = ctx.language
    finding, treatment = rng.choice(DENTAL)
    tooth = f"{rng.randint(1, 4)}{rng.randint(4, 7)}"
    return [
        text_section(term("dental_findings", lang), tr(finding, lang).format(tooth=tooth)),
        text_section(term("treatment", lang), tr(treatment, lang).format(tooth=tooth)),
        text_section(term("next_visit", lang), term("recall", lang, n=rng.choice((6, 12)))),
    ]


def _relative(ctx: DocumentContext, rng: random.Random) -> str:
    """A contact person: name, relationship and phone number."""
    phone = f"+352 621 {rng.randint(100, 999)} {rng.randint(100, 999)}"
    relationship, names = rng.choice(RELATIVES)
    name = f"{rng.choice(names)} {ctx.patient_family}"
    return f"{name} ({tr(relationship, ctx.language)}), {phone}"


def emergency_liaison_file(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Emergency liaison file of a nursing-home resident."""
    lang = ctx.language
    summary = draw_summary(ctx, rng)
    return [
        text_section(term("contacts", lang), _relative(ctx, rng)),
        text_section(
            term("usual_state", lang),
            tr(rng.choice(AUTONOMY), lang),
            tr(rng.choice(COGNITION), lang),
        ),
        *summary_sections(lang, summary),
        text_section(term("directives", lang), tr(rng.choice(DIRECTIVE_STATUS), lang)),
    ]


def advance_directives(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Advance directives: trusted person, wishes, signature date."""
    lang = ctx.language
    signed = term("signed", lang, date=fmt_date(document_date(ctx), lang))
    return [
        text_section(term("trusted_person", lang), _relative(ctx, rng)),
        text_section(term("wishes", lang), *_pick(rng, WISHES, rng.randint(3, 5), lang), signed),
    ]


def patient_provided(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Patient-provided document: a week of home blood pressure readings."""
    lang = ctx.language
    today = document_date(ctx)
    base_sys, base_dia = rng.randint(118, 150), rng.randint(72, 92)
    rows = []
    for back in range(rng.randint(3, 7), 0, -1):
        day = fmt_date(today - dt.timedelta(days=back), lang)
        for moment in ("morning", "evening"):
            reading = (
                base_sys + rng.randint(-9, 9),
                base_dia + rng.randint(-6, 6),
                rng.randint(58, 88),
            )
            rows.append((day, term(moment, lang), *(str(v) for v in reading)))
    header = tuple(
        term(key, lang) for key in ("date", "time_of_day", "systolic", "diastolic", "pulse")
    )
    table = Table(header, tuple(rows), (20, 16, 22, 22, 20), "LLRRR")
    return [Section(term("home_measurements", lang), (term("measurement_note", lang),), table)]
