"""Errors of the indicators domain."""

from __future__ import annotations

from carnet.errors import InvalidInput


class InvalidPeriod(InvalidInput):
    """The period asked for is backwards, or longer than indicators are computed over."""
