"""Search parameter parsing shared by the FHIR interactions."""

from __future__ import annotations

import datetime as dt

from carnet.errors import InvalidInput


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
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        after = moment + (dt.timedelta(days=1) if len(text) == 10 else dt.timedelta(microseconds=1))
        if prefix in ("ge", "eq"):
            since = moment
        if prefix == "gt":
            since = after
        if prefix == "lt":
            until = moment
        if prefix in ("le", "eq"):
            until = after
    return since, until
