"""The portal templates' Jinja environment, one per language."""

from __future__ import annotations

from functools import cache

from babel import Locale
from jinja2 import Environment, PackageLoader, select_autoescape

from carnet.web.i18n import LANGUAGE_NAMES, LANGUAGES, translations


@cache
def environment(language: str) -> Environment:
    """The Jinja environment of the portal templates, speaking ``language``."""
    env = Environment(
        loader=PackageLoader("carnet.portal", "templates"),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["languages"] = [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES]
    env.globals["language_name"] = Locale.parse(language).get_display_name(language)
    return env
