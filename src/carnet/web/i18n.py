"""Carnet's languages, for the portals and the sign-in page: gettext catalogues (Babel ``.po``
files), chosen per request.

The ``.po`` files under ``web/locale`` are the source; they are compiled in memory when a
process starts, so no binary catalogue is kept in the repository or built by a step of its own.
English is the source language: a message without a translation shows in English.
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel import dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("fr", "en", "de")
DEFAULT_LANGUAGE = "en"
LANGUAGE_NAMES = {"fr": "Français", "en": "English", "de": "Deutsch"}
LANGUAGE_COOKIE = "carnet_lang"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``language`` (English: no translation)."""
    source = resources.files("carnet.web") / "locale" / language / "LC_MESSAGES" / "messages.po"
    if language == DEFAULT_LANGUAGE or not source.is_file():
        return gettext.NullTranslations()
    with source.open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def negotiate(cookie: str | None, accept_language: str | None) -> str:
    """The language to speak: the visitor's choice, else the browser's, else English."""
    if cookie in LANGUAGES:
        return str(cookie)
    preferred: list[tuple[float, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                continue
        if weight <= 0:
            continue  # RFC 9110 section 12.4.2: q=0 means "not acceptable"
        # A stable order among equal weights: the browser's own.
        preferred.append((-weight + position * 1e-6, tag.split("-")[0].lower()))
    for _weight, language in sorted(preferred):
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


@dataclass(frozen=True)
class Formats:
    """Dates, times and numbers in a language and the portal's time zone."""

    language: str
    zone: ZoneInfo

    def date(self, value: dt.date | dt.datetime | None, form: str = "medium") -> str:
        """A date (an instant is shown on its local calendar day)."""
        if value is None:
            return ""
        if isinstance(value, dt.datetime):
            value = value.astimezone(self.zone).date()
        return dates.format_date(value, format=form, locale=self.language)

    def datetime(self, value: dt.datetime | None, form: str = "medium") -> str:
        """An instant, in the portal's time zone."""
        if value is None:
            return ""
        return dates.format_datetime(value, format=form, tzinfo=self.zone, locale=self.language)

    def number(self, value: float) -> str:
        """A number with the language's grouping."""
        return numbers.format_decimal(value, locale=self.language)

    def percent(self, value: float) -> str:
        """A fraction (0.25) as a percentage (25 %)."""
        return numbers.format_percent(value, format="#,##0.0 %", locale=self.language)
