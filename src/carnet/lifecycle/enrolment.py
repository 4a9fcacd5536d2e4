"""Enrolment from the insurer's registry: a CSV file in, invited dossiers out.

The file is UTF-8 (a byte-order mark is ignored), comma-separated, with a header row naming its
columns in any order:

    national_identifier   required  Luxembourg matricule (13 digits) or French NIR (15 characters)
    identifier_system     optional  lu or fr; by default lu for 13 characters, fr otherwise
    family, given         required
    birth_date            required  YYYY-MM-DD
    sex                   required  female, male, other or unknown (F and M also accepted)
    address_line, postal_code, city, country   optional (country: ISO 3166 code such as LU)
    email                 optional
    language              optional  fr, en, de, lb or pt (default fr)
    insured_since         optional  YYYY-MM-DD
    representative_identifier, representation_kind   optional  the national identifier of a
                          parent or guardian enrolled before (or earlier in the file), and
                          parent or guardian

The optional columns describe what the registry knows; what it does not say is left alone. For
a person already enrolled, a column the file does not have, or an empty cell, keeps the value
stored (a file without e-mail addresses never erases the ones Carnet holds); a cell holding
only ``-`` clears it (not for language, which always has one). For a new person, both mean
none (language: fr).

Each bad row is reported as ``line N: <column>: <reason>`` and the others still load. The file
is read as a stream and written in batches, one transaction each, so memory stays flat and an
interrupted run keeps whole batches: running the same file again creates nothing twice, brings
changed demographics up to date and completes what was missing.
"""

from __future__ import annotations

import csv
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access.actors import Actor, ActorKind
from carnet.access.door import open_dossier
from carnet.access.errors import InvalidAccessRule
from carnet.access.models import RepresentationKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.lifecycle.errors import InvalidRegistryFile
from carnet.lifecycle.service import Invitation, invitation, new_activation_code
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.errors import InvalidIdentifier
from carnet.patients.models import Sex

REQUIRED = ("national_identifier", "family", "given", "birth_date", "sex")
OPTIONAL = (
    "identifier_system",
    "address_line",
    "postal_code",
    "city",
    "country",
    "email",
    "language",
    "insured_since",
    "representative_identifier",
    "representation_kind",
)
_SYSTEMS = {"lu": identifiers.LU_MATRICULE, "fr": identifiers.FR_NIR}
_SEXES = {"f": Sex.FEMALE, "m": Sex.MALE} | {sex.value: sex for sex in Sex}
# The services name fields as the domain does; the report names the file's columns.
_COLUMN_OF = {"identifier": "national_identifier"}
DEFAULT_BATCH = 2000
# The cell that clears an optional value of a known person (an empty one keeps it).
CLEARED = "-"


@dataclass(frozen=True)
class RegistryRow:
    """One well-formed row of the file, ready for the services to validate."""

    line: int
    entry: patients.RegistryEntry
    representative: tuple[str, RepresentationKind] | None = None


@dataclass(frozen=True)
class RowProblem:
    """Why one row (or its representative) was not taken, naming the column at fault."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.reason}"


@dataclass
class EnrolmentReport:
    """What a run did: counts only, so a national file keeps memory flat."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    representations: int = 0
    representations_refused: int = 0

    def add(self, other: EnrolmentReport) -> None:
        """Count ``other`` (one batch) in."""
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        """One line for the operator."""
        line = (
            f"Enrolment: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.rejected} rejected"
        )
        if self.representations or self.representations_refused:
            line += (
                f"; {self.representations} representations recorded, "
                f"{self.representations_refused} refused"
            )
        return line + "."


@dataclass
class BatchResult:
    """One batch's counts, its problems, and the letters of the dossiers it created."""

    report: EnrolmentReport = field(default_factory=EnrolmentReport)
    problems: list[RowProblem] = field(default_factory=list)
    invitations: list[Invitation] = field(default_factory=list)


def read_registry(stream: TextIO) -> Iterator[RegistryRow | RowProblem]:
    """The file's rows, parsed but not yet validated against the national rules.

    Raises ``InvalidRegistryFile`` when the header lacks a required column or names one this
    format does not know (a misspelt column would otherwise be silently ignored).
    """
    reader = csv.DictReader(stream)
    header = reader.fieldnames or []
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise InvalidRegistryFile(
            "The registry file's header "
            + (f"lacks {', '.join(missing)}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"names unknown columns {', '.join(unknown)}" if unknown else "")
            + f" (expected {', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}).",
            field="header",
        )
    for values in reader:
        try:
            yield _parse(reader.line_num, values)
        except _BadValue as bad:
            yield RowProblem(reader.line_num, bad.column, bad.reason)


def enrol_rows(
    session: Session,
    actor: Actor,
    rows: Sequence[RegistryRow],
    *,
    clock: Clock,
    opening_delay: dt.timedelta,
    code_lifetime: dt.timedelta | None = None,
) -> BatchResult:
    """Enrol one batch of rows: invited dossiers for new people, updates for known ones.

    Recorded by the agency (an operator: ``AccessDenied`` otherwise). Every created dossier's
    audit chain starts with its enrolment event, by the operator; every update is an event on
    its dossier. Named representatives are linked through ``access.representation``. With
    ``code_lifetime``, each created dossier gets an activation code, returned in clear in the
    result's invitations only (stored as a hash).
    """
    if actor.kind is not ActorKind.OPERATOR:
        raise access_guard.refuse(actor, AuditAction.LIFECYCLE, "only the agency", None)
    now = clock.now()
    deadline = now + opening_delay
    outcome = patients.enrol_batch(
        session, [row.entry for row in rows], clock=clock, opening_deadline=deadline
    )
    result = BatchResult()
    result.report.created = len(outcome.created)
    result.report.updated = len(outcome.updated)
    result.report.unchanged = len(outcome.unchanged)
    result.report.rejected = len(outcome.rejected)
    for index, error in outcome.rejected:
        column = _COLUMN_OF.get(error.field or "", error.field or "row")
        result.problems.append(RowProblem(rows[index].line, column, error.message))
    audit_trail.start_chains(
        session,
        agent=actor.agent,
        action=AuditAction.LIFECYCLE,
        clock=clock,
        patient_ids=[patient_id for _, patient_id in outcome.created],
        details={"to": "invited", "reason": "enrolled from the registry", "opening": deadline},
    )
    for _, patient_id, changed in outcome.updated:
        audit_trail.record(
            session,
            agent=actor.agent,
            action=AuditAction.LIFECYCLE,
            clock=clock,
            patient_id=patient_id,
            details={"reason": "demographics updated from the registry", "fields": changed},
        )
    accepted = outcome.patient_ids()
    for index, row in enumerate(rows):
        if row.representative is not None and index in accepted:
            _represent(session, actor, row, accepted[index], clock=clock, result=result)
    if code_lifetime is not None:
        for index, patient_id in outcome.created:
            code_row, code = new_activation_code(
                patient_id, issued_by=actor.subject, now=now, lifetime=code_lifetime
            )
            session.add(code_row)
            demographics = rows[index].entry.demographics
            result.invitations.append(
                invitation(patient_id, demographics, code, code_row, deadline)
            )
        session.flush()
    return result


def enrol_registry(
    sessions: sessionmaker[Session],
    stream: TextIO,
    *,
    actor: Actor,
    clock: Clock,
    opening_delay: dt.timedelta,
    code_lifetime: dt.timedelta | None = None,
    batch_size: int = DEFAULT_BATCH,
    on_problem: Callable[[RowProblem], None] = lambda problem: None,
    on_invitations: Callable[[list[Invitation]], None] = lambda letters: None,
) -> EnrolmentReport:
    """Read a registry file and enrol it, one transaction per batch of ``batch_size`` rows.

    A way in of its own, like the demo loader: it owns its transactions, so that a national
    file is written in bounded pieces. Problems are handed to ``on_problem`` as they are found;
    the letters of each batch to ``on_invitations`` once that batch is committed (a letter
    never carries a code that was not stored).
    """
    report = EnrolmentReport()
    analysed_at = 0
    for batch in _batches(read_registry(stream), batch_size, report, on_problem):
        with unit_of_work(sessions) as session:
            result = enrol_rows(
                session,
                actor,
                batch,
                clock=clock,
                opening_delay=opening_delay,
                code_lifetime=code_lifetime,
            )
        report.add(result.report)
        # Each time the tables have doubled: about twenty times for the national registry.
        if report.created > 2 * analysed_at:
            with unit_of_work(sessions) as session:
                patients.refresh_statistics(session)
            analysed_at = report.created
        for problem in result.problems:
            on_problem(problem)
        if result.invitations:
            on_invitations(result.invitations)
    return report


def _batches(
    items: Iterable[RegistryRow | RowProblem],
    size: int,
    report: EnrolmentReport,
    on_problem: Callable[[RowProblem], None],
) -> Iterator[list[RegistryRow]]:
    batch: list[RegistryRow] = []
    for item in items:
        if isinstance(item, RowProblem):
            report.rejected += 1
            on_problem(item)
            continue
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _represent(
    session: Session,
    actor: Actor,
    row: RegistryRow,
    patient_id: uuid.UUID,
    *,
    clock: Clock,
    result: BatchResult,
) -> None:
    """Link the row's representative, unless the same live link already exists."""
    assert row.representative is not None  # checked by the caller
    value, kind = row.representative
    problem = None
    try:
        found = patients.find_patient(session, _system_of(value, None), value)
    except InvalidIdentifier as error:
        found, problem = None, error.message
    if found is None:
        problem = problem or (
            f"nobody with the identifier {value} is enrolled yet: list the representative "
            "first, or run the file again to link them"
        )
    elif not access_guard.represents(session, found.id, patient_id, now=clock.now()):
        try:
            access_representation.record_representation(
                session,
                open_dossier(
                    session, actor, patient_id, purposes.RECORD_REPRESENTATION, clock=clock
                ),
                found.id,
                kind=kind,
            )
        except InvalidAccessRule as error:
            problem = error.message
        else:
            result.report.representations += 1
    if problem is not None:
        result.report.representations_refused += 1
        result.problems.append(RowProblem(row.line, "representative_identifier", problem))


class _BadValue(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


def _parse(line: int, values: dict[str, str | None]) -> RegistryRow:
    def text(name: str) -> str | None:
        value = (values.get(name) or "").strip()
        return value or None

    def required(name: str) -> str:
        value = text(name)
        if value is None:
            raise _BadValue(name, "is empty")
        return value

    kept: set[str] = set()

    def optional(name: str) -> str | None:
        # Absent column or empty cell: the registry says nothing, the stored value stays.
        value = text(name)
        if value is None:
            kept.add(name)
        return None if value == CLEARED else value

    if None in values:
        raise _BadValue("row", "has more values than the header has columns")
    identifier = required("national_identifier")
    sex = _SEXES.get(required("sex").lower())
    if sex is None:
        raise _BadValue("sex", f"{values['sex']!r} is not female, male, other or unknown")
    representative = None
    if (representative_id := text("representative_identifier")) is not None:
        kind = (text("representation_kind") or "").lower()
        if kind not in {member.value for member in RepresentationKind}:
            raise _BadValue("representation_kind", f"{kind!r} is not parent or guardian")
        representative = (representative_id, RepresentationKind(kind))
    if text("language") == CLEARED:
        raise _BadValue("language", "cannot be cleared: give fr, en, de, lb or pt, or nothing")
    demographics = patients.Demographics(
        family=required("family"),
        given=required("given"),
        birth_date=_date("birth_date", required("birth_date")),
        sex=sex,
        language=(optional("language") or "fr").lower(),
        email=optional("email"),
        address_line=optional("address_line"),
        postal_code=optional("postal_code"),
        city=optional("city"),
        country=optional("country"),
        insured_since=_date("insured_since", since)
        if (since := optional("insured_since"))
        else None,
    )
    return RegistryRow(
        line=line,
        entry=patients.RegistryEntry(
            system=_system_of(identifier, text("identifier_system")),
            value=identifier,
            demographics=demographics,
            kept=frozenset(kept),
        ),
        representative=representative,
    )


def _system_of(identifier: str, named: str | None) -> str:
    if named is not None:
        system = _SYSTEMS.get(named.lower())
        if system is None:
            raise _BadValue("identifier_system", f"{named!r} is not lu or fr")
        return system
    digits = "".join(character for character in identifier if character.isalnum())
    return identifiers.LU_MATRICULE if len(digits) == 13 else identifiers.FR_NIR


def _date(column: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _BadValue(column, f"{value!r} is not a date YYYY-MM-DD") from None
