"""Domain errors in the visitor's language: what a portal page says when a service refuses.

The services raise their errors in English (the API's ``OperationOutcome`` and the logs speak
it); the portal shows them in French, German or English. The messages that reach a portal form
are listed here as the services write them, so that ``pybabel extract`` puts them in the
catalogues (``babel.cfg``) and ``tests/portal/test_error_words.py`` fails when a service adds
one that is not listed. A message that carries a value (a limit, a name) has no exact
translation: it falls back to a sentence of its kind, rather than English on a French page.
"""

from __future__ import annotations

from typing import Final

from carnet.errors import CarnetError, Conflict, InvalidInput, LimitExceeded, NotFound, StateRefused
from carnet.web.i18n import DEFAULT_LANGUAGE, translations


def _(message: str) -> str:
    """Mark a message for extraction; translated when shown."""
    return message


# As the services raise them (access, essentials, documents, patients).
SERVICE_MESSAGES: Final = (
    _("Grant access to one professional or one organisation."),
    _("The end date is already past."),
    _("The treating doctor must be a general practitioner or a specialist."),
    _("Emergency access cannot be both opposed and widened."),
    _("A grant to an organisation needs an end date."),
    _("The patient's code is wrong or expired."),
    _("The patient switched care-contact access off."),
    _("A card-based care contact needs a sign-in with the professional card."),
    _("No such dossier or document."),
    _(
        "Reading clinical content needs a strong sign-in "
        "(professional card, or password and one-time code)."
    ),
    _("This professional is blocked from the dossier: lift the block to grant them access."),
    _("A patient cannot represent themself."),
    _("The patient is of age: a parent no longer represents them."),
    _("No insured person has this identifier and birth date."),
    _("You cannot name yourself."),
    _("A representative must be of age."),
    _("This person already acts for you."),
    _("The end date must be in the future."),
    _(
        "A parent or guardian is recorded from the insurer's registry: "
        "the agency ends it, not the portal."
    ),
    _("No such live representation in this dossier."),
    _("Record one blood group at a time."),
    _("A professional recorded the blood group; only a professional can change it."),
    _("Write the fact down."),
    _("Give a telephone number, such as +352 621 123 456."),
    _("No such essential fact in this dossier."),
    _("The title is empty."),
    _("The title is over 300 characters."),
    _("The creation time is in the future."),
    _("The service period ends before it starts."),
    _("A document needs an author: a professional, an organisation or the patient."),
    _("The content is not XML."),
    _("The declared SHA-256 does not match the content."),
    _("The content is not valid JSON."),
    _("A submission needs at least one document."),
    _("The submission's source id is empty."),
    _("Only the patient uploads a patient-authored document."),
    _("A feeding system publishes for its own organisation only."),
    _("A document uploaded by the patient is authored by the patient."),
    _("A professional publishes as the author of the document."),
    _("The author does not work for the publishing organisation."),
    _("No such document in this dossier."),
    _("No such patient."),
    _("No such open care contact in this dossier."),
    _("No such mask in force in this dossier."),
)

# When a message has no translation: a sentence of its kind, most specific first.
_BY_KIND: Final = (
    (InvalidInput, _("This was refused: check what you entered.")),
    (NotFound, _("There is nothing at this address.")),
    (Conflict, _("This clashes with what is already recorded; nothing was changed.")),
    (LimitExceeded, _("This is over the limit Carnet accepts; nothing was changed.")),
    (StateRefused, _("The dossier does not allow this now; nothing was changed.")),
)
_REFUSED: Final = _("This was refused; nothing was changed.")


def said(error: CarnetError, language: str) -> str:
    """``error``'s message in ``language``: translated, else a sentence of its kind.

    Errors of the root classes (``carnet.errors``) are the portal's own, already translated.
    """
    gettext = translations(language).gettext
    translated = gettext(error.message)
    if language == DEFAULT_LANGUAGE or translated != error.message:
        return translated
    if type(error).__module__ == CarnetError.__module__:
        # A root error class is raised by the ways in themselves, already in the visitor's
        # language (``visit.gettext``); the services raise their domain's own classes.
        return error.message
    kind = next((text for cls, text in _BY_KIND if isinstance(error, cls)), _REFUSED)
    return gettext(kind)
