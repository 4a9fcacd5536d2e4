"""Search parameter parsing shared by the FHIR interactions.

Every request under ``/fhir`` has its parameters screened once, before any interaction reads
them (``screen_request``, a dependency of the whole FHIR router): the query string, a form body
(``POST …/_search``) and the path's ids. A control character or an over-long value is refused
with 400 naming the parameter, whatever the interaction; nothing of it reaches a query or the
audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from urllib.parse import parse_qsl

from fastapi import Request

from carnet.errors import InvalidInput
from carnet.storable import check_text, utc_instant

# No FHIR search parameter Carnet knows has a longer name (``patient.identifier``).
MAX_NAME_CHARS = 64
# A value: an identifier, a name, a date, or a comma-separated list of ids (``_id``); the
# longest Carnet takes, a list of 50 DocumentReference ids, is 3,700 characters.
MAX_VALUE_CHARS = 4096
_FORM = "application/x-www-form-urlencoded"


class InvalidSearch(InvalidInput):
    """A search parameter Carnet cannot read; ``field`` names it."""


def date_range(values: list[str], name: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """FHIR date parameters (``ge``, ``gt``, ``le``, ``lt``, ``eq``) as a half-open interval."""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    for value in values:
        prefix, text = (
            (value[:2], value[2:]) if value[:2] in ("ge", "gt", "le", "lt", "eq") else ("eq", value)
        )
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as error:
            raise InvalidSearch(
                f"{name} {value!r} is not [ge|gt|le|lt]YYYY-MM-DD[Thh:mm:ss].", field=name
            ) from error
        moment = utc_instant(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC), field=name)
        try:
            step = dt.timedelta(days=1) if len(text) == 10 else dt.timedelta(microseconds=1)
            after = moment + step
        except OverflowError:
            # The end of year 9999: nothing is stored after it.
            after = dt.datetime.max.replace(tzinfo=dt.UTC)
        if prefix in ("ge", "eq"):
            since = moment
        if prefix == "gt":
            since = after
        if prefix == "lt":
            until = moment
        if prefix in ("le", "eq"):
            until = after
    return since, until


def screen_parameters(pairs: Iterable[tuple[str, str]]) -> None:
    """Refuse (``InvalidValue``, naming it) a parameter with a control character or too long."""
    for name, value in pairs:
        shown = name.encode("unicode_escape").decode("ascii")
        check_text(name, field=shown, limit=MAX_NAME_CHARS, free_text=False)
        check_text(value, field=name, limit=MAX_VALUE_CHARS, free_text=False)


async def screen_request(request: Request) -> None:
    """A dependency of every FHIR route: screen the query string, a form body and path ids."""
    pairs = parse_qsl(request.url.query, keep_blank_values=True)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method == "POST" and content_type == _FORM:
        body = (await request.body()).decode("utf-8", errors="replace")
        pairs += parse_qsl(body, keep_blank_values=True)
    pairs += [(name, str(value)) for name, value in request.path_params.items()]
    screen_parameters(pairs)
