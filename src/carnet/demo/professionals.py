"""A demo professional as data, read by the population and the essential data it draws."""

from __future__ import annotations

from dataclasses import dataclass

from carnet.directory.models import Profession


@dataclass(frozen=True)
class ProfessionalSpec:
    """A demo professional; ``organisation`` is an OrganisationSpec code."""

    system: str
    value: str
    family: str
    given: str
    profession: Profession
    specialty: str | None
    organisation: str | None
