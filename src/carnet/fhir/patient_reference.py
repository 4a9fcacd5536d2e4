"""Which dossier a FHIR request names: one reading of patient references for every interaction.

A patient is named by a reference — ``Patient/<id>``, Carnet's own absolute
``<base>/Patient/<id>``, or the bare id (a read's path) — or by a national identifier:
``patient.identifier=[system|]value`` in a search, ``Patient?identifier=…`` as ITI-65's
conditional subject, ``identifier=`` in PDQm. An identifier without a system is a token
without one (http://hl7.org/fhir/R4/search.html#token): it is read in each patient identifier
system Carnet knows, and is the patient's if exactly one system takes it.

A reference to another server's Patient is not a Carnet dossier, whatever its id. Malformed
references and identifiers are refused naming the field; an identifier nobody holds resolves to
nobody, which the callers answer as they answer a dossier the policy refuses.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from carnet.errors import InvalidInput
from carnet.fhir.ids import parse_reference
from carnet.fhir.search import Token
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.errors import InvalidIdentifier

_CONDITIONAL = "Patient?identifier="


class InvalidPatientReference(InvalidInput):
    """A patient reference or identifier Carnet cannot read; ``field`` names where it was."""


def patient_id(reference: str, *, base: str | None = None, field: str) -> uuid.UUID:
    """The id in ``Patient/<id>``, ``<base>/Patient/<id>`` or a bare ``<id>``.

    Raises ``InvalidPatientReference`` for anything else, another server's Patient included.
    """
    text = reference.strip()
    if text.startswith(("http://", "https://")):
        # An absolute URL names a Patient of whichever server it points at: only Carnet's own
        # is one of its dossiers (another server's Patient/x is not Carnet's Patient/x).
        own = f"{base}/Patient/" if base else None
        if own is None or not text.startswith(own):
            raise InvalidPatientReference(
                "The patient is a Patient of another server: reference a dossier of Carnet "
                "(Patient/<id> or Patient?identifier=system|value).",
                field=field,
            )
        text = text.removeprefix(f"{base}/")
    found = parse_reference(text, "Patient")
    if found is None:
        raise InvalidPatientReference(f"{field} must be Patient/<id>.", field=field)
    return found


def national_identifier(token: Token, *, field: str) -> identifiers.NationalIdentifier:
    """The patient identifier ``token`` names: its system's, or the one system taking it.

    Raises ``InvalidPatientReference`` (naming ``field``, saying why) when the value is no valid
    identifier of the system given, or of any patient system when none is given.
    """
    if token.system:
        return _validated(token.system, token.code, field)
    taken: list[identifiers.NationalIdentifier] = []
    refusals: list[str] = []
    for system in patients.PATIENT_SYSTEMS:
        try:
            taken.append(identifiers.validate(system, token.code))
        except InvalidIdentifier as refused:
            refusals.append(refused.message)
    if len(taken) == 1:
        return taken[0]
    if taken:
        raise InvalidPatientReference(
            f"{token.code} is an identifier in several systems: give {field} as system|value.",
            field=field,
        )
    raise InvalidPatientReference(" ".join(refusals), field=field)


def identified_patient(session: Session, token: Token, *, field: str) -> uuid.UUID | None:
    """The id of the patient holding the identifier ``token`` names, or None if nobody does."""
    identifier = national_identifier(token, field=field)
    return patients.find_patient_id(session, identifier.system, identifier.value)


def subject_patient(session: Session, reference: str, *, base: str, field: str) -> uuid.UUID | None:
    """The patient a resource's subject names: a reference, or ``Patient?identifier=…``.

    None when the identifier is nobody's.
    """
    if reference.startswith(_CONDITIONAL):
        token = _token(reference.removeprefix(_CONDITIONAL), field)
        return identified_patient(session, token, field=field)
    return patient_id(reference, base=base, field=field)


def _token(text: str, field: str) -> Token:
    system, bar, value = text.partition("|")
    if bar and not value.strip():
        raise InvalidPatientReference("The patient identifier must be [system|]value.", field=field)
    return Token(system.strip(), value.strip()) if bar else Token(None, text.strip())


def _validated(system: str, value: str, field: str) -> identifiers.NationalIdentifier:
    try:
        return identifiers.validate(system, value)
    except InvalidIdentifier as refused:
        raise InvalidPatientReference(refused.message, field=field) from refused
