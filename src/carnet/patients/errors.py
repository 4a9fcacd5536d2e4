"""Errors of the patients domain: each carries a message a person can act on."""

from __future__ import annotations

import functools

from carnet.errors import CarnetError, Conflict, InvalidInput, NotFound, StateRefused


class PatientError(CarnetError):
    """Base of the patients domain's errors; carries a message a person can act on."""


class InvalidIdentifier(PatientError, InvalidInput):
    """A national identifier was refused; ``check`` names the rule it broke.

    ``check`` is one of ``"format"``, ``"length"``, ``"birth_date"``, ``"luhn"``,
    ``"verhoeff"``, ``"nir_key"`` or ``"unknown_system"``; ``message`` says the same in
    plain words and is what ``str(exc)`` returns.
    """

    def __init__(self, *, system: str, value: str, check: str, message: str) -> None:
        super().__init__(message, field="identifier")
        self.system = system
        self.value = value
        self.check = check
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[functools.partial[InvalidIdentifier], tuple[()]]:
        # The keyword-only constructor cannot be rebuilt from ``args`` alone, which is
        # what the default pickling does; errors must survive crossing process borders.
        return (
            functools.partial(
                type(self),
                system=self.system,
                value=self.value,
                check=self.check,
                message=self.message,
            ),
            (),
        )


class InvalidDemographics(PatientError, InvalidInput):
    """A name, birth date, language or address breaks a rule; ``field`` names it."""


class DuplicateIdentifier(PatientError, Conflict):
    """The national identifier already belongs to a patient."""

    def __init__(self, *, system: str, value: str) -> None:
        super().__init__(
            f"The identifier {value} already belongs to a patient.", field="identifier"
        )
        self.system = system
        self.value = value

    def __reduce__(self) -> tuple[functools.partial[DuplicateIdentifier], tuple[()]]:
        return (functools.partial(type(self), system=self.system, value=self.value), ())


class PatientNotFound(PatientError, NotFound):
    """No such patient or dossier (or it may not be revealed)."""

    def __init__(self) -> None:
        super().__init__("No such patient.")


class DossierNotActive(PatientError, StateRefused):
    """The dossier does not accept documents in its present state."""

    def __init__(self, state: str) -> None:
        super().__init__(
            f"The dossier is {state}: it accepts documents only when active. Nothing was stored."
        )
        self.state = state
