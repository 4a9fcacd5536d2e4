"""Errors of the access domain.

A refusal by the policy is ``AccessDenied``, which is a ``NotFound``: to the client a denied
request and a missing dossier or document look the same (the reason goes to the audit trail).
"""

from __future__ import annotations

import uuid
from typing import Self

from carnet.access.actors import Assurance
from carnet.audit.service import Refusal
from carnet.errors import CarnetError, InvalidInput, NotFound


class AccessError(CarnetError):
    """Base of the access domain's errors.

    ``refusal`` describes the refused request for the audit trail; the way in records it in a
    transaction of its own, since the request's own transaction is rolled back.
    """

    refusal: Refusal | None = None

    def for_audit(self, refusal: Refusal) -> Self:
        """Attach what the audit trail must record of this refusal; returns the error."""
        self.refusal = refusal
        return self


class AccessDenied(AccessError, NotFound):
    """The policy refused; says no more than "not found"."""

    def __init__(self, reason: str) -> None:
        super().__init__("No such dossier or document.")
        # For the audit trail and logs only; never shown to the client.
        self.reason = reason


class StrongerAuthenticationRequired(AccessError):
    """Clinical content needs a stronger sign-in (RFC 9470 step-up)."""

    def __init__(self, required: Assurance) -> None:
        super().__init__(
            "Reading clinical content needs a strong sign-in "
            "(professional card, or password and one-time code)."
        )
        self.required = required


class InvalidAccessRule(AccessError, InvalidInput):
    """A grant, block, designation or preference breaks a rule; ``field`` names it."""


class ProfessionalBlocked(InvalidAccessRule):
    """The professional to grant is blocked by the patient: the block must be lifted first."""

    def __init__(self, professional_id: uuid.UUID) -> None:
        super().__init__(
            "This professional is blocked from the dossier: lift the block to grant them access.",
            field="professional",
        )
        self.professional_id = professional_id


class AccessRuleNotFound(AccessError, NotFound):
    """No such grant, block or designation in this dossier."""

    def __init__(self, what: str) -> None:
        super().__init__(f"No such {what} in this dossier.")


class InsufficientScope(AccessError):
    """The token's scopes do not cover this interaction (the policy was not even asked)."""

    def __init__(self, needed: str) -> None:
        super().__init__(f"The access token's scopes do not allow {needed}.")
        self.needed = needed
