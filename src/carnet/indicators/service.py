"""The agency's indicators: dossiers by state, coverage, documents, consultations, feeds.

Aggregates only: every figure is a ``GROUP BY`` count in the database, never a row of a
patient carried into Python, and no result names a patient. They are for the agency — its
operators and security officers; anyone else is refused with ``AccessDenied`` (recorded, like
every refusal, by the way in). Each reading and each export is itself recorded in the audit
trail, on the reader's own chain.

A day is a UTC day, as in the audit trail's own counts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, func, select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.catalogue import UnknownDocumentType, load_catalogue
from carnet.clock import Clock
from carnet.documents.models import Document, DocumentStatus
from carnet.indicators.errors import InvalidPeriod
from carnet.patients.models import Dossier, DossierState, Patient

AGENCY = (ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER)
# A feeding organisation is active if it published within this window before now.
FEEDING_WINDOW = dt.timedelta(days=30)
DEFAULT_PERIOD_DAYS = 90
# Three years of days is still a readable chart and a cheap query.
MAX_PERIOD_DAYS = 3 * 366


@dataclass(frozen=True)
class Period:
    """Whole UTC days, from ``first_day`` to ``last_day`` included."""

    first_day: dt.date
    last_day: dt.date

    @classmethod
    def between(cls, first_day: dt.date, last_day: dt.date) -> Period:
        """The days from ``first_day`` to ``last_day``; ``InvalidPeriod`` if backwards or long."""
        if last_day < first_day:
            raise InvalidPeriod("The period ends before it starts.", field="from")
        if (last_day - first_day).days + 1 > MAX_PERIOD_DAYS:
            raise InvalidPeriod(
                f"The period is longer than {MAX_PERIOD_DAYS} days: choose a shorter one.",
                field="from",
            )
        return cls(first_day, last_day)

    @classmethod
    def last_days(cls, count: int, *, clock: Clock) -> Period:
        """The ``count`` days up to today (UTC), today included."""
        today = clock.now().astimezone(dt.UTC).date()
        return cls.between(today - dt.timedelta(days=count - 1), today)

    @property
    def since(self) -> dt.datetime:
        """The first instant of the period."""
        return dt.datetime.combine(self.first_day, dt.time(), tzinfo=dt.UTC)

    @property
    def until(self) -> dt.datetime:
        """The first instant after the period."""
        return dt.datetime.combine(self.last_day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    @property
    def days(self) -> list[dt.date]:
        """Every day of the period, in order."""
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + dt.timedelta(days=offset) for offset in range(count)]


@dataclass(frozen=True)
class DossierCounts:
    """How many dossiers are in each state."""

    invited: int
    active: int
    opposed: int
    closed: int

    @property
    def total(self) -> int:
        """Every dossier, whatever its state."""
        return self.invited + self.active + self.opposed + self.closed


@dataclass(frozen=True)
class DocumentTypeCount:
    """The current documents of one catalogue type, and their share of all of them."""

    key: str
    label: str
    count: int
    share: float


@dataclass(frozen=True)
class DailyCount:
    """A count for one UTC day."""

    day: dt.date
    count: int


@dataclass(frozen=True)
class Indicators:
    """The agency's figures for a period, as of ``computed_at``.

    ``dossiers``, ``insured``, ``documents`` and ``documents_by_type`` describe Carnet now;
    ``consultations``, ``new_documents`` and ``emergency_accesses`` the period (every day of
    it, zeros included); ``feeding_organisations`` the ``FEEDING_WINDOW`` before now.
    """

    period: Period
    computed_at: dt.datetime
    dossiers: DossierCounts
    insured: int
    documents: int
    documents_by_type: tuple[DocumentTypeCount, ...]
    consultations: tuple[DailyCount, ...]
    new_documents: tuple[DailyCount, ...]
    feeding_organisations: int
    emergency_accesses: int

    @property
    def coverage(self) -> float:
        """Active dossiers as a fraction of the insured population (0 when nobody is)."""
        return self.dossiers.active / self.insured if self.insured else 0.0

    @property
    def consultations_total(self) -> int:
        """Consultations over the whole period."""
        return sum(day.count for day in self.consultations)

    @property
    def new_documents_total(self) -> int:
        """Documents published over the whole period."""
        return sum(day.count for day in self.new_documents)

    def rows(self) -> list[tuple[str, str, str]]:
        """The indicators in a tidy long format: ``(indicator, key, value)`` rows.

        Keys and values are machine-readable (catalogue keys, ISO dates, plain numbers), so the
        export reads the same whatever the reader's language.
        """
        rows: list[tuple[str, str, str]] = [
            ("period", "from", self.period.first_day.isoformat()),
            ("period", "to", self.period.last_day.isoformat()),
            ("computed_at", "", self.computed_at.isoformat(timespec="seconds")),
        ]
        for state in DossierState:
            rows.append(("dossiers", state.value, str(getattr(self.dossiers, state.name.lower()))))
        rows += [
            ("dossiers", "total", str(self.dossiers.total)),
            ("insured_population", "", str(self.insured)),
            ("coverage", "", f"{self.coverage:.4f}"),
            ("documents", "total", str(self.documents)),
        ]
        rows += [
            ("documents_by_type", kind.key, str(kind.count)) for kind in self.documents_by_type
        ]
        rows += [
            ("documents_by_type_share", kind.key, f"{kind.share:.4f}")
            for kind in self.documents_by_type
        ]
        rows += [
            ("consultations_per_day", d.day.isoformat(), str(d.count)) for d in self.consultations
        ]
        rows += [
            ("new_documents_per_day", d.day.isoformat(), str(d.count)) for d in self.new_documents
        ]
        rows += [
            ("feeding_organisations_30_days", "", str(self.feeding_organisations)),
            ("emergency_accesses", "", str(self.emergency_accesses)),
        ]
        return rows


def read_indicators(
    session: Session, actor: Actor, period: Period, *, clock: Clock, language: str = "en"
) -> Indicators:
    """The indicators for ``period``, document types labelled in ``language``.

    For the agency only (``AccessDenied`` otherwise); the reading is recorded in the audit trail.
    """
    return _recorded(session, actor, period, clock=clock, language=language, exported=False)


def export_indicators(
    session: Session, actor: Actor, period: Period, *, clock: Clock, language: str = "en"
) -> Indicators:
    """The indicators for ``period``, to be written out (``Indicators.rows``).

    For the agency only (``AccessDenied`` otherwise); recorded in the audit trail as an export,
    since the figures then leave Carnet.
    """
    return _recorded(session, actor, period, clock=clock, language=language, exported=True)


def require_agency(actor: Actor, action: AuditAction) -> None:
    """Refuse (``AccessDenied``, carrying its audit record) anyone but the agency's accounts."""
    if actor.kind not in AGENCY:
        raise access_guard.refuse(actor, action, "indicators are for the agency", None)


def _recorded(
    session: Session,
    actor: Actor,
    period: Period,
    *,
    clock: Clock,
    language: str,
    exported: bool,
) -> Indicators:
    # Reading indicators is neither a search nor a read of a dossier: those actions are what
    # ``consultations_per_day`` counts, so using them here would make the figure count itself.
    action = AuditAction.EXPORT if exported else AuditAction.AUDIT_SEARCH
    require_agency(actor, action)
    indicators = _compute(session, period, now=clock.now(), language=language)
    audit_trail.record(
        session,
        agent=actor.agent,
        action=action,
        clock=clock,
        details={
            "indicators": "export" if exported else "read",
            "from": period.first_day.isoformat(),
            "to": period.last_day.isoformat(),
        },
    )
    return indicators


def _compute(
    session: Session, period: Period, *, now: dt.datetime, language: str = "en"
) -> Indicators:
    """The figures themselves, without access check or audit record (``read_indicators``)."""
    by_type = _documents_by_type(session, language)
    return Indicators(
        period=period,
        computed_at=now,
        dossiers=_dossier_counts(session),
        insured=session.scalar(select(func.count()).select_from(Patient)) or 0,
        documents=sum(kind.count for kind in by_type),
        documents_by_type=by_type,
        consultations=_every_day(
            period,
            dict(
                audit_trail.consultations_per_day(session, since=period.since, until=period.until)
            ),
        ),
        new_documents=_every_day(period, _new_documents_per_day(session, period)),
        feeding_organisations=_feeding_organisations(session, now),
        emergency_accesses=audit_trail.emergency_accesses(
            session, since=period.since, until=period.until
        ),
    )


def _dossier_counts(session: Session) -> DossierCounts:
    rows = session.execute(select(Dossier.state, func.count()).group_by(Dossier.state))
    counts: dict[DossierState, int] = dict(rows.all())
    return DossierCounts(
        invited=counts.get(DossierState.INVITED, 0),
        active=counts.get(DossierState.ACTIVE, 0),
        opposed=counts.get(DossierState.OPPOSED, 0),
        closed=counts.get(DossierState.CLOSED, 0),
    )


def _documents_by_type(session: Session, language: str) -> tuple[DocumentTypeCount, ...]:
    """Current documents per catalogue type, most frequent first."""
    catalogue = load_catalogue()
    rows = session.execute(
        select(Document.type_system, Document.type_code, func.count())
        .where(Document.status == DocumentStatus.CURRENT)
        .group_by(Document.type_system, Document.type_code)
    )
    counts: dict[str, tuple[str, int]] = {}
    # One row per type in the catalogue (a few dozen), not per document.
    for system, code, count in rows:
        try:
            known = catalogue.by_code(system, code)
            key, label = known.key, known.labels.in_language(language)
        except UnknownDocumentType:
            key, label = code, code
        previous = counts.get(key, (label, 0))[1]
        counts[key] = (label, previous + count)
    total = sum(count for _, count in counts.values())
    shares = [
        DocumentTypeCount(key=key, label=label, count=count, share=count / total)
        for key, (label, count) in counts.items()
    ]
    return tuple(sorted(shares, key=lambda kind: (-kind.count, kind.label)))


def _new_documents_per_day(session: Session, period: Period) -> dict[dt.date, int]:
    day = _utc_day(session, Document.submitted_at)
    rows = session.execute(
        select(day, func.count())
        .where(Document.submitted_at >= period.since, Document.submitted_at < period.until)
        .group_by(day)
    )
    return {_as_date(value): count for value, count in rows}


def _feeding_organisations(session: Session, now: dt.datetime) -> int:
    """Organisations that published a document (not the patients' own) in the window."""
    return (
        session.scalar(
            select(func.count(func.distinct(Document.author_organisation_id))).where(
                Document.submitted_at >= now - FEEDING_WINDOW,
                Document.author_organisation_id.is_not(None),
                Document.authored_by_patient.is_(False),
            )
        )
        or 0
    )


def _every_day(period: Period, counts: dict[dt.date, int]) -> tuple[DailyCount, ...]:
    # Days without any event are absent from a GROUP BY; a chart needs them as zeros.
    return tuple(DailyCount(day, counts.get(day, 0)) for day in period.days)


def _utc_day(session: Session, column: Any) -> ColumnElement[Any]:
    # PostgreSQL's date() of a timestamptz follows the session's time zone; the day is UTC's.
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))
