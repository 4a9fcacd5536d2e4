"""Directory services: register and find professionals and organisations.

The directory is public to authenticated users (it holds no patient data), but it is still
written only through these functions so that identifiers are validated once.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.directory.errors import (
    DuplicateDirectoryEntry,
    InvalidDirectoryEntry,
    OrganisationNotFound,
    ProfessionalNotFound,
)
from carnet.directory.models import (
    Organisation,
    OrganisationKind,
    Profession,
    Professional,
    folded,
)
from carnet.patients import identifiers
from carnet.patients.errors import InvalidIdentifier

# Luxembourg's code prestataire (CNS) has no public check digit; its shape is all we can check.
LU_PROFESSIONAL = "http://carnet.health/fhir/sid/lu-code-prestataire"
LU_ORGANISATION = "http://carnet.health/fhir/sid/lu-organisation"
FR_FINESS = "urn:oid:1.2.250.1.71.4.2.2"
_LOCAL_CODE = re.compile(r"^[0-9A-Z][0-9A-Z-]{3,31}$")


def register_organisation(
    session: Session,
    *,
    identifier_system: str,
    identifier_value: str,
    name: str,
    kind: OrganisationKind,
    clock: Clock,
    city: str | None = None,
) -> Organisation:
    """Record an organisation; ``DuplicateDirectoryEntry`` if its identifier is taken."""
    value = check_identifier(identifier_system, identifier_value)
    if not name.strip():
        raise InvalidDirectoryEntry("The organisation's name is empty.", field="name")
    if find_organisation(session, identifier_system, value) is not None:
        raise DuplicateDirectoryEntry(kind="organisation", system=identifier_system, value=value)
    organisation = Organisation(
        id=uuid.uuid4(),
        identifier_system=identifier_system,
        identifier_value=value,
        name=name.strip(),
        kind=kind,
        city=city,
        active=True,
        created_at=clock.now(),
    )
    session.add(organisation)
    session.flush()
    return organisation


def register_professional(
    session: Session,
    *,
    identifier_system: str,
    identifier_value: str,
    family: str,
    given: str,
    profession: Profession,
    clock: Clock,
    specialty: str | None = None,
    organisation_id: uuid.UUID | None = None,
) -> Professional:
    """Record a professional acting for ``organisation_id``.

    A specialist must have a specialty (and only a specialist has one). RPPS numbers are checked
    with their Luhn key. Raises ``InvalidDirectoryEntry``, ``DuplicateDirectoryEntry`` or
    ``OrganisationNotFound``.
    """
    value = check_identifier(identifier_system, identifier_value)
    for field, text in (("family", family), ("given", given)):
        if not text.strip():
            raise InvalidDirectoryEntry(f"The professional's {field} name is empty.", field=field)
    if profession is Profession.SPECIALIST and not specialty:
        raise InvalidDirectoryEntry("A specialist needs a specialty.", field="specialty")
    if profession is not Profession.SPECIALIST and specialty:
        raise InvalidDirectoryEntry(
            f"Only specialists have a specialty, not a {profession.value}.", field="specialty"
        )
    if organisation_id is not None:
        get_organisation(session, organisation_id)
    if find_professional(session, identifier_system, value) is not None:
        raise DuplicateDirectoryEntry(kind="professional", system=identifier_system, value=value)
    professional = Professional(
        id=uuid.uuid4(),
        identifier_system=identifier_system,
        identifier_value=value,
        family=family.strip(),
        given=given.strip(),
        profession=profession,
        specialty=specialty,
        organisation_id=organisation_id,
        active=True,
        created_at=clock.now(),
    )
    session.add(professional)
    session.flush()
    return professional


def get_professional(session: Session, professional_id: uuid.UUID) -> Professional:
    """The professional with this id; ``ProfessionalNotFound`` otherwise."""
    professional = session.get(Professional, professional_id)
    if professional is None:
        raise ProfessionalNotFound()
    return professional


def get_organisation(session: Session, organisation_id: uuid.UUID) -> Organisation:
    """The organisation with this id; ``OrganisationNotFound`` otherwise."""
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise OrganisationNotFound()
    return organisation


def author_name(
    session: Session,
    *,
    professional_id: uuid.UUID | None,
    organisation_id: uuid.UUID | None,
) -> str | None:
    """How a document's author is named to the patient: the professional, else the organisation.

    One indexed lookup of the name alone (it runs for every document published); None when
    neither is given or found.
    """
    if professional_id is not None:
        row = session.execute(
            select(Professional.given, Professional.family).where(
                Professional.id == professional_id
            )
        ).one_or_none()
        if row is not None:
            return f"{row.given} {row.family}"
    if organisation_id is not None:
        name: str | None = session.scalar(
            select(Organisation.name).where(Organisation.id == organisation_id)
        )
        return name
    return None


def find_professional(session: Session, system: str, value: str) -> Professional | None:
    """The professional holding this identifier, or None."""
    return session.scalar(
        select(Professional).where(
            Professional.identifier_system == system,
            Professional.identifier_value == value.strip().upper(),
        )
    )


def find_organisation(session: Session, system: str, value: str) -> Organisation | None:
    """The organisation holding this identifier, or None."""
    return session.scalar(
        select(Organisation).where(
            Organisation.identifier_system == system,
            Organisation.identifier_value == value.strip().upper(),
        )
    )


def search_professionals(
    session: Session,
    *,
    name: str | None = None,
    profession: Profession | None = None,
    limit: int = 50,
) -> list[Professional]:
    """Active professionals, by family name, whose names hold every word of ``name`` at a word's
    start, in any order and without regard to accents or case ("ben meyer" finds Benoît Meyer,
    "goncalves" finds Gonçalves), or whose identifier is ``name``.
    """
    query = select(Professional).where(Professional.active.is_(True))
    words = folded(name or "").split()
    if words:
        by_name = and_(
            *(Professional.search_name.like(f"% {_escaped(word)}%", escape="\\") for word in words)
        )
        query = query.where(by_name | (Professional.identifier_value == (name or "").strip()))
    if profession is not None:
        query = query.where(Professional.profession == profession)
    order = (Professional.family, Professional.given, Professional.id)
    return list(session.scalars(query.order_by(*order).limit(limit)))


def check_identifier(system: str, value: str) -> str:
    """The identifier's canonical form (RPPS checked with its Luhn key, other codes by shape).

    Raises ``InvalidDirectoryEntry`` naming the field ``identifier``.
    """
    if not system.strip():
        raise InvalidDirectoryEntry("The identifier system is empty.", field="identifier")
    if system == identifiers.FR_RPPS:
        try:
            return identifiers.validate_fr_rpps(value)
        except InvalidIdentifier as error:
            raise InvalidDirectoryEntry(error.message, field="identifier") from error
    compact = value.strip().upper()
    if not _LOCAL_CODE.match(compact):
        raise InvalidDirectoryEntry(
            f"The identifier {value!r} must be 4 to 32 letters, digits or dashes.",
            field="identifier",
        )
    return compact


def find_professionals(
    session: Session,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    identifier: tuple[str | None, str] | None = None,
    family: str | None = None,
    given: str | None = None,
    name: str | None = None,
    profession: Profession | None = None,
    specialty: str | None = None,
    organisation_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Professional]:
    """Professionals matching every criterion given, active or not, by family name.

    Names match from their start, case-insensitively; ``name`` matches the family or the given
    name; ``identifier`` is (system or None for any system, value), matched exactly.
    """
    query = select(Professional)
    if ids is not None:
        query = query.where(Professional.id.in_(ids))
    if identifier is not None:
        query = query.where(*_identifier_matches(Professional, identifier))
    for column, text in ((Professional.family, family), (Professional.given, given)):
        if text is not None:
            query = query.where(column.ilike(_starts_with(text), escape="\\"))
    if name is not None:
        pattern = _starts_with(name)
        query = query.where(
            Professional.family.ilike(pattern, escape="\\")
            | Professional.given.ilike(pattern, escape="\\")
        )
    if profession is not None:
        query = query.where(Professional.profession == profession)
    if specialty is not None:
        query = query.where(Professional.specialty == specialty)
    if organisation_id is not None:
        query = query.where(Professional.organisation_id == organisation_id)
    query = query.order_by(Professional.family, Professional.given, Professional.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def _escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_organisations(
    session: Session,
    *,
    identifier: tuple[str | None, str] | None = None,
    name: str | None = None,
    kind: OrganisationKind | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Organisation]:
    """Organisations matching every criterion given, active or not, by name.

    ``name`` matches from the start of the name, case-insensitively; ``identifier`` is (system
    or None for any system, value), matched exactly.
    """
    query = select(Organisation)
    if identifier is not None:
        query = query.where(*_identifier_matches(Organisation, identifier))
    if name is not None:
        query = query.where(Organisation.name.ilike(_starts_with(name), escape="\\"))
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    query = query.order_by(Organisation.name, Organisation.id)
    return list(session.scalars(query.limit(limit).offset(offset)))


def _identifier_matches(
    entry: type[Professional] | type[Organisation], identifier: tuple[str | None, str]
) -> list[ColumnElement[bool]]:
    system, value = identifier
    conditions = [entry.identifier_value == value.strip().upper()]
    if system is not None:
        conditions.append(entry.identifier_system == system)
    return conditions


def _starts_with(text: str) -> str:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
