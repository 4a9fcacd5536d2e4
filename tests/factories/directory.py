"""Professionals and organisations built through the directory service."""

from __future__ import annotations

import itertools
import uuid

from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.directory import service
from carnet.directory.models import Organisation, OrganisationKind, Profession, Professional
from carnet.patients import identifiers

_serials = itertools.count(1000)


def make_organisation(
    session: Session,
    clock: Clock,
    *,
    kind: OrganisationKind = OrganisationKind.LABORATORY,
    name: str = "Laboratoire Central Alzette",
) -> Organisation:
    """An organisation with a fresh Luxembourg identifier."""
    return service.register_organisation(
        session,
        identifier_system=service.LU_ORGANISATION,
        identifier_value=f"ORG-{next(_serials)}",
        name=name,
        kind=kind,
        clock=clock,
    )


def make_professional(
    session: Session,
    clock: Clock,
    *,
    profession: Profession = Profession.GENERAL_PRACTITIONER,
    specialty: str | None = None,
    organisation_id: uuid.UUID | None = None,
    family: str = "Schmit",
) -> Professional:
    """A professional with a fresh, valid RPPS number."""
    return service.register_professional(
        session,
        identifier_system=identifiers.FR_RPPS,
        identifier_value=identifiers.fr_rpps(next(_serials)),
        family=family,
        given="Marc",
        profession=profession,
        specialty=specialty,
        organisation_id=organisation_id,
        clock=clock,
    )
