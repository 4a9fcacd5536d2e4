"""Reports and forms: laboratory, insurer summary, imaging, medical certificate, prescription.

Each builder draws one document's content from the pools in ``carnet/demo/data/`` and
returns its sections; values (lab results, amounts, durations) come from the given
``random.Random`` only.
"""

from __future__ import annotations

import datetime as dt
import random

from carnet.demo.documents.model import (
    DocumentContext,
    Section,
    Table,
    age_in_years,
    document_date,
    fmt_date,
    fmt_num,
    labelled,
    random_date,
    text_section,
    tr,
)
from carnet.demo.documents.pools import (
    ANALYTES,
    CERTIFICATE_CLOSING,
    EXAMS,
    MEDICINES,
    OUTINGS,
    PRESCRIPTION_ITEMS,
    SERVICE_WEIGHTS,
    SERVICES,
    SICK_LEAVE,
    SPORT_CERTIFICATE,
    SPORTS,
    UNDERSIGNED,
    Analyte,
    term,
)


def _lab_row(analyte: Analyte, sex: str, lang: str, rng: random.Random) -> tuple[str, ...]:
    """One result row: analysis, value, unit, reference range, H/L flag."""
    low, high = analyte.reference(sex)
    value = analyte.draw(sex, rng)
    flag = (
        "L" if low is not None and value < low else "H" if high is not None and value > high else ""
    )
    if low is not None and high is not None:
        reference = (
            f"{fmt_num(low, analyte.decimals, lang)} - {fmt_num(high, analyte.decimals, lang)}"
        )
    elif high is not None:
        reference = f"< {fmt_num(high, analyte.decimals, lang)}"
    else:
        reference = f"> {fmt_num(low or 0.0, analyte.decimals, lang)}"
    return (
        tr(analyte.name, lang),
        fmt_num(value, analyte.decimals, lang),
        analyte.unit,
        reference,
        flag,
    )


def lab_report(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Laboratory report: sample information and 5 to 12 results with flags."""
    lang = ctx.language
    sampled = (ctx.created_at - dt.timedelta(hours=rng.randint(3, 36))).date()
    picks = sorted(rng.sample(range(len(ANALYTES)), rng.randint(5, 12)))
    rows = tuple(_lab_row(ANALYTES[i], ctx.patient_sex, lang, rng) for i in picks)
    sample = [
        labelled(
            term("laboratory", lang), ctx.organisation_name or term("default_lab", lang), lang
        ),
        labelled(term("sampled_at", lang), fmt_date(sampled, lang), lang),
    ]
    header = tuple(term(key, lang) for key in ("analysis", "result", "unit", "reference", "flag"))
    notes = [term("flag_legend", lang)]
    if ctx.author_name:
        notes.append(labelled(term("validated_by", lang), ctx.author_name, lang))
    return [
        text_section(term("sample", lang), *sample),
        Section(term("results", lang), table=Table(header, rows, (36, 14, 18, 22, 10), "LRLCC")),
        text_section("", *notes),
    ]


def insurer_summary(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Insurer summary: services reimbursed over the past 12 months with totals."""
    lang = ctx.language
    today = document_date(ctx)
    start = today - dt.timedelta(days=365)
    drawn = []
    for _ in range(rng.randint(4, 14)):
        code, provider, (low, high), rate = rng.choices(SERVICES, weights=SERVICE_WEIGHTS)[0]
        amount = round(rng.uniform(low, high), 2)
        drawn.append(
            (random_date(rng, start, today), code, provider, amount, round(amount * rate, 2))
        )
    drawn.sort(key=lambda service: service[0])
    rows = [
        (
            fmt_date(day, lang),
            tr(provider, lang),
            code,
            fmt_num(amount, 2, lang),
            fmt_num(paid, 2, lang),
        )
        for day, code, provider, amount, paid in drawn
    ]
    total = sum(s[3] for s in drawn)
    paid_total = sum(s[4] for s in drawn)
    rows.append(
        ("", term("total", lang), "", fmt_num(total, 2, lang), fmt_num(paid_total, 2, lang))
    )
    header = tuple(
        term(key, lang) for key in ("date", "provider", "tariff_code", "amount", "reimbursed")
    )
    period = term("period", lang, start=fmt_date(start, lang), end=fmt_date(today, lang))
    return [
        Section(
            term("services", lang),
            (period,),
            Table(header, tuple(rows), (16, 38, 12, 17, 17), "LLCRR"),
        )
    ]


def imaging_report(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Imaging report: examination, indication, technique, findings, conclusion."""
    lang = ctx.language
    exam = rng.choice(EXAMS)
    findings, conclusion = rng.choice(exam.outcomes)
    parts = (
        ("exam", exam.name),
        ("indication", rng.choice(exam.indications)),
        ("technique", exam.technique),
        ("findings", findings),
        ("conclusion", conclusion),
    )
    return [text_section(term(key, lang), tr(text, lang)) for key, text in parts]


def medical_certificate(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Medical certificate: fitness for sport or sick leave with dates."""
    lang = ctx.language
    today = document_date(ctx)
    values = {
        "author": ctx.author_name or tr(UNDERSIGNED, lang),
        "patient": f"{ctx.patient_given} {ctx.patient_family}",
        "birth": fmt_date(ctx.patient_birth_date, lang),
        "date": fmt_date(today, lang),
    }
    if age_in_years(ctx.patient_birth_date, today) < 18 or rng.random() < 0.3:
        body = [tr(SPORT_CERTIFICATE, lang).format(sport=tr(rng.choice(SPORTS), lang), **values)]
    else:
        end = today + dt.timedelta(days=rng.randint(2, 14))
        leave = tr(SICK_LEAVE, lang).format(
            start=fmt_date(today, lang), end=fmt_date(end, lang), **values
        )
        body = [leave, tr(rng.choice(OUTINGS), lang)]
    return [text_section(term("certificate", lang), *body, tr(CERTIFICATE_CLOSING, lang))]


def prescription(ctx: DocumentContext, rng: random.Random) -> list[Section]:
    """Prescription: one to four medicines with dosage and duration."""
    lang = ctx.language
    items = rng.sample(PRESCRIPTION_ITEMS, rng.randint(1, 4))
    rows = tuple(
        (
            tr(MEDICINES[key].name, lang),
            tr(MEDICINES[key].dosage, lang),
            term("days", lang, n=rng.choice(durations)),
        )
        for key, durations in items
    )
    header = (term("medicine", lang), term("dosage", lang), term("duration", lang))
    return [Section(term("prescribed", lang), table=Table(header, rows, (36, 50, 14), "LLL"))]
