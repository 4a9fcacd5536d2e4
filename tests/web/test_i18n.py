"""The French and German catalogues: complete for the messages in the sources, faithful to their
placeholders, compilable, and actually used by the pages; and the choice of a visitor's language.

The messages are extracted from the sources at test time with the mapping of ``babel.cfg``, so a
string added to a portal page without its translations fails here (``babel.cfg`` says how to
refresh the catalogues).
"""

from __future__ import annotations

import gettext
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from carnet.portal.i18n import environment
from carnet.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, Formats, negotiate, translations

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "src" / "carnet" / "web" / "locale"
TRANSLATED = tuple(language for language in LANGUAGES if language != DEFAULT_LANGUAGE)
PLURAL_FORMS = {"fr": "(n > 1)", "de": "(n != 1)"}
REFRESH = "refresh the catalogues as the comment at the top of babel.cfg says"
# A printf-style placeholder: %(name)s, %(count)d... ("%%" is a literal percent sign).
PLACEHOLDER = re.compile(r"%\([^)]*\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]")
NNBSP = "\u202f"  # French typography: a narrow no-break space before ; : ! ? and inside « »


@dataclass(frozen=True)
class Source:
    """A message found in the sources, and where."""

    id: str | tuple[str, ...]
    context: str | None
    where: str

    @property
    def english(self) -> tuple[str, ...]:
        """The msgid, and its plural if it has one."""
        return self.id if isinstance(self.id, tuple) else (self.id,)

    @property
    def key(self) -> str:
        return self.english[0]


@cache
def extracted() -> tuple[Source, ...]:
    """Every message of the portals and the sign-in page, as ``pybabel extract`` finds them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config, "babel.cfg")  # type: ignore[no-untyped-call]
    return tuple(
        Source(message, context, f"{filename}:{line}")
        for filename, line, message, _comments, context in extract_from_dir(
            str(ROOT), method_map, options_map
        )
    )


@cache
def catalog(language: str) -> Catalog:
    """The ``.po`` catalogue of ``language``, as the application reads it."""
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def ids(message: Message) -> tuple[str, ...]:
    """The English of a message: its msgid, and its plural if it has one."""
    return (message.id,) if isinstance(message.id, str) else tuple(message.id or ())


def forms(message: Message) -> tuple[str, ...]:
    """The translation of a message: one string, or one per plural form."""
    string = message.string
    if isinstance(string, str):
        return (string,)
    return tuple(form or "" for form in string or ())


def translated(language: str) -> Iterator[Message]:
    """The catalogue's messages, without its header."""
    return (message for message in catalog(language) if message.id)


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def stray_percent(text: str) -> bool:
    """A ``%`` that is neither a placeholder nor ``%%``: formatting the message would fail."""
    return "%" in PLACEHOLDER.sub("", text).replace("%%", "")


# --- the sources --------------------------------------------------------------------------------


def test_extraction_finds_the_portal_messages_only() -> None:
    sources = extracted()
    assert len({source.key for source in sources}) > 300, "babel.cfg no longer finds the messages"
    outside = {
        source.where
        for source in sources
        if not source.where.startswith(
            ("src/carnet/portal/", "src/carnet/web/", "src/carnet/oauth/")
        )
    }
    assert not outside, f"messages extracted from other sources: {sorted(outside)}"
    plural = [source for source in sources if isinstance(source.id, tuple)]
    assert plural, "the ngettext messages are no longer extracted"
    assert all(len(source.id) == 2 for source in plural)


def test_the_template_lists_every_message() -> None:
    with (LOCALE / "messages.pot").open("rb") as pot:
        template = read_po(pot)
    missing = sorted(
        {source.key for source in extracted() if template.get(source.id, source.context) is None}
    )
    assert not missing, f"messages.pot is out of date ({REFRESH}): {missing}"


# --- the catalogues -----------------------------------------------------------------------------


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_header_declares_language_plurals_and_encoding(language: str) -> None:
    po = catalog(language)
    assert str(po.locale) == language
    assert not po.fuzzy, "the header is marked fuzzy"
    headers = dict(po.mime_headers)
    assert headers["Language"] == language
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Plural-Forms"] == f"nplurals=2; plural={PLURAL_FORMS[language]};"
    assert po.num_plurals == 2


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_of_the_sources_is_translated(language: str) -> None:
    po = catalog(language)
    problems = []
    for source in extracted():
        message = po.get(source.id, source.context)
        if message is None:
            problems.append(f"missing: {source.key!r} ({source.where})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {source.key!r} ({source.where})")
        elif source.english != ids(message):
            problems.append(f"plural changed: {source.key!r} ({source.where})")
        elif message.pluralizable and len(forms(message)) != po.num_plurals:
            problems.append(f"not every plural form: {source.key!r} ({source.where})")
        elif not all(form.strip() for form in forms(message)):
            problems.append(f"untranslated: {source.key!r} ({source.where})")
    assert not problems, f"{language} catalogue ({REFRESH}):\n" + "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("language", TRANSLATED)
def test_no_entry_is_fuzzy(language: str) -> None:
    fuzzy = [message.id for message in translated(language) if message.fuzzy]
    assert not fuzzy, f"check these {language} guesses and remove their fuzzy flag: {fuzzy}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_keep_the_placeholders(language: str) -> None:
    problems = []
    for message in translated(language):
        english = ids(message)
        expected = set().union(*(placeholders(text) for text in english))
        for form in forms(message):
            if placeholders(form) != expected:
                found = sorted(placeholders(form))
                problems.append(f"{english[0]!r}: {found} != {sorted(expected)}")
            if stray_percent(form):
                # Jinja's newstyle gettext always formats: a bare % breaks the page.
                problems.append(f"{english[0]!r}: a bare % in {form!r}")
    assert not problems, "\n".join(problems)
    # Babel's own checks (python-format flags, number of plural forms).
    errors = [
        (message.id, error) for message, errors in catalog(language).check() for error in errors
    ]
    assert not errors


@pytest.mark.parametrize("language", TRANSLATED)
def test_translations_add_no_markup(language: str) -> None:
    added = [
        message.id
        for message in translated(language)
        if "<" not in str(message.id) and any("<" in form or ">" in form for form in forms(message))
    ]
    assert not added


FRENCH_SPACING = (
    # ; : ! ? and » close up to U+202F, never to a word or to another space; « opens with one.
    re.compile(rf"(?<!{NNBSP})[;:!?»](?=\s|$)"),
    re.compile(rf"[^\S{NNBSP}][;:!?»]"),
    re.compile(rf"«(?!{NNBSP})"),
    re.compile('"'),
)


def test_french_punctuation_takes_a_narrow_no_break_space() -> None:
    problems = [
        form
        for message in translated("fr")
        for form in forms(message)
        if any(rule.search(form) for rule in FRENCH_SPACING)
    ]
    assert not problems, "\n".join(problems)


def test_german_punctuation() -> None:
    problems = [
        form
        for message in translated("de")
        for form in forms(message)
        if re.search(r"\s[;:!?]", form) or '"' in form or "«" in form or "»" in form
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalogue_compiles_and_translates(language: str) -> None:
    compiled = io.BytesIO()
    write_mo(compiled, catalog(language))
    compiled.seek(0)
    machine = gettext.GNUTranslations(compiled)
    assert machine.info()["language"] == language
    assert machine.gettext("Sign in") not in ("", "Sign in")
    # Plural forms follow the language's rule (French: 0 and 1 are singular).
    one, many = (
        machine.ngettext("%(num)s document", "%(num)s documents", 1),
        machine.ngettext("%(num)s document", "%(num)s documents", 2),
    )
    assert one != many
    assert machine.ngettext("%(num)s document", "%(num)s documents", 0) == (
        one if language == "fr" else many
    )
    # What the application compiles at start is the same catalogue.
    assert translations(language).gettext("Sign in") == machine.gettext("Sign in")


# --- the pages ----------------------------------------------------------------------------------

LANDING = {
    "fr": ("Votre dossier de soins partagé", "Se connecter", "Déconnexion effectuée."),
    "de": ("Ihre gemeinsame Patientenakte", "Anmelden", "Sie sind abgemeldet."),
}
ENGLISH = ("Your shared health record", "Sign in", "You are signed out.", "Health professionals")


def landing(language: str) -> str:
    """The public landing page, rendered as ``visits.public_page`` does, after signing out."""
    return (
        environment(language)
        .get_template("landing.html")
        .render(
            visit=None,
            actor=None,
            csrf=None,
            fmt=Formats(language, ZoneInfo("Europe/Luxembourg")),
            flash=None,
            static="/portal/static",
            language=language,
            path="/portal",
            query="signed-out",
        )
    )


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_landing_page_speaks_the_language(language: str) -> None:
    page = landing(language)
    assert f'<html lang="{language}">' in page
    for text in LANDING[language]:
        assert text in page
    for text in ENGLISH:
        assert text not in page


def test_the_landing_page_in_english_is_the_source() -> None:
    page = landing("en")
    for text in ENGLISH:
        assert text in page


# --- choosing the language ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cookie", "accept_language", "expected"),
    [
        # The browser's preferences, by weight rather than by position.
        (None, "de-LU,de;q=0.9,fr;q=0.8,en;q=0.5", "de"),
        (None, "en;q=0.3, fr-FR;q=0.9, de;q=0.8", "fr"),
        (None, "es-ES,es;q=0.9,de;q=0.7,fr;q=0.6", "de"),
        (None, "FR-be", "fr"),
        # Equal weights keep the browser's order; a malformed weight drops its tag.
        (None, "de, fr", "de"),
        (None, "fr;q=0.5, de;q=0.5", "fr"),
        (None, "fr;q=high, de;q=0.2", "de"),
        (None, "fr;q=0, de;q=0.1", "de"),
        # The visitor's own choice wins over the browser; an unknown one is ignored.
        ("fr", "de-DE,de;q=0.9", "fr"),
        ("de", None, "de"),
        ("en", "fr", "en"),
        ("es", "de", "de"),
        # Nothing Carnet speaks: English.
        (None, "es-ES,it;q=0.8,pt", "en"),
        (None, "*", "en"),
        (None, "", "en"),
        (None, None, "en"),
        ("", None, "en"),
    ],
)
def test_negotiate(cookie: str | None, accept_language: str | None, expected: str) -> None:
    assert negotiate(cookie, accept_language) == expected
