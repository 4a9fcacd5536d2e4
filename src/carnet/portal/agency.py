"""The agency portal: the indicators, their CSV export, and enrolment from the insurer's registry.

For the agency's operators and security officers (``OperatorVisit``). Every figure comes from
``carnet.indicators`` (aggregates only, each reading audited); an enrolment goes through
``lifecycle.enrolment`` with the operator's own ``Actor``.

Charts are drawn on the server as SVG by pygal (``portal.charts``) and inlined in the page.
Each chart is a ``<figure>`` with its caption and a table of the same numbers beside it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import sys
from typing import Any
from urllib.parse import urlencode

import pygal  # type: ignore[import-untyped]
from fastapi import APIRouter
from fastapi.responses import Response
from markupsafe import Markup
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
from carnet.portal.charts import chart_options, inline_svg
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
        **chart_options(visit, width=520, height=max(160, 60 + 36 * len(kinds))),
        show_legend=False,
        y_labels=_count_ticks(max(kind.count for kind in kinds)),
    )
    # pygal draws the first label at the bottom: reversed, the largest bar is on top.
    ordered = list(reversed(kinds))
    chart.x_labels = [kind.label for kind in ordered]
    chart.add(visit.gettext("Documents"), [kind.count for kind in ordered])
    return inline_svg(chart, "types-caption")


def _daily_chart(visit: Visit, indicators: Indicators) -> Markup:
    """Consultations and new documents per day, as two lines (the second one dashed)."""
    days = [entry.day for entry in indicators.consultations]
    highest = max(entry.count for entry in (*indicators.consultations, *indicators.new_documents))
    chart = pygal.Line(
        **chart_options(visit, width=1000, height=360),
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
    return inline_svg(chart, "daily-caption")


def _count_ticks(highest: int) -> list[int]:
    """Whole-number ticks from 0 to ``highest`` or just past it, at most six, 1-2-5 apart.

    Counts have no halves: pygal's own ticks would show 0.2, 0.4, ...
    """
    if highest <= 0:
        return [0, 1]
    steps = (factor * 10**power for power in range(16) for factor in (1, 2, 5))
    step = next(step for step in steps if math.ceil(highest / step) <= 5)
    return list(range(0, math.ceil(highest / step) * step + 1, step))


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
