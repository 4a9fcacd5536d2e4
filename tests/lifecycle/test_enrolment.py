"""Enrolment from the insurer's registry: good, bad and duplicate rows, re-runs, representatives."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carnet.access.errors import AccessDenied
from carnet.access.models import Representation, RepresentationKind
from carnet.audit.models import AuditAction, AuditEvent
from carnet.audit.service import verify
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import session_factory
from carnet.lifecycle.enrolment import (
    REQUIRED,
    BatchResult,
    EnrolmentReport,
    RegistryRow,
    RowProblem,
    enrol_registry,
    enrol_rows,
    read_registry,
)
from carnet.lifecycle.errors import InvalidRegistryFile
from carnet.lifecycle.models import ActivationCode
from carnet.patients.identifiers import FR_NIR, LU_MATRICULE, fr_nir
from carnet.patients.models import DossierState, Patient, PatientIdentifier, Sex
from carnet.patients.service import find_patient
from factories.actors import operator_actor, patient_actor
from factories.lifecycle import CODE_LIFETIME, OPENING_DELAY, registry_csv, registry_row
from factories.patients import make_patient

MINOR = dt.date(2014, 2, 28)


def _enrol(
    session: Session, clock: FrozenClock, text: str, *, letters: bool = False
) -> tuple[BatchResult, list[str]]:
    """One batch through the service, as the CLI would run it; the result and every problem."""
    parsed = list(read_registry(io.StringIO(text)))
    early = [str(item) for item in parsed if isinstance(item, RowProblem)]
    rows = [item for item in parsed if isinstance(item, RegistryRow)]
    result = enrol_rows(
        session,
        operator_actor(),
        rows,
        clock=clock,
        opening_delay=OPENING_DELAY,
        code_lifetime=CODE_LIFETIME if letters else None,
    )
    return result, early + [str(problem) for problem in result.problems]


def _patient(session: Session, row: dict[str, str]) -> Patient:
    found = find_patient(session, LU_MATRICULE, row["national_identifier"])
    assert found is not None
    return found


class TestAFileOfGoodBadAndDuplicateRows:
    def test_good_rows_load_bad_ones_are_reported_by_line_and_column(
        self, session: Session, clock: FrozenClock
    ) -> None:
        good = registry_row()
        french = registry_row(
            national_identifier=fr_nir(1, 1985, 4, "75", "056", 42),
            identifier_system="fr",
            given="Jean",
            sex="M",
            language="en",
            country="FR",
        )
        text = registry_csv(
            [
                good,  # line 2
                registry_row(national_identifier="1980051700124"),  # line 3: check digits
                registry_row(birth_date="17/05/1980"),  # line 4
                registry_row(family=""),  # line 5
                registry_row(sex="x"),  # line 6
                registry_row(language="it"),  # line 7
                registry_row(email="lea.weber"),  # line 8
                good,  # line 9: the same row again
                french,  # line 10
                registry_row(birth_date="2099-01-01"),  # line 11
            ]
        )
        result, problems = _enrol(session, clock, text)
        assert problems == [
            "line 4: birth_date: '17/05/1980' is not a date YYYY-MM-DD",
            "line 5: family: is empty",
            "line 6: sex: 'x' is not female, male, other or unknown",
            "line 3: national_identifier: Luxembourg matricule 1980051700124: the Luhn check "
            "digit (12th digit) is wrong; look for a mistyped or swapped digit",
            "line 7: language: The language 'it' is not one of fr, en, de, lb, pt.",
            "line 8: email: The e-mail address 'lea.weber' is not valid.",
            "line 11: birth_date: The birth date 2099-01-01 is in the future.",
        ]
        assert (result.report.created, result.report.unchanged, result.report.rejected) == (2, 1, 4)
        patient = _patient(session, good)
        assert patient.dossier.state is DossierState.INVITED
        assert patient.dossier.opening_deadline == clock.now() + OPENING_DELAY
        assert (patient.family, patient.given, patient.sex) == ("Weber", "Léa", Sex.FEMALE)
        assert patient.insured_since == dt.date(2001, 9, 1)
        jean = find_patient(session, FR_NIR, french["national_identifier"])
        assert jean is not None
        assert (jean.sex, jean.language, jean.country) == (Sex.MALE, "en", "FR")

    def test_running_the_same_file_again_changes_nothing(
        self, session: Session, clock: FrozenClock
    ) -> None:
        text = registry_csv([registry_row(), registry_row(), registry_row(sex="")])
        first, _ = _enrol(session, clock, text)
        identifiers = session.scalar(select(func.count()).select_from(PatientIdentifier))
        clock.advance(dt.timedelta(days=1))
        second, problems = _enrol(session, clock, text)
        assert (first.report.created, first.report.rejected) == (2, 0)
        assert (second.report.created, second.report.updated, second.report.unchanged) == (0, 0, 2)
        assert problems == ["line 4: sex: is empty"]
        assert session.scalar(select(func.count()).select_from(PatientIdentifier)) == identifiers

    def test_changed_demographics_are_updated_and_audited(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = registry_row()
        _enrol(session, clock, registry_csv([row]))
        moved = row | {"city": "Luxembourg", "postal_code": "1111", "email": "LEA@example.lu"}
        clock.advance(dt.timedelta(days=1))
        result, _ = _enrol(session, clock, registry_csv([moved]))
        assert result.report.updated == 1
        patient = _patient(session, row)
        session.refresh(patient)
        assert (patient.city, patient.postal_code, patient.email) == (
            "Luxembourg",
            "1111",
            "lea@example.lu",
        )
        assert patient.updated_at == clock.now()
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.chain_id == patient.id).order_by(AuditEvent.seq)
        ).all()
        assert [json.loads(e.details)["reason"] for e in events] == [
            "enrolled from the registry",
            "demographics updated from the registry",
        ]
        assert json.loads(events[1].details)["fields"] == ["email", "postal_code", "city"]
        assert {e.agent_subject for e in events} == {"operator:operator-1"}

    def test_a_conflicting_duplicate_in_one_file_updates_the_first(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = registry_row()
        result, _ = _enrol(session, clock, registry_csv([row, row | {"given": "Léonie"}]))
        assert (result.report.created, result.report.updated) == (1, 1)
        assert _patient(session, row).given == "Léonie"

    def test_an_existing_dossier_keeps_its_state(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        [identifier] = patient.identifiers
        row = registry_row(
            national_identifier=identifier.value, given="Léa", city="Esch-sur-Alzette"
        )
        result, _ = _enrol(session, clock, registry_csv([row]))
        assert result.report.created == 0
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.ACTIVE

    def test_every_new_dossier_starts_its_audit_chain(
        self, session: Session, clock: FrozenClock
    ) -> None:
        rows = [registry_row() for _ in range(3)]
        _enrol(session, clock, registry_csv(rows))
        chains = [_patient(session, row).id for row in rows]
        report = verify(session, chain_ids=chains)
        assert (report.intact, report.chains, report.events) == (True, 3, 3)
        event = session.scalars(select(AuditEvent).where(AuditEvent.chain_id == chains[0])).one()
        assert event.action is AuditAction.LIFECYCLE
        assert json.loads(event.details)["to"] == "invited"

    def test_letters_carry_codes_that_are_stored_only_hashed(
        self, session: Session, clock: FrozenClock
    ) -> None:
        rows = [registry_row(language="de"), registry_row()]
        result, _ = _enrol(session, clock, registry_csv(rows), letters=True)
        assert [letter.language for letter in result.invitations] == ["de", "fr"]
        [stored] = session.scalars(
            select(ActivationCode).where(
                ActivationCode.patient_id == result.invitations[0].patient_id
            )
        ).all()
        assert result.invitations[0].code not in stored.code_hash
        assert result.invitations[0].opening_deadline == clock.now() + OPENING_DELAY

    def test_only_the_agency_enrols(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(AccessDenied):
            enrol_rows(
                session,
                patient_actor(make_patient(session, clock)),
                [],
                clock=clock,
                opening_delay=OPENING_DELAY,
            )


class TestWhatTheRegistryDoesNotSay:
    """A known person keeps what the file says nothing of; ``-`` clears a value explicitly."""

    OPTIONAL_DEMOGRAPHICS = (
        "address_line", "postal_code", "city", "country", "email", "language", "insured_since",
    )  # fmt: skip

    def _known(self, session: Session, clock: FrozenClock) -> dict[str, str]:
        row = registry_row(language="en", country="FR", city="Metz", postal_code="57000")
        _enrol(session, clock, registry_csv([row]))
        clock.advance(dt.timedelta(days=1))
        return row

    def _stored(self, session: Session, row: dict[str, str]) -> tuple[object, ...]:
        patient = _patient(session, row)
        session.refresh(patient)
        return (
            patient.email, patient.address_line, patient.postal_code, patient.city,
            patient.country, patient.language, patient.insured_since,
        )  # fmt: skip

    def test_a_file_without_the_optional_columns_keeps_what_is_stored(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = self._known(session, clock)
        before = self._stored(session, row)
        assert before[0] == "lea.weber@example.lu"
        required = {name: row[name] for name in REQUIRED}

        result, problems = _enrol(session, clock, registry_csv([required], header=REQUIRED))

        assert problems == []
        assert (result.report.updated, result.report.unchanged) == (0, 1)
        assert self._stored(session, row) == before

    def test_a_changed_name_updates_the_name_and_keeps_the_rest(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = self._known(session, clock)
        before = self._stored(session, row)
        renamed = {name: row[name] for name in REQUIRED} | {"family": "Weber-Schmit"}

        result, _ = _enrol(session, clock, registry_csv([renamed], header=REQUIRED))

        assert result.report.updated == 1
        assert _patient(session, row).family == "Weber-Schmit"
        assert self._stored(session, row) == before

    def test_empty_cells_keep_what_is_stored(self, session: Session, clock: FrozenClock) -> None:
        row = self._known(session, clock)
        before = self._stored(session, row)
        blank = row | dict.fromkeys(self.OPTIONAL_DEMOGRAPHICS, "")

        result, _ = _enrol(session, clock, registry_csv([blank]))

        assert result.report.unchanged == 1
        assert self._stored(session, row) == before

    def test_a_dash_clears_a_value_and_is_audited(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = self._known(session, clock)

        result, _ = _enrol(session, clock, registry_csv([row | {"email": "-", "city": "-"}]))

        assert result.report.updated == 1
        email, address, _, city, *_ = self._stored(session, row)
        assert (email, address, city) == (None, "12, rue de l'Alzette", None)
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.chain_id == _patient(session, row).id)
            .order_by(AuditEvent.seq.desc())
        ).first()
        assert event is not None
        assert json.loads(event.details)["fields"] == ["email", "city"]

    def test_the_language_cannot_be_cleared(self, session: Session, clock: FrozenClock) -> None:
        _, problems = _enrol(session, clock, registry_csv([registry_row(language="-")]))
        assert problems == [
            "line 2: language: cannot be cleared: give fr, en, de, lb or pt, or nothing"
        ]

    def test_a_new_person_without_the_optional_columns_gets_the_defaults(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = {name: registry_row()[name] for name in REQUIRED}

        result, _ = _enrol(session, clock, registry_csv([row], header=REQUIRED))

        assert result.report.created == 1
        assert self._stored(session, row) == (None, None, None, None, None, "fr", None)

    def test_people_leaving_different_values_alone_in_one_batch_each_keep_theirs(
        self, session: Session, clock: FrozenClock
    ) -> None:
        first, second = registry_row(), registry_row(born=dt.date(1975, 3, 2))
        _enrol(session, clock, registry_csv([first, second]))
        clock.advance(dt.timedelta(days=1))
        moved = first | {"email": "", "city": "Luxembourg"}
        renamed = second | {"email": "new@example.lu", "city": "", "given": "Anne"}
        again = first | {"city": "", "postal_code": "1111"}

        result, _ = _enrol(session, clock, registry_csv([moved, renamed, again]))

        assert result.report.updated == 3
        one, two = _patient(session, first), _patient(session, second)
        session.refresh(one)
        session.refresh(two)
        assert (one.email, one.city, one.postal_code) == (
            "lea.weber@example.lu", "Luxembourg", "1111",
        )  # fmt: skip
        assert (two.email, two.city, two.given) == ("new@example.lu", "Esch-sur-Alzette", "Anne")


class TestTheFileItself:
    def test_a_header_without_a_required_column_is_refused_whole(self) -> None:
        text = registry_csv([], header=["national_identifier", "family", "given", "sexe"])
        with pytest.raises(InvalidRegistryFile) as refused:
            list(read_registry(io.StringIO(text)))
        assert "lacks birth_date, sex" in str(refused.value)
        assert "unknown columns sexe" in str(refused.value)

    def test_a_row_with_too_many_values_is_reported(self) -> None:
        text = registry_csv([registry_row()]) + "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16\n"
        [_, problem] = list(read_registry(io.StringIO(text)))
        assert str(problem) == "line 3: row: has more values than the header has columns"


class TestRepresentatives:
    def test_a_parent_listed_first_represents_their_child(
        self, session: Session, clock: FrozenClock
    ) -> None:
        parent = registry_row()
        child = registry_row(
            born=MINOR,
            given="Noah",
            representative_identifier=parent["national_identifier"],
            representation_kind="parent",
        )
        result, problems = _enrol(session, clock, registry_csv([parent, child]))
        assert problems == []
        assert result.report.representations == 1
        link = session.scalars(
            select(Representation).where(Representation.patient_id == _patient(session, child).id)
        ).one()
        assert link.representative_id == _patient(session, parent).id
        assert link.kind is RepresentationKind.PARENT
        assert link.ends_at == dt.datetime(2032, 2, 28, tzinfo=dt.UTC)  # the 18th birthday
        again, _ = _enrol(session, clock, registry_csv([parent, child]))
        assert again.report.representations == 0  # already linked

    def test_an_unknown_representative_is_reported_and_the_person_still_enrolled(
        self, session: Session, clock: FrozenClock
    ) -> None:
        child = registry_row(
            born=MINOR,
            representative_identifier=registry_row()["national_identifier"],
            representation_kind="guardian",
        )
        result, problems = _enrol(session, clock, registry_csv([child]))
        assert result.report.created == 1
        assert result.report.representations_refused == 1
        assert problems[0].startswith("line 2: representative_identifier: nobody with")

    def test_a_parent_does_not_represent_an_adult(
        self, session: Session, clock: FrozenClock
    ) -> None:
        parent = registry_row()
        adult = registry_row(
            representative_identifier=parent["national_identifier"],
            representation_kind="parent",
        )
        _, problems = _enrol(session, clock, registry_csv([parent, adult]))
        assert problems == [
            "line 3: representative_identifier: "
            "The patient is of age: a parent no longer represents them."
        ]

    def test_an_unknown_kind_of_representation_rejects_the_row(
        self, session: Session, clock: FrozenClock
    ) -> None:
        row = registry_row(representative_identifier="1", representation_kind="uncle")
        result, problems = _enrol(session, clock, registry_csv([row]))
        assert problems == ["line 2: representation_kind: 'uncle' is not parent or guardian"]
        assert result.report.created == 0


class TestTheRun:
    def test_batches_commit_separately_and_the_report_adds_them_up(
        self, committing_engine: Engine, clock: FrozenClock
    ) -> None:
        rows = [registry_row() for _ in range(5)] + [registry_row(sex="")]
        problems: list[str] = []
        letters: list[int] = []
        report = enrol_registry(
            session_factory(committing_engine),
            io.StringIO(registry_csv(rows)),
            actor=operator_actor(),
            clock=clock,
            opening_delay=OPENING_DELAY,
            code_lifetime=CODE_LIFETIME,
            batch_size=2,
            on_problem=lambda problem: problems.append(str(problem)),
            on_invitations=lambda batch: letters.append(len(batch)),
        )
        assert report == EnrolmentReport(created=5, rejected=1)
        assert problems == ["line 7: sex: is empty"]
        assert letters == [2, 2, 1]

    def test_the_command_prints_problems_a_summary_and_the_letters(
        self, committing_engine: Engine, tmp_path: Path
    ) -> None:
        registry = tmp_path / "registry.csv"
        registry.write_text("\ufeff" + registry_csv([registry_row(), registry_row(email="x")]))
        env = {
            "CARNET_VAR_DIR": str(tmp_path / "var"),
            "CARNET_DATABASE_URL": committing_engine.url.render_as_string(hide_password=False),
        }
        letters = tmp_path / "letters.pdf"
        command = ["enrol", str(registry), "--operator", "agent-7", "--letters", str(letters)]
        result = CliRunner().invoke(app, command, env=env)
        assert result.exit_code == 0, result.output
        assert "line 3: email: The e-mail address 'x' is not valid." in result.output
        assert "Enrolment: 1 created, 0 updated, 0 unchanged, 1 rejected." in result.output
        assert f"1 invitation letters printed to {letters}." in result.output
        assert letters.read_bytes().startswith(b"%PDF-")
        again = CliRunner().invoke(app, command, env=env)
        assert "Enrolment: 0 created, 0 updated, 1 unchanged, 1 rejected." in again.output
        assert "No new dossier: no letter printed." in again.output
        with session_factory(committing_engine)() as session:
            subjects = set(session.scalars(select(AuditEvent.agent_subject)))
        assert subjects == {"operator:agent-7"}
