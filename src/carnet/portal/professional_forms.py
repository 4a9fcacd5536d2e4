"""What the professional portal's forms share: reading a typed date."""

from __future__ import annotations

import datetime as dt
import re

# Browsers without a date picker send what was typed: ISO, or the day first as in Europe.
_DAY_FIRST = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")


def parse_date(text: str) -> dt.date | None:
    """The date in ``text`` (2026-05-31, 31/05/2026 or 31.05.2026); None when empty.

    Raises ``ValueError`` for anything else, or a day that does not exist.
    """
    text = text.strip()
    if not text:
        return None
    day_first = _DAY_FIRST.match(text)
    if day_first:
        day, month, year = (int(part) for part in day_first.groups())
        return dt.date(year, month, day)
    return dt.date.fromisoformat(text)
