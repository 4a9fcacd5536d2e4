"""Enrolment runs from the portal: the registry enrolled, problems by line, the run recorded."""

from __future__ import annotations

import io

import pytest
from sqlalchemy.orm import Session, sessionmaker

from carnet.access.errors import AccessDenied
from carnet.clock import FrozenClock
from carnet.indicators.enrolments import past_runs, run_enrolment
from carnet.lifecycle.errors import InvalidRegistryFile
from carnet.patients.identifiers import LU_MATRICULE
from carnet.patients.models import DossierState
from carnet.patients.service import find_patient
from factories.actors import operator_actor, professional_actor, security_officer_actor
from factories.directory import make_professional
from factories.lifecycle import OPENING_DELAY, registry_csv, registry_row


def _sessions(session: Session) -> sessionmaker[Session]:
    """Sessions joining the test's transaction, as the served app's do."""
    return sessionmaker(
        bind=session.connection(), join_transaction_mode="create_savepoint", expire_on_commit=False
    )


def _file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


class TestRunEnrolment:
    def test_good_rows_become_invited_dossiers_and_bad_ones_are_listed_by_line(
        self, session: Session, clock: FrozenClock
    ) -> None:
        good, other = registry_row(), registry_row(given="Paul", sex="male")
        text = registry_csv([good, registry_row(birth_date="1980-13-45"), other])
        run = run_enrolment(
            _sessions(session),
            _file(text),
            actor=operator_actor(),
            file_name="registre.csv",
            clock=clock,
            opening_delay=OPENING_DELAY,
        )
        assert (run.report.created, run.report.rejected) == (2, 1)
        assert [(problem.line, problem.column) for problem in run.problems] == [(3, "birth_date")]
        assert run.problems_total == 1
        for row in (good, other):
            patient = find_patient(session, LU_MATRICULE, row["national_identifier"])
            assert patient is not None
            assert patient.dossier.state is DossierState.INVITED

    def test_the_run_is_recorded_and_listed_for_the_agency(
        self, session: Session, clock: FrozenClock
    ) -> None:
        operator = operator_actor("enrolment-desk")
        run_enrolment(
            _sessions(session),
            _file(registry_csv([registry_row(), registry_row(sex="x")])),
            actor=operator,
            file_name="january.csv",
            clock=clock,
            opening_delay=OPENING_DELAY,
        )
        runs = past_runs(session, security_officer_actor(), clock=clock)
        assert len(runs) == 1
        assert (runs[0].file_name, runs[0].by) == ("january.csv", "operator:enrolment-desk")
        assert (runs[0].created, runs[0].rejected) == (1, 1)
        assert runs[0].recorded_at == clock.now()

    def test_a_file_that_is_not_utf8_is_refused_readably(
        self, session: Session, clock: FrozenClock
    ) -> None:
        text = registry_csv([registry_row(family="Müller")]).encode("latin-1")
        with pytest.raises(InvalidRegistryFile, match="not UTF-8"):
            run_enrolment(
                _sessions(session),
                io.BytesIO(text),
                actor=operator_actor(),
                file_name="latin1.csv",
                clock=clock,
                opening_delay=OPENING_DELAY,
            )
        assert past_runs(session, operator_actor(), clock=clock) == []

    def test_a_file_without_the_required_columns_is_refused(
        self, session: Session, clock: FrozenClock
    ) -> None:
        with pytest.raises(InvalidRegistryFile, match="lacks"):
            run_enrolment(
                _sessions(session),
                _file("name,birth\nWeber,1980-05-17\n"),
                actor=operator_actor(),
                file_name="wrong.csv",
                clock=clock,
                opening_delay=OPENING_DELAY,
            )

    def test_only_an_operator_enrols(self, session: Session, clock: FrozenClock) -> None:
        professional = professional_actor(make_professional(session, clock))
        for actor in (security_officer_actor(), professional):
            with pytest.raises(AccessDenied):
                run_enrolment(
                    _sessions(session),
                    _file(registry_csv([registry_row()])),
                    actor=actor,
                    file_name="x.csv",
                    clock=clock,
                    opening_delay=OPENING_DELAY,
                )
        with pytest.raises(AccessDenied):
            past_runs(session, professional, clock=clock)
