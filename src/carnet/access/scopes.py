"""SMART App Launch scopes (v2, with v1 compatibility): what a token may do, at most.

``patient/DocumentReference.rs`` — read and search DocumentReference in the launch patient's
record; ``user/*.cruds`` — everything the signed-in user may do; ``system/DocumentReference.c`` —
a backend service may create. Scopes only narrow: the policy still decides what the actor may do.
See https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

_SCOPE = re.compile(
    r"^(?P<context>patient|user|system)/(?P<resource>\*|[A-Z][A-Za-z]+)"
    r"\.(?P<permissions>[cruds]+|read|write|\*)(?:\?(?P<query>.+))?$"
)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
# Scopes that carry no resource permission but are legitimate in a request.
NON_RESOURCE_SCOPES = frozenset(
    {"openid", "fhirUser", "profile", "offline_access", "online_access", "launch", "launch/patient"}
)


class Interaction(enum.StrEnum):
    """SMART v2 permission letters."""

    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


class InvalidScope(ValueError):
    """A scope string that is neither a SMART resource scope nor a known non-resource scope."""


@dataclass(frozen=True, order=True)
class Scope:
    """One SMART resource scope."""

    context: str
    resource: str
    permissions: frozenset[str]

    def allows(self, resource: str, interaction: Interaction) -> bool:
        """Whether this scope permits ``interaction`` on ``resource``."""
        return (self.resource in ("*", resource)) and interaction.value in self.permissions

    def __str__(self) -> str:
        letters = "".join(letter for letter in "cruds" if letter in self.permissions)
        return f"{self.context}/{self.resource}.{letters}"


def parse_scope(text: str) -> Scope:
    """Parse one resource scope; ``InvalidScope`` if malformed."""
    match = _SCOPE.match(text)
    if match is None:
        raise InvalidScope(f"{text!r} is not a SMART resource scope such as patient/Patient.rs")
    permissions = match["permissions"]
    letters = _V1.get(permissions, permissions)
    if len(set(letters)) != len(letters) or "".join(sorted(letters, key="cruds".index)) != letters:
        raise InvalidScope(f"{text!r}: permissions must be a subset of c, r, u, d, s in that order")
    return Scope(match["context"], match["resource"], frozenset(letters))


def parse_scopes(text: str | Iterable[str]) -> tuple[frozenset[Scope], frozenset[str]]:
    """Split a scope string into resource scopes and the other (non-resource) scopes.

    Unknown non-resource scopes raise ``InvalidScope``: a client that asks for something Carnet
    does not offer should hear so, not be silently ignored.
    """
    words = text.split() if isinstance(text, str) else list(text)
    resources: set[Scope] = set()
    others: set[str] = set()
    for word in words:
        if word in NON_RESOURCE_SCOPES:
            others.add(word)
        else:
            resources.add(parse_scope(word))
    return frozenset(resources), frozenset(others)


def allows(
    scopes: Iterable[Scope], resource: str, interaction: Interaction, *, context: str | None = None
) -> bool:
    """Whether any scope (of ``context``, if given) permits ``interaction`` on ``resource``."""
    return any(
        scope.allows(resource, interaction) and (context is None or scope.context == context)
        for scope in scopes
    )
