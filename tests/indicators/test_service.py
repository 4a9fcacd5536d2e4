"""The agency's indicators: aggregates of real rows, for the agency alone, each reading audited."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.access.errors import AccessDenied
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent
from carnet.catalogue import load_catalogue
from carnet.clock import FrozenClock
from carnet.indicators.errors import InvalidPeriod
from carnet.indicators.service import (
    MAX_PERIOD_DAYS,
    DossierCounts,
    Period,
    export_indicators,
    read_indicators,
)
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore
from factories.actors import (
    operator_actor,
    patient_actor,
    professional_actor,
    security_officer_actor,
    system_actor,
)
from factories.directory import make_organisation, make_professional
from factories.documents import PATIENT_SUMMARY, make_document
from factories.lifecycle import make_invited_patient
from factories.patients import make_patient


def _consult(session: Session, clock: FrozenClock, reader: Actor, patient: Patient) -> None:
    """A consultation as the document services record it: an allowed read of the dossier."""
    audit_trail.record(
        session, agent=reader.agent, action=AuditAction.READ, clock=clock, patient_id=patient.id
    )


class TestFigures:
    def test_dossiers_coverage_documents_and_activity_come_from_the_rows(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        active = [make_patient(session, clock) for _ in range(3)]
        make_invited_patient(session, clock)
        make_invited_patient(session, clock)
        make_patient(session, clock, state=DossierState.OPPOSED)
        make_patient(session, clock, state=DossierState.CLOSED)
        lab = make_organisation(session, clock)
        other_lab = make_organisation(session, clock, name="Laboratoire du Nord")
        make_organisation(session, clock, name="Laboratoire silencieux")  # published nothing
        author = professional_actor(make_professional(session, clock, organisation_id=lab.id))
        other = professional_actor(make_professional(session, clock, organisation_id=other_lab.id))
        start = clock.now()
        # Two days before now: three lab reports and a patient summary, then one more report.
        clock.advance(dt.timedelta(days=-2))
        for patient in active:
            make_document(session, store, clock, actor=author, patient_id=patient.id)
        make_document(
            session,
            store,
            clock,
            actor=other,
            patient_id=active[0].id,
            type_system=PATIENT_SUMMARY[0],
            type_code=PATIENT_SUMMARY[1],
            title="Synthèse",
        )
        _consult(session, clock, author, active[0])
        _consult(session, clock, author, active[1])
        clock.advance(dt.timedelta(days=1))
        make_document(session, store, clock, actor=author, patient_id=active[1].id)
        _consult(session, clock, other, active[0])
        audit_trail.record(
            session,
            agent=other.agent,
            action=AuditAction.BREAK_GLASS,
            clock=clock,
            patient_id=active[2].id,
        )
        # A patient's own upload is a document, but not a feed's.
        make_document(
            session, store, clock, actor=patient_actor(active[2]), patient_id=active[2].id
        )
        clock.advance(dt.timedelta(days=1))
        assert clock.now() == start

        period = Period.last_days(7, clock=clock)
        figures = read_indicators(session, operator_actor(), period, clock=clock, language="fr")

        assert figures.dossiers == DossierCounts(invited=2, active=3, opposed=1, closed=1)
        assert figures.insured == 7
        assert figures.coverage == pytest.approx(3 / 7)
        assert figures.documents == 6
        catalogue = load_catalogue()
        by_key = {kind.key: kind for kind in figures.documents_by_type}
        assert figures.documents_by_type[0].key == "lab-report"  # the most frequent first
        assert by_key["lab-report"].count == 5
        assert by_key["lab-report"].share == pytest.approx(5 / 6)
        assert by_key["lab-report"].label == catalogue.by_key("lab-report").labels.fr
        assert by_key["patient-summary"].count == 1
        days = {entry.day: entry.count for entry in figures.consultations}
        assert len(days) == 7
        assert days[(start - dt.timedelta(days=2)).date()] == 2
        assert days[(start - dt.timedelta(days=1)).date()] == 1
        assert figures.consultations_total == 3
        published = {entry.day: entry.count for entry in figures.new_documents}
        assert published[(start - dt.timedelta(days=2)).date()] == 4
        assert published[(start - dt.timedelta(days=1)).date()] == 2
        assert figures.new_documents_total == 6
        assert figures.feeding_organisations == 2
        assert figures.emergency_accesses == 1

    def test_an_empty_carnet_has_zeros_not_errors(
        self, session: Session, clock: FrozenClock
    ) -> None:
        figures = read_indicators(
            session, operator_actor(), Period.last_days(30, clock=clock), clock=clock
        )
        assert figures.dossiers.total == 0
        assert figures.coverage == 0.0
        assert figures.documents_by_type == ()
        assert [entry.count for entry in figures.consultations] == [0] * 30

    def test_the_period_bounds_the_daily_figures(
        self, session: Session, clock: FrozenClock
    ) -> None:
        reader = professional_actor(make_professional(session, clock))
        patient = make_patient(session, clock)
        clock.advance(dt.timedelta(days=-10))
        _consult(session, clock, reader, patient)
        clock.advance(dt.timedelta(days=10))
        recent = read_indicators(
            session, operator_actor(), Period.last_days(7, clock=clock), clock=clock
        )
        longer = read_indicators(
            session, operator_actor(), Period.last_days(30, clock=clock), clock=clock
        )
        assert recent.consultations_total == 0
        assert longer.consultations_total == 1

    def test_rows_are_a_tidy_long_table_without_any_identity(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock, family="Zylberstein")
        lab = make_organisation(session, clock)
        make_document(
            session,
            store,
            clock,
            actor=system_actor(lab),
            patient_id=patient.id,
        )
        figures = read_indicators(
            session, operator_actor(), Period.last_days(3, clock=clock), clock=clock
        )
        rows = figures.rows()
        assert all(len(row) == 3 for row in rows)
        table = {(indicator, key): value for indicator, key, value in rows}
        assert table[("dossiers", "active")] == "1"
        assert table[("coverage", "")] == "1.0000"
        assert table[("documents_by_type", "lab-report")] == "1"
        assert table[("documents_by_type_share", "lab-report")] == "1.0000"
        assert table[("feeding_organisations_30_days", "")] == "1"
        flat = " ".join(" ".join(row) for row in rows)
        assert "Zylberstein" not in flat
        assert str(patient.id) not in flat


class TestAccess:
    @pytest.mark.parametrize("who", ["operator", "security-officer"])
    def test_the_agency_reads_and_each_reading_is_audited(
        self, session: Session, clock: FrozenClock, who: str
    ) -> None:
        actor = operator_actor() if who == "operator" else security_officer_actor()
        period = Period.last_days(30, clock=clock)
        read_indicators(session, actor, period, clock=clock)
        export_indicators(session, actor, period, clock=clock)
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.agent_subject == actor.subject)
            .order_by(AuditEvent.seq)
        ).all()
        assert [event.action for event in events] == [
            AuditAction.AUDIT_SEARCH,
            AuditAction.EXPORT,
        ]
        assert all(event.patient_id is None for event in events)
        assert '"indicators": "export"' in events[1].details

    def test_reading_indicators_is_not_counted_as_a_consultation(
        self, session: Session, clock: FrozenClock
    ) -> None:
        period = Period.last_days(1, clock=clock)
        read_indicators(session, operator_actor(), period, clock=clock)
        again = read_indicators(session, operator_actor(), period, clock=clock)
        assert again.consultations_total == 0

    @pytest.mark.parametrize("who", ["patient", "professional", "feeding system"])
    def test_anyone_else_is_refused(self, session: Session, clock: FrozenClock, who: str) -> None:
        actors = {
            "patient": lambda: patient_actor(make_patient(session, clock)),
            "professional": lambda: professional_actor(make_professional(session, clock)),
            "feeding system": lambda: system_actor(make_organisation(session, clock)),
        }
        actor = actors[who]()
        period = Period.last_days(30, clock=clock)
        for read in (read_indicators, export_indicators):
            with pytest.raises(AccessDenied) as refused:
                read(session, actor, period, clock=clock)
            assert refused.value.refusal is not None
            assert refused.value.refusal.agent == actor.agent


class TestPeriod:
    def test_last_days_ends_today_in_utc(self, clock: FrozenClock) -> None:
        period = Period.last_days(90, clock=clock)
        assert period.last_day == dt.date(2026, 6, 1)
        assert period.first_day == dt.date(2026, 3, 4)
        assert len(period.days) == 90
        assert period.until - period.since == dt.timedelta(days=90)

    def test_a_backwards_or_endless_period_is_refused(self) -> None:
        with pytest.raises(InvalidPeriod):
            Period.between(dt.date(2026, 6, 2), dt.date(2026, 6, 1))
        with pytest.raises(InvalidPeriod):
            Period.between(
                dt.date(2020, 1, 1), dt.date(2020, 1, 1) + dt.timedelta(days=MAX_PERIOD_DAYS)
            )
