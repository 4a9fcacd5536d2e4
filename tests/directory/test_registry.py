"""Loading the national professional registry: created, updated, kept, refused whole, audited."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carnet.access.errors import AccessDenied
from carnet.audit.models import AuditAction, AuditEvent
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.directory import service
from carnet.directory.errors import InvalidDirectoryFile
from carnet.directory.models import Organisation, Profession, Professional
from carnet.lifecycle.directory_registry import import_directory
from carnet.patients import identifiers
from factories.actors import operator_actor, security_officer_actor

RPPS = identifiers.fr_rpps(4242)
OTHER_RPPS = identifiers.fr_rpps(4243)
HEADER = (
    "identifier_system,identifier,family,given,profession,specialty,"
    "organisation_identifier,organisation_name,active\n"
)
FILE = (
    HEADER
    + f"rpps,{RPPS},Martin,Claire,specialist,cardiology,750712184,Clinique du Parc,true\n"
    + "lu,LU-CM-0042,Weber,Anne,general-practitioner,,,,\n"
)


def _import(session: Session, clock: FrozenClock, text: str) -> str:
    return import_directory(session, operator_actor(), io.StringIO(text), clock=clock).summary()


def _professional(session: Session, system: str, value: str) -> Professional:
    found = service.find_professional(session, system, value)
    assert found is not None
    return found


class TestImport:
    def test_creates_professionals_and_their_organisation(
        self, session: Session, clock: FrozenClock
    ) -> None:
        summary = _import(session, clock, FILE)
        assert summary == (
            "Directory: 2 created, 0 updated, 0 unchanged; 1 organisations registered."
        )
        martin = _professional(session, identifiers.FR_RPPS, RPPS)
        assert (martin.profession, martin.specialty) == (Profession.SPECIALIST, "cardiology")
        assert martin.organisation is not None
        assert martin.organisation.identifier_system == service.FR_FINESS
        assert martin.organisation.name == "Clinique du Parc"
        weber = _professional(session, service.LU_PROFESSIONAL, "lu-cm-0042")
        assert (weber.given, weber.organisation_id, weber.active) == ("Anne", None, True)

    def test_the_same_file_again_changes_nothing(
        self, session: Session, clock: FrozenClock
    ) -> None:
        _import(session, clock, FILE)
        events = session.scalar(select(func.count()).select_from(AuditEvent))
        assert _import(session, clock, FILE) == (
            "Directory: 0 created, 0 updated, 2 unchanged; 0 organisations registered."
        )
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == events
        assert session.scalar(select(func.count()).select_from(Organisation)) == 1

    def test_updates_what_the_file_says_and_keeps_what_it_does_not(
        self, session: Session, clock: FrozenClock
    ) -> None:
        _import(session, clock, FILE)
        # No organisation or specialty columns, an empty active cell: those stay as stored.
        update = (
            "identifier_system,identifier,family,given,profession,active\n"
            f"rpps,{RPPS},Martin-Durand,Claire,specialist,\n"
            "lu,LU-CM-0042,Weber,Anne,general-practitioner,false\n"
        )
        assert _import(session, clock, update).startswith("Directory: 0 created, 2 updated")
        martin = _professional(session, identifiers.FR_RPPS, RPPS)
        assert (martin.family, martin.specialty, martin.active) == (
            "Martin-Durand",
            "cardiology",
            True,
        )
        assert martin.organisation is not None
        assert not _professional(session, service.LU_PROFESSIONAL, "LU-CM-0042").active

    def test_a_dash_clears_the_organisation(self, session: Session, clock: FrozenClock) -> None:
        _import(session, clock, FILE)
        _import(
            session,
            clock,
            "identifier_system,identifier,family,given,profession,organisation_identifier\n"
            f"rpps,{RPPS},Martin,Claire,specialist,-\n",
        )
        assert _professional(session, identifiers.FR_RPPS, RPPS).organisation_id is None

    def test_a_file_with_errors_is_refused_whole_naming_line_and_column(
        self, session: Session, clock: FrozenClock
    ) -> None:
        bad = (
            HEADER
            + f"rpps,{OTHER_RPPS},Good,Row,nurse,,,,\n"
            + "rpps,10000000000,Bad,Key,nurse,,,,\n"
            + "lu,LU-CM-0043,Ok,Name,surgeon,,,,\n"
            + "lu,LU-CM-0044,No,Specialty,specialist,,,,maybe\n"
            + "xx,LU-CM-0045,Where,Org,nurse,,UNKNOWN-ORG,,\n"
            + f"rpps,{OTHER_RPPS},Twice,Listed,nurse,,,,\n"
            + "lu,LU-CM-0046,No,Org,nurse,,UNKNOWN-ORG,,\n"
        )
        with pytest.raises(InvalidDirectoryFile) as caught:
            _import(session, clock, bad)
        assert [str(problem) for problem in caught.value.problems] == [
            "line 3: identifier: French RPPS number 10000000000: the Luhn check digit "
            "(11th digit) is wrong; look for a mistyped or swapped digit",
            "line 4: profession: 'surgeon' is not one of general-practitioner, specialist, "
            "dentist, pharmacist, nurse, midwife, physiotherapist, emergency-physician, "
            "biologist, staff",
            "line 5: active: 'maybe' is not true or false",
            "line 6: identifier_system: 'xx' is not rpps or lu",
            f"line 7: identifier: {OTHER_RPPS} is also on line 2",
            "line 8: organisation_identifier: UNKNOWN-ORG is not in the directory: give its "
            "organisation_name to register it",
        ]
        assert service.find_professional(session, identifiers.FR_RPPS, OTHER_RPPS) is None
        assert session.scalar(select(func.count()).select_from(Professional)) == 0

    def test_a_kept_specialty_counts_when_checking_a_specialist(
        self, session: Session, clock: FrozenClock
    ) -> None:
        _import(session, clock, FILE)
        # Cardiology is stored and the file does not say otherwise: a nurse cannot keep it.
        with pytest.raises(InvalidDirectoryFile, match="line 2: specialty: only specialists"):
            _import(
                session,
                clock,
                f"identifier_system,identifier,family,given,profession\n"
                f"rpps,{RPPS},Martin,Claire,nurse\n",
            )

    def test_a_header_without_a_required_column_is_refused(
        self, session: Session, clock: FrozenClock
    ) -> None:
        with pytest.raises(InvalidDirectoryFile, match="line 1: header: lacks profession"):
            _import(session, clock, "identifier_system,identifier,family,given\n")

    def test_every_change_is_audited_by_the_operator(
        self, session: Session, clock: FrozenClock
    ) -> None:
        _import(session, clock, FILE)
        martin = _professional(session, identifiers.FR_RPPS, RPPS)
        [event] = session.scalars(
            select(AuditEvent).where(AuditEvent.entity_ids.contains(str(martin.id)))
        )
        assert (event.action, event.agent_kind, event.agent_subject) == (
            AuditAction.LIFECYCLE,
            "operator",
            "operator:operator-1",
        )
        assert json.loads(event.details)["directory"] == "created"

    def test_only_an_operator_loads_the_registry(
        self, session: Session, clock: FrozenClock
    ) -> None:
        with pytest.raises(AccessDenied):
            import_directory(session, security_officer_actor(), io.StringIO(FILE), clock=clock)


runner = CliRunner()


@pytest.mark.parametrize("committing_engine", ["sqlite"], indirect=True)
class TestCommand:
    def _run(self, engine: Engine, tmp_path: Path, text: str) -> tuple[int, str, str]:
        registry = tmp_path / "registry.csv"
        registry.write_text(text, encoding="utf-8")
        env = {
            "CARNET_VAR_DIR": str(tmp_path / "var"),
            "CARNET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        }
        result = runner.invoke(app, ["directory", "import", str(registry)], env=env)
        return result.exit_code, result.stdout, result.stderr

    def test_loads_the_file_then_professionals_can_be_invited(
        self, committing_engine: Engine, tmp_path: Path
    ) -> None:
        code, out, _ = self._run(committing_engine, tmp_path, FILE)
        assert (code, out) == (
            0,
            "Directory: 2 created, 0 updated, 0 unchanged; 1 organisations registered.\n",
        )
        invited = runner.invoke(
            app,
            ["professionals", "invite", RPPS],
            env={
                "CARNET_VAR_DIR": str(tmp_path / "var"),
                "CARNET_DATABASE_URL": committing_engine.url.render_as_string(hide_password=False),
            },
        )
        assert invited.exit_code == 0, invited.output
        assert "/oauth/authorize/invitation?code=" in invited.stdout

    def test_a_bad_file_prints_one_line_per_problem_and_writes_nothing(
        self, committing_engine: Engine, tmp_path: Path
    ) -> None:
        code, _, err = self._run(
            committing_engine,
            tmp_path,
            HEADER + f"rpps,{RPPS},Martin,,nurse,,,,\nlu,LU-CM-0042,Weber,Anne,surgeon,,,,\n",
        )
        assert code == 1
        assert err.splitlines() == [
            "line 2: given: is empty",
            "line 3: profession: 'surgeon' is not one of general-practitioner, specialist, "
            "dentist, pharmacist, nurse, midwife, physiotherapist, emergency-physician, "
            "biologist, staff",
            "error: The registry file is refused (2 problems); nothing was written.",
        ]
        with unit_of_work(session_factory(committing_engine)) as session:
            assert session.scalar(select(func.count()).select_from(Professional)) == 0
