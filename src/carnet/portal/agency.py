"""The agency portal: the indicators, their CSV export, and enrolment from the insurer's registry.

For the agency's operators and security officers (``OperatorVisit``). Every figure comes from
``carnet.indicators`` (aggregates only, each reading audited); an enrolment goes through
``lifecycle.enrolment`` with the operator's own ``Actor``.

Charts are drawn here, on the server, as SVG by pygal, and inlined in the page. The page's CSP
refuses inline ``<style>`` and ``<script>``, and pygal puts both in every SVG; they are taken
out (``_inline_svg``) and ``agency.css`` styles pygal's classes instead, so ``_STYLE`` only
gives pygal the font sizes it lays text out with, and names the colours ``agency.css`` uses.
Each chart is a ``<figure>`` with its caption and a table of the same numbers beside it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import sys
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import pygal  # type: ignore[import-untyped]
from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup
from pygal.style import Style  # type: ignore[import-untyped]
from starlette.datastructures import UploadFile

from carnet.access.actors import ActorKind
from carnet.indicators.enrolments import (
    MAX_PROBLEMS_KEPT,
    EnrolmentRun,
    past_runs,
    run_enrolment,
)
from carnet.indicators.errors import InvalidPeriod
from carnet.indicators.service import (
    DEFAULT_PERIOD_DAYS,
    MAX_PERIOD_DAYS,
    Indicators,
    Period,
    export_indicators,
    read_indicators,
)
from carnet.lifecycle.enrolment import OPTIONAL, REQUIRED
from carnet.lifecycle.errors import InvalidRegistryFile
from carnet.portal.error_words import said
from carnet.portal.visits import CheckedForm, OperatorVisit, Visit

# pygal appends a legacy finder to sys.meta_path, for map plugins Carnet does not use; Python
# 3.11 then warns (ImportWarning: find_spec() not found) at every failed import anywhere in the
# process, and the tests turn warnings into errors. Taken out again as soon as pygal is in.
sys.meta_path[:] = [
    finder for finder in sys.meta_path if not isinstance(finder, pygal.PluginImportFixer)
]

HOME = "/portal/agency"
router = APIRouter(prefix=HOME, include_in_schema=False)

# The choices offered beside the period form, in days up to today.
PRESETS = (30, 90, 365)
_SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", _SVG)
ET.register_namespace("xlink", "http://www.w3.org/1999/xlink")
# carnet.css's palette: --brand, --ok, --ink, --ink-soft, --line, --paper.
_STYLE = Style(
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif',
    background="transparent",
    plot_background="#ffffff",
    foreground="#1b1f24",
    foreground_strong="#1b1f24",
    foreground_subtle="#4a5360",
    guide_stroke_color="#c9d0d9",
    major_guide_stroke_color="#c9d0d9",
    colors=("#0b5cab", "#1d6b35"),
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    value_font_size=12,
    tooltip_font_size=12,
    title_font_size=14,
)


# --- indicators ----------------------------------------------------------------------------------


@router.get("")
def home(visit: OperatorVisit) -> Response:
    """The indicators for a period (the last 90 days unless the form chose others)."""
    try:
        period = _period(visit)
    except InvalidPeriod:
        return _home(visit, None, status_code=422, error=_period_problem(visit))
    with visit.transaction() as session:
        indicators = read_indicators(
            session, visit.actor, period, clock=visit.platform.clock, language=visit.language
        )
    return _home(visit, indicators)


@router.get("/indicators.csv")
def indicators_csv(visit: OperatorVisit) -> Response:
    """The indicators of the chosen period as CSV: one ``indicator,key,value`` row per figure."""
    try:
        period = _period(visit)
    except InvalidPeriod:
        return _home(visit, None, status_code=422, error=_period_problem(visit))
    with visit.transaction() as session:
        indicators = export_indicators(
            session, visit.actor, period, clock=visit.platform.clock, language=visit.language
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("indicator", "key", "value"))
    writer.writerows(indicators.rows())
    name = f"carnet-indicators-{period.first_day.isoformat()}-{period.last_day.isoformat()}.csv"
    response = Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return visit.keep(response)


def _period(visit: Visit) -> Period:
    params = visit.request.query_params
    first, last = params.get("from", "").strip(), params.get("to", "").strip()
    clock = visit.platform.clock
    if not first and not last:
        return Period.last_days(DEFAULT_PERIOD_DAYS, clock=clock)
    try:
        last_day = dt.date.fromisoformat(last) if last else clock.now().astimezone(dt.UTC).date()
        first_day = (
            dt.date.fromisoformat(first)
            if first
            else last_day - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        )
    except ValueError:
        raise InvalidPeriod("The period's days are not dates.", field="from") from None
    return Period.between(first_day, last_day)


def _period_problem(visit: Visit) -> str:
    return visit.gettext(
        "Choose a period with dates, that ends after it starts and lasts at most %(days)s days.",
        days=visit.formats.number(MAX_PERIOD_DAYS),
    )


def _home(
    visit: Visit,
    indicators: Indicators | None,
    *,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    params = visit.request.query_params
    context: dict[str, Any] = {
        "indicators": indicators,
        "error": error,
        # What the form shows: the period computed, or what was typed when it was refused.
        "period_from": indicators.period.first_day.isoformat()
        if indicators
        else params.get("from", ""),
        "period_to": indicators.period.last_day.isoformat() if indicators else params.get("to", ""),
        "presets": _presets(visit),
    }
    if indicators is not None:
        query = urlencode(
            {
                "from": indicators.period.first_day.isoformat(),
                "to": indicators.period.last_day.isoformat(),
            }
        )
        context |= {
            "csv_url": f"{HOME}/indicators.csv?{query}",
            "types_chart": _types_chart(visit, indicators),
            "daily_chart": _daily_chart(visit, indicators),
        }
    return visit.render("agency/home.html", status_code=status_code, **context)


def _presets(visit: Visit) -> list[tuple[str, str]]:
    today = visit.platform.clock.now().astimezone(dt.UTC).date()
    links = []
    for days in PRESETS:
        query = urlencode(
            {"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
        )
        links.append(
            (
                f"{HOME}?{query}",
                visit.gettext("Last %(days)s days", days=visit.formats.number(days)),
            )
        )
    return links


# --- charts ------------------------------------------------------------------------------------


def _types_chart(visit: Visit, indicators: Indicators) -> Markup | None:
    """Current documents by type, as horizontal bars (most frequent on top)."""
    kinds = indicators.documents_by_type
    if not kinds:
        return None
    chart = pygal.HorizontalBar(
        **_chart_options(visit, width=520, height=max(160, 60 + 36 * len(kinds))),
        show_legend=False,
        y_labels=_count_ticks(max(kind.count for kind in kinds)),
    )
    # pygal draws the first label at the bottom: reversed, the largest bar is on top.
    ordered = list(reversed(kinds))
    chart.x_labels = [kind.label for kind in ordered]
    chart.add(visit.gettext("Documents"), [kind.count for kind in ordered])
    return _inline_svg(chart, "types-caption")


def _daily_chart(visit: Visit, indicators: Indicators) -> Markup:
    """Consultations and new documents per day, as two lines (the second one dashed)."""
    days = [entry.day for entry in indicators.consultations]
    highest = max(entry.count for entry in (*indicators.consultations, *indicators.new_documents))
    chart = pygal.Line(
        **_chart_options(visit, width=1000, height=360),
        legend_at_bottom=True,
        y_labels=_count_ticks(highest),
        show_minor_x_labels=False,
        x_labels_major_every=max(1, len(days) // 8),
        show_dots=len(days) <= 31,
        include_x_axis=True,
    )
    chart.x_labels = [visit.formats.date(day, "short") for day in days]
    chart.add(visit.gettext("Consultations"), [entry.count for entry in indicators.consultations])
    chart.add(visit.gettext("New documents"), [entry.count for entry in indicators.new_documents])
    return _inline_svg(chart, "daily-caption")


def _count_ticks(highest: int) -> list[int]:
    """Whole-number ticks from 0 to ``highest`` or just past it, at most six, 1-2-5 apart.

    Counts have no halves: pygal's own ticks would show 0.2, 0.4, ...
    """
    if highest <= 0:
        return [0, 1]
    steps = (factor * 10**power for power in range(16) for factor in (1, 2, 5))
    step = next(step for step in steps if math.ceil(highest / step) <= 5)
    return list(range(0, math.ceil(highest / step) * step + 1, step))


def _chart_options(visit: Visit, *, width: int, height: int) -> dict[str, Any]:
    return {
        "style": _STYLE,
        # The drawing's own size: the SVG then scales to its box, text with it.
        "width": width,
        "height": height,
        # Dates are short enough; pygal would shorten them to "…" when there are many.
        "truncate_label": -1,
        # Never a script from elsewhere (pygal's default tooltips load one from a CDN).
        "js": [],
        "no_prefix": True,
        "disable_xml_declaration": True,
        "explicit_size": False,
        "margin": 12,
        "value_formatter": visit.formats.number,
    }


def _inline_svg(chart: Any, labelled_by: str) -> Markup:
    """The chart's SVG, ready to sit in the page under its CSP.

    Out go pygal's ``<defs>`` (an inline ``<style>`` and ``<script>``, both refused by the CSP),
    its comments (dropped by the parser), its title ("Pygal") and the tooltip layer its script
    would have driven. The SVG becomes one image named by its figure's caption.
    """
    svg = str(chart.render(is_unicode=True))
    root = ET.fromstring(svg)  # noqa: S314 — pygal's own output, never outside input
    for child in list(root):
        if child.tag in (f"{{{_SVG}}}defs", f"{{{_SVG}}}title"):
            root.remove(child)
    for parent in list(root.iter()):
        for child in list(parent):
            if "tooltip-overlay" in child.get("class", ""):
                parent.remove(child)
    root.attrib.pop("id", None)
    root.set("role", "img")
    root.set("aria-labelledby", labelled_by)
    root.set("focusable", "false")
    text = ET.tostring(root, encoding="unicode")
    return Markup(text)  # noqa: S704 — serialised from the tree above, built from escaped data


# --- enrolment ---------------------------------------------------------------------------------


@router.get("/enrolment")
def enrolment(visit: OperatorVisit) -> Response:
    """The enrolment page: the upload form and the runs started from the portal before."""
    return _enrolment_page(visit)


@router.post("/enrolment")
def enrol(visit: OperatorVisit, form: CheckedForm) -> Response:
    """Enrol an uploaded registry file and show its report, problems listed by line."""
    upload = form.get("registry")
    if not isinstance(upload, UploadFile):
        return _no_file(visit)
    # The request does not close what a dependency parsed: the spooled upload is closed here,
    # whatever happens to the run.
    with upload.file:
        if not upload.filename:
            return _no_file(visit)
        try:
            run = run_enrolment(
                visit.platform.sessions,
                upload.file,
                actor=visit.actor,
                file_name=upload.filename,
                clock=visit.platform.clock,
                opening_delay=dt.timedelta(days=visit.platform.settings.opening_delay_days),
            )
        except InvalidRegistryFile as error:
            return _enrolment_page(visit, status_code=422, error=said(error, visit.language))
    return _enrolment_page(visit, run=run)


def _no_file(visit: Visit) -> Response:
    return _enrolment_page(
        visit, status_code=422, error=visit.gettext("Choose the registry file to upload.")
    )


def _enrolment_page(
    visit: Visit,
    *,
    run: EnrolmentRun | None = None,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    with visit.transaction() as session:
        runs = past_runs(session, visit.actor, clock=visit.platform.clock)
    return visit.render(
        "agency/enrolment.html",
        status_code=status_code,
        run=run,
        runs=runs,
        error=error,
        can_enrol=visit.actor.kind is ActorKind.OPERATOR,
        required_columns=REQUIRED,
        optional_columns=OPTIONAL,
        max_problems=MAX_PROBLEMS_KEPT,
    )
