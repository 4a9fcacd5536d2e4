"""The national professional registry: a CSV extract in, the directory brought up to date.

The agency loads an extract of the national registry (RPPS in France, the CNS's codes in
Luxembourg) so that professionals can be invited (``carnet professionals invite``), sign in
through a federated provider, and allow staff (``carnet staff allow``): all of these find them
in the directory. The file is UTF-8 (a byte-order mark is ignored), comma-separated, with a
header row naming its columns in any order:

    identifier_system        required  rpps (French RPPS number, checked with its Luhn key) or
                                       lu (Luxembourg code médecin / code prestataire of the CNS);
                                       the systems' URIs are accepted too
    identifier               required  the professional's number in that system
    family, given            required
    profession               required  one of the directory's professions: general-practitioner,
                                       specialist, dentist, pharmacist, nurse, midwife,
                                       physiotherapist, emergency-physician, biologist, staff
    specialty                optional  required for a specialist, refused for anyone else
    organisation_identifier  optional  where they practise: a FINESS number for rpps rows, a
                                       Luxembourg organisation code for lu rows
    organisation_name        optional  needed when that organisation is not in the directory yet
                                       (it is then registered); renames it otherwise
    organisation_kind        optional  for an organisation registered by the file (default
                                       practice): laboratory, hospital, pharmacy, practice,
                                       home-care, insurer or agency
    active                   optional  true or false (also yes/no, 1/0); default true

The rule is the patients' enrolment's (``lifecycle.enrolment``): for a professional already in
the directory, a column the file does not have, or an empty cell, keeps what is stored; a cell
holding only ``-`` clears it (specialty and organisation only). Running the same file again
changes nothing.

The file is taken whole or not at all: every row is checked first (the national rules, the
specialist's specialty, the organisation it names, an identifier listed twice), and if any is
wrong, :class:`~carnet.directory.errors.InvalidDirectoryFile` lists one ``line N: column:
reason`` per problem and nothing is written. A registry extract is a reference list that other
records point to; half of one would leave the directory neither old nor new.
"""

from __future__ import annotations

import csv
import dataclasses
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, TextIO, TypeVar

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.directory.errors import InvalidDirectoryEntry, InvalidDirectoryFile, RegistryProblem
from carnet.directory.models import Organisation, OrganisationKind, Profession, Professional
from carnet.directory.service import (
    FR_FINESS,
    LU_ORGANISATION,
    LU_PROFESSIONAL,
    check_identifier,
    find_organisation,
    register_organisation,
)
from carnet.patients import identifiers

REQUIRED: Final = ("identifier_system", "identifier", "family", "given", "profession")
OPTIONAL: Final = (
    "specialty",
    "organisation_identifier",
    "organisation_name",
    "organisation_kind",
    "active",
)
SYSTEMS: Final[Mapping[str, str]] = {
    "rpps": identifiers.FR_RPPS,
    identifiers.FR_RPPS: identifiers.FR_RPPS,
    "lu": LU_PROFESSIONAL,
    LU_PROFESSIONAL: LU_PROFESSIONAL,
}
# Where a professional of each system practises: French establishments are numbered by FINESS.
ORGANISATION_SYSTEMS: Final[Mapping[str, str]] = {
    identifiers.FR_RPPS: FR_FINESS,
    LU_PROFESSIONAL: LU_ORGANISATION,
}
# The cell that clears an optional value of a known professional (an empty one keeps it).
CLEARED: Final = "-"
_BOOLEANS: Final[Mapping[str, bool]] = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}
# The columns' widths (directory.models): longer text is refused by line, not by the database.
_WIDTHS: Final[Mapping[str, int]] = {
    "family": 200,
    "given": 200,
    "specialty": 64,
    "organisation_name": 200,
}
_Choice = TypeVar("_Choice", Profession, OrganisationKind)
# Identifiers looked up per query, well under every driver's bound-parameter limit.
_LOOKUP_CHUNK: Final = 500


@dataclass(frozen=True)
class RegistryRow:
    """One row, checked on its own; ``kept`` names the optional columns the file leaves alone."""

    line: int
    system: str
    identifier: str
    family: str
    given: str
    profession: Profession
    specialty: str | None
    organisation_identifier: str | None
    organisation_name: str | None
    organisation_kind: OrganisationKind
    active: bool
    kept: frozenset[str]


@dataclass(frozen=True)
class DirectoryChange:
    """A professional the run created or changed, and which fields (for the audit trail)."""

    professional_id: uuid.UUID
    system: str
    identifier: str
    created: bool
    fields: tuple[str, ...]


@dataclass
class RegistryReport:
    """What a run did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    organisations_created: int = 0
    changes: list[DirectoryChange] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        return (
            f"Directory: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged; {self.organisations_created} organisations registered."
        )


def load_registry(session: Session, stream: TextIO, *, clock: Clock) -> RegistryReport:
    """Check the whole file, then bring the directory up to date with it.

    Raises ``InvalidDirectoryFile`` (its ``problems`` one per line and column) before writing
    anything if the header or any row is wrong. Flushes, never commits: the caller's transaction
    holds the whole file. Auditing the changes is the caller's (the directory sits below the
    audit trail): ``RegistryReport.changes`` lists them.
    """
    rows, problems = _read(stream)
    known = _known_professionals(session, rows)
    organisations: dict[str, Organisation | None] = {}
    for row in rows:
        problems.extend(_check_against_directory(session, row, known, organisations))
    if problems:
        raise InvalidDirectoryFile(problems)
    report = RegistryReport()
    for row in rows:
        organisation_id = _organisation_for(session, row, organisations, report, clock=clock)
        professional = known.get((row.system, row.identifier))
        if professional is None:
            professional = Professional(
                id=uuid.uuid4(),
                identifier_system=row.system,
                identifier_value=row.identifier,
                family=row.family,
                given=row.given,
                profession=row.profession,
                specialty=row.specialty,
                organisation_id=organisation_id,
                active=row.active,
                created_at=clock.now(),
            )
            session.add(professional)
            report.created += 1
            report.changes.append(
                DirectoryChange(professional.id, row.system, row.identifier, True, ())
            )
            continue
        changed = _update(professional, row, organisation_id)
        if changed:
            report.updated += 1
            report.changes.append(
                DirectoryChange(professional.id, row.system, row.identifier, False, changed)
            )
        else:
            report.unchanged += 1
    session.flush()
    return report


def _read(stream: TextIO) -> tuple[list[RegistryRow], list[RegistryProblem]]:
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if missing or unknown:
        reasons = ([f"lacks {', '.join(missing)}"] if missing else []) + (
            [f"names unknown columns {', '.join(unknown)}"] if unknown else []
        )
        raise InvalidDirectoryFile(
            [
                RegistryProblem(
                    1,
                    "header",
                    "; ".join(reasons)
                    + f" (expected {', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)})",
                )
            ]
        )
    rows: list[RegistryRow] = []
    problems: list[RegistryProblem] = []
    seen: dict[tuple[str, str], int] = {}
    for values in reader:
        line = reader.line_num
        row, row_problems = _parse(line, values)
        problems.extend(row_problems)
        if row is None:
            continue
        key = (row.system, row.identifier)
        if key in seen:
            problems.append(
                RegistryProblem(line, "identifier", f"{row.identifier} is also on line {seen[key]}")
            )
            continue
        seen[key] = line
        rows.append(row)
    return rows, problems


class _Cells:
    """One row's cells as text, collecting every problem found (not just the first)."""

    def __init__(self, line: int, values: Mapping[str | None, str | list[str] | None]) -> None:
        self.line, self.values = line, values
        self.problems: list[RegistryProblem] = []
        self.kept: set[str] = set()

    def problem(self, column: str, reason: str) -> None:
        self.problems.append(RegistryProblem(self.line, column, reason))

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        cell = value.strip() if isinstance(value, str) else ""
        if name in _WIDTHS and len(cell) > _WIDTHS[name]:
            self.problem(name, f"is longer than {_WIDTHS[name]} characters")
        return cell or None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            self.problem(name, "is empty")
        return value or ""

    def optional(self, name: str) -> str | None:
        """None for an empty cell (the stored value is kept) or ``-`` (it is cleared)."""
        value = self.text(name)
        if value is None:
            self.kept.add(name)
        return None if value == CLEARED else value

    def identifier(self) -> tuple[str | None, str]:
        named = self.required("identifier_system")
        system = SYSTEMS.get(named.lower(), SYSTEMS.get(named))
        if named and system is None:
            self.problem("identifier_system", f"{named!r} is not rpps or lu")
        identifier = self.required("identifier")
        if system is not None and identifier:
            try:
                identifier = check_identifier(system, identifier)
            except InvalidDirectoryEntry as error:
                self.problem("identifier", error.message)
        return system, identifier

    def choice(self, name: str, kind: type[_Choice], default: str | None = None) -> _Choice | None:
        named = self.required(name) if default is None else (self.text(name) or default)
        member = _member(kind, named.lower())
        if named and member is None:
            self.problem(name, f"{named!r} is not one of {_choices(kind)}")
        return member

    def active(self) -> bool:
        named = self.text("active")
        if named is None:
            self.kept.add("active")
            return True
        flag = _BOOLEANS.get(named.lower())
        if flag is None:
            self.problem("active", f"{named!r} is not true or false")
        return flag is not False


def _parse(
    line: int, values: Mapping[str | None, str | list[str] | None]
) -> tuple[RegistryRow | None, list[RegistryProblem]]:
    """The row, or None and every problem found in it."""
    cells = _Cells(line, values)
    if None in values:
        cells.problem("row", "has more values than the header has columns")
        return None, cells.problems
    system, identifier = cells.identifier()
    family, given = cells.required("family"), cells.required("given")
    profession = cells.choice("profession", Profession)
    specialty = cells.optional("specialty")
    organisation_identifier = cells.optional("organisation_identifier")
    organisation_name = cells.optional("organisation_name")
    kind = cells.choice("organisation_kind", OrganisationKind, OrganisationKind.PRACTICE.value)
    active = cells.active()
    if organisation_identifier is not None and system is not None:
        try:
            organisation_identifier = check_identifier(
                ORGANISATION_SYSTEMS[system], organisation_identifier
            )
        except InvalidDirectoryEntry as error:
            cells.problem("organisation_identifier", error.message)
    if cells.problems or system is None or profession is None or kind is None:
        return None, cells.problems
    row = RegistryRow(
        line=line,
        system=system,
        identifier=identifier,
        family=family,
        given=given,
        profession=profession,
        specialty=specialty,
        organisation_identifier=organisation_identifier,
        organisation_name=organisation_name,
        organisation_kind=kind,
        active=active,
        kept=frozenset(cells.kept),
    )
    return row, []


def _check_against_directory(
    session: Session,
    row: RegistryRow,
    known: Mapping[tuple[str, str], Professional],
    organisations: dict[str, Organisation | None],
) -> Iterator[RegistryProblem]:
    """What the row would break once merged with what the directory holds."""
    stored = known.get((row.system, row.identifier))
    keeps_specialty = stored is not None and "specialty" in row.kept
    specialty = stored.specialty if stored is not None and keeps_specialty else row.specialty
    if row.profession is Profession.SPECIALIST and not specialty:
        yield RegistryProblem(row.line, "specialty", "a specialist needs a specialty")
    if row.profession is not Profession.SPECIALIST and specialty:
        yield RegistryProblem(
            row.line,
            "specialty",
            f"only specialists have a specialty, not a {row.profession.value}",
        )
    if row.organisation_identifier is None:
        return
    if row.organisation_identifier not in organisations:
        organisations[row.organisation_identifier] = find_organisation(
            session, ORGANISATION_SYSTEMS[row.system], row.organisation_identifier
        )
    if organisations[row.organisation_identifier] is None and row.organisation_name is None:
        yield RegistryProblem(
            row.line,
            "organisation_identifier",
            f"{row.organisation_identifier} is not in the directory: give its "
            "organisation_name to register it",
        )


def _organisation_for(
    session: Session,
    row: RegistryRow,
    organisations: dict[str, Organisation | None],
    report: RegistryReport,
    *,
    clock: Clock,
) -> uuid.UUID | None:
    """The row's organisation, registered or renamed as the file says; None if it names none."""
    if row.organisation_identifier is None:
        return None
    organisation = organisations[row.organisation_identifier]
    if organisation is None:
        assert row.organisation_name is not None  # checked before anything was written
        organisation = register_organisation(
            session,
            identifier_system=ORGANISATION_SYSTEMS[row.system],
            identifier_value=row.organisation_identifier,
            name=row.organisation_name,
            kind=row.organisation_kind,
            clock=clock,
        )
        organisations[row.organisation_identifier] = organisation
        report.organisations_created += 1
    elif row.organisation_name is not None and organisation.name != row.organisation_name:
        organisation.name = row.organisation_name
    return organisation.id


def _update(
    professional: Professional, row: RegistryRow, organisation_id: uuid.UUID | None
) -> tuple[str, ...]:
    """Write the row's values over the stored ones (kept columns aside); the fields changed."""
    wanted: dict[str, object] = {
        "family": row.family,
        "given": row.given,
        "profession": row.profession,
    }
    if "specialty" not in row.kept:
        wanted["specialty"] = row.specialty
    if "organisation_identifier" not in row.kept:
        wanted["organisation_id"] = organisation_id
    if "active" not in row.kept:
        wanted["active"] = row.active
    changed = tuple(name for name, value in wanted.items() if getattr(professional, name) != value)
    for name in changed:
        setattr(professional, name, wanted[name])
    return changed


def _known_professionals(
    session: Session, rows: Iterable[RegistryRow]
) -> dict[tuple[str, str], Professional]:
    """The professionals the file names who are already in the directory."""
    keys = [(row.system, row.identifier) for row in rows]
    known: dict[tuple[str, str], Professional] = {}
    for start in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[start : start + _LOOKUP_CHUNK]
        query = select(Professional).where(
            tuple_(Professional.identifier_system, Professional.identifier_value).in_(chunk)
        )
        for professional in session.scalars(query):
            known[(professional.identifier_system, professional.identifier_value)] = professional
    return known


def _member(kind: type[_Choice], value: str) -> _Choice | None:
    try:
        return kind(value)
    except ValueError:
        return None


def _choices(kind: type[Profession] | type[OrganisationKind]) -> str:
    return ", ".join(member.value for member in kind)
