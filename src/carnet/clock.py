"""Time is injected: deadlines, audit timestamps and demo data stay deterministic in tests."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Tells the current time, always timezone-aware UTC."""

    def now(self) -> dt.datetime:
        """The current instant in UTC."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        """The current instant in UTC."""
        return dt.datetime.now(dt.UTC)


class FrozenClock:
    """A clock that only moves when told to; for tests and the deterministic demo."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        """The frozen instant."""
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        """Move the clock forward by ``delta``."""
        self._at += delta
