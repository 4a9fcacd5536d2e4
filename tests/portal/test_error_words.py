"""Errors raised by services are said in the visitor's language on the portal (issue 21).

The messages the services raise that reach a portal form are listed in
``portal/error_words.py`` (and so extracted into the catalogues, whose completeness
``tests/web/test_i18n.py`` checks): a new literal message in one of those services fails here
until it is listed.
"""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest

from carnet.access.errors import AccessRuleNotFound, InvalidAccessRule, ProfessionalBlocked
from carnet.errors import InvalidInput
from carnet.portal.error_words import SERVICE_MESSAGES, said

SOURCES = Path(__file__).resolve().parents[2] / "src" / "carnet"
# The services whose refusals a portal page shows (forms of access, documents, essential data).
SERVICES = (
    "access/rules.py",
    "access/care.py",
    "access/errors.py",
    "access/representation.py",
    "essentials/service.py",
    "essentials/errors.py",
    "documents/metadata.py",
    "documents/publication.py",
    "documents/errors.py",
    "patients/errors.py",
)


def _literal_messages(path: Path) -> set[str]:
    """Sentences passed as the first argument of an error's constructor (or ``__init__``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        first = node.args[0]
        if (
            (name[:1].isupper() or name == "__init__")
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and " " in first.value
            and first.value.endswith((".", "?"))
            and "%" not in first.value  # not a gettext message: said by its kind instead
        ):
            found.add(first.value)
    return found


@pytest.mark.parametrize("service", SERVICES)
def test_every_message_a_service_raises_is_listed(service: str) -> None:
    missing = sorted(_literal_messages(SOURCES / service) - set(SERVICE_MESSAGES))
    assert not missing, f"list these in carnet/portal/error_words.py and translate them: {missing}"


def test_a_service_message_is_said_in_french_and_german() -> None:
    error = InvalidAccessRule("The end date is already past.", field="ends_at")
    assert said(error, "en") == "The end date is already past."
    assert said(error, "fr") == "La date de fin est déjà passée."
    assert said(error, "de") == "Das Enddatum liegt bereits in der Vergangenheit."
    assert "bloqué" in said(ProfessionalBlocked(uuid.uuid4()), "fr")


def test_a_message_with_a_value_falls_back_to_a_sentence_of_its_kind() -> None:
    error = AccessRuleNotFound("live grant")
    assert said(error, "en") == "No such live grant in this dossier."
    assert said(error, "fr") == "Il n'y a rien à cette adresse."


def test_the_portals_own_errors_are_already_in_the_visitors_language() -> None:
    assert said(InvalidInput("Choisissez le fichier à ajouter.", field="file"), "fr") == (
        "Choisissez le fichier à ajouter."
    )
