"""Scopes in plain words: what an app asks for, as the consent screen and the portal say it.

A person approves access, not strings such as ``patient/*.rs``: each scope Carnet offers
(``carnet.access.scopes.NON_RESOURCE_SCOPES`` and the SMART resource scopes on the resources
Carnet serves) becomes a sentence in their language. Whole sentences are translated, never
pieces glued together, so that French and German read naturally. A scope Carnet does not know
how to say is shown as it is, as a last resort, rather than hidden.
"""

from __future__ import annotations

from collections.abc import Callable

from carnet.access.scopes import InvalidScope, Scope, parse_scope

Gettext = Callable[[str], str]


def N_(message: str) -> str:  # noqa: N802 — gettext's conventional marker, for extraction only
    """Mark ``message`` for translation; it is translated when shown."""
    return message


# What each kind of resource is, for the person: documents, identity, essential data, rules.
_DOCUMENTS = "documents"
_IDENTITY = "identity"
_ESSENTIALS = "essentials"
_RULES = "rules"
_HISTORY = "history"
_EVERYTHING = "everything"
_KIND_OF_RESOURCE = {
    "*": _EVERYTHING,
    "DocumentReference": _DOCUMENTS,
    "List": _DOCUMENTS,
    "Binary": _DOCUMENTS,
    "Bundle": _DOCUMENTS,
    "Patient": _IDENTITY,
    # The essential data (carnet.essentials.service.FHIR_RESOURCE).
    "AllergyIntolerance": _ESSENTIALS,
    "Observation": _ESSENTIALS,
    "MedicationStatement": _ESSENTIALS,
    "Immunization": _ESSENTIALS,
    "RelatedPerson": _ESSENTIALS,
    "Consent": _RULES,
    "AuditEvent": _HISTORY,
}
_READ = {
    _EVERYTHING: N_("Read your whole dossier"),
    _DOCUMENTS: N_("Read your documents"),
    _IDENTITY: N_("Read your identity (name, birth date, identifiers)"),
    _ESSENTIALS: N_("Read your essential data (allergies, blood group…)"),
    _RULES: N_("Read who may access your dossier"),
    _HISTORY: N_("Read your access history"),
}
_WRITE = {
    _EVERYTHING: N_("Add to and change your whole dossier"),
    _DOCUMENTS: N_("Add and change your documents"),
    _IDENTITY: N_("Change your identity details"),
    _ESSENTIALS: N_("Add and change your essential data"),
    _RULES: N_("Change who may access your dossier"),
}
_OTHERS = {
    "openid": N_("Know who you are (openid, fhirUser)"),
    "fhirUser": N_("Know who you are (openid, fhirUser)"),
    "profile": N_("See your name"),
    "offline_access": N_("Stay signed in, even while you do not use it (offline access)"),
    "online_access": N_("Stay signed in while you use it (online access)"),
    "launch": N_("Open with the dossier you are working on"),
    "launch/patient": N_("Work on one dossier: yours, or that of a person you represent"),
}
# How far a resource scope reaches, beyond the person's own dossier.
_REACH = {
    "user": N_("%(access)s, in every dossier you may open"),
    "system": N_("%(access)s, for every patient"),
}


def describe(scope: str, gettext: Gettext) -> list[str]:
    """The sentences saying what ``scope`` allows, in the order asked, each once."""
    said: list[str] = []
    for word in scope.split():
        for sentence in _sentences(word, gettext):
            if sentence not in said:
                said.append(sentence)
    return said


def _sentences(word: str, gettext: Gettext) -> list[str]:
    if word in _OTHERS:
        return [gettext(_OTHERS[word])]
    try:
        scope = parse_scope(word)
    except InvalidScope:
        return [word]
    kind = _KIND_OF_RESOURCE.get(scope.resource)
    if kind is None:
        return [word]
    sentences = []
    if scope.permissions & {"r", "s"}:
        sentences.append(gettext(_READ[kind]))
    if scope.permissions & {"c", "u", "d"}:
        sentences.append(gettext(_WRITE[kind]) if kind in _WRITE else word)
    return [_reach(scope, sentence, gettext) for sentence in sentences]


def _reach(scope: Scope, sentence: str, gettext: Gettext) -> str:
    if scope.context in _REACH and sentence != str(scope):
        return gettext(_REACH[scope.context]) % {"access": sentence}
    return sentence
