"""What the databases can store, checked before they see it.

PostgreSQL refuses a string longer than its ``String(n)`` column, a NUL character, a timestamp
that does not fit, an integer over its column's width; SQLite stores most of these silently. Left
to the database, each became a ``DataError`` mid-transaction, answered as if the database were
down. Here the same rules are read from the models themselves (the column's length, its type),
so a limit cannot drift from the schema, and a refusal names the field at fault.

``guard_rows`` runs on every ORM insert and update (installed on ``carnet.db.Base``): whatever
the way in, nothing unstorable reaches a flush. The ways in check earlier where they can name
the field in their own words (a FHIRPath, a search parameter, an OAuth parameter).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import BigInteger, Column, ColumnElement, Integer, SmallInteger, String, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper

from carnet.errors import InvalidValue

# FHIR R4 string (http://hl7.org/fhir/R4/datatypes.html#string): no character below U+0020 but
# tab, carriage return and line feed. Lone surrogates cannot be encoded in UTF-8 at all.
_FREE_TEXT_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
# Identifiers, codes and search parameters: no control character at all (DEL included).
_CODE_REFUSED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# What no database column may hold whatever the text: PostgreSQL refuses NUL in text.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

_INTEGER_BITS = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))


def check_text(value: str, *, field: str, limit: int | None = None, free_text: bool = True) -> str:
    """``value`` if it holds no refused character and at most ``limit`` characters.

    Free text may hold tab, CR and LF; identifiers and codes (``free_text=False``) no control
    character. Raises ``InvalidValue`` naming ``field``.
    """
    found = (_FREE_TEXT_REFUSED if free_text else _CODE_REFUSED).search(value)
    if found is not None:
        raise InvalidValue(
            f"{field} holds a control character (U+{ord(found.group()):04X}), which is refused.",
            field=field,
            reason="character",
        )
    if limit is not None and len(value) > limit:
        raise InvalidValue(
            f"{field} is {len(value)} characters long; at most {limit} are kept.",
            field=field,
            reason="too-long",
        )
    return value


def utc_instant(value: dt.datetime, *, field: str) -> dt.datetime:
    """``value`` in UTC; ``InvalidValue`` if it is naive or leaves the years 1 to 9999 in UTC."""
    if value.tzinfo is None:
        raise InvalidValue(f"{field} needs a time zone.", field=field, reason="out-of-range")
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise InvalidValue(
            f"{field} falls outside the years 1 to 9999 once in UTC.",
            field=field,
            reason="out-of-range",
        ) from None


def column_limit(column: ColumnElement[Any]) -> int | None:
    """The length of a ``String(n)`` column, None if it has none."""
    return column.type.length if isinstance(column.type, String) else None


def check_column(column: Column[Any], value: Any, *, field: str | None = None) -> None:
    """Refuse ``value`` if ``column`` cannot store it (length, NUL, instant, integer width).

    ``field`` names the value for the client; by default ``table.column``.
    """
    if value is None:
        return
    name = field or f"{column.table.name}.{column.name}"
    if isinstance(value, str):
        found = _UNSTORABLE.search(value)
        if found is not None:
            raise InvalidValue(
                f"{name} holds a character that cannot be stored (U+{ord(found.group()):04X}).",
                field=name,
                reason="character",
            )
        # Other control characters are storable: the ways in refuse them where their rules do
        # (FHIR strings, identifiers), not every column (extracted text may hold a form feed).
        limit = column_limit(column)
        if limit is not None and len(value) > limit:
            raise InvalidValue(
                f"{name} is {len(value)} characters long; at most {limit} are kept.",
                field=name,
                reason="too-long",
            )
    elif isinstance(value, dt.datetime) and value.tzinfo is not None:
        utc_instant(value, field=name)
    elif isinstance(value, int) and not isinstance(value, bool):
        bits = next((b for kind, b in _INTEGER_BITS if isinstance(column.type, kind)), None)
        if bits is not None and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise InvalidValue(f"{name} is out of range.", field=name, reason="out-of-range")


def guard_rows(base: type[Any]) -> None:
    """Check every row of ``base``'s models against its columns before it is inserted or updated.

    Raised inside the flush, the refusal rolls the whole unit of work back: nothing half-written.
    """

    def check(_mapper: Mapper[Any], _connection: Connection, target: Any) -> None:
        for attribute in _mapper.column_attrs:
            column = attribute.columns[0]
            if isinstance(column, Column):
                check_column(column, target.__dict__.get(attribute.key))

    event.listen(base, "before_insert", check, propagate=True)
    event.listen(base, "before_update", check, propagate=True)
