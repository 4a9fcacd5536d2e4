"""ITI-65 publications with values no column can keep: 400 naming the element, nothing written.

https://profiles.ihe.net/ITI/MHD/ITI-65.html — the bundle is all or nothing. Before the checks of
``carnet.storable``, PostgreSQL refused these mid-transaction and the client read 503 "cannot
reach its database"; SQLite kept over-long values silently. Both now answer the same 400.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from carnet.db import DatabaseFault, database_fault
from carnet.documents.models import Document, SubmissionSet
from carnet.fhir.validation import MAX_DEPTH
from carnet.storable import column_limit
from robustness.conftest import Target

DOCUMENT = "Bundle.entry[1].resource"


def _limit(column: Any) -> int:
    """The column's length, read from the model as Carnet's checks read it."""
    limit = column_limit(column)
    assert limit is not None
    return limit


def _documents(target: Target) -> int:
    return target.session.scalar(select(func.count()).select_from(Document)) or 0


def _issue(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue: dict[str, Any] = body["issue"][0]
    return issue


def _described(target: Target, description: str) -> dict[str, Any]:
    """A bundle whose document is titled by its description (no attachment title)."""
    bundle = target.bundle(description=description)
    del bundle["entry"][1]["resource"]["content"][0]["attachment"]["title"]
    return bundle


def _refused(target: Target, bundle: dict[str, Any]) -> dict[str, Any]:
    before = _documents(target)
    issue = _issue(target.publish(bundle))
    assert _documents(target) == before, "a refused bundle wrote a document"
    return issue


class TestLengths:
    def test_a_code_longer_than_its_column_names_the_element(self, target: Target) -> None:
        limit = _limit(Document.__table__.c.facility_type)
        context = {"facilityType": {"coding": [{"system": "urn:x", "code": "f" * (limit + 1)}]}}
        issue = _refused(target, target.bundle(context=context))
        assert issue["code"] == "too-long"
        assert issue["expression"] == ["DocumentReference.context.facilityType.coding.code"]

    def test_a_description_longer_than_the_title_column_is_refused(self, target: Target) -> None:
        # The documents service refuses it first (422, naming the title): never a 5xx.
        limit = _limit(Document.__table__.c.title)
        before = _documents(target)
        response = target.publish(_described(target, "x" * (limit + 1)))
        assert response.status_code == 422, response.text
        assert response.json()["issue"][0]["expression"] == ["title"]
        assert _documents(target) == before

    def test_a_master_identifier_longer_than_its_column_is_refused(self, target: Target) -> None:
        limit = _limit(Document.__table__.c.master_identifier)
        bundle = target.bundle()
        bundle["entry"][1]["resource"]["masterIdentifier"]["value"] = "urn:x:" + "1" * limit
        issue = _refused(target, bundle)
        assert issue["code"] == "too-long"
        assert issue["expression"] == ["DocumentReference.masterIdentifier.value"]

    def test_a_value_at_its_column_s_length_is_kept(self, target: Target) -> None:
        limit = _limit(Document.__table__.c.title)
        response = target.publish(_described(target, "x" * limit))
        assert response.status_code == 200, response.text
        assert target.session.scalars(select(Document.title)).one() == "x" * limit


class TestCharacters:
    @pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b"])
    def test_a_control_character_in_free_text_names_the_element(
        self, target: Target, character: str
    ) -> None:
        issue = _refused(target, target.bundle(description=f"Bilan{character}sanguin"))
        assert issue["code"] == "value"
        assert issue["expression"] == [f"{DOCUMENT}.description"]

    def test_tab_and_line_breaks_are_kept_in_free_text(self, target: Target) -> None:
        assert target.publish(_described(target, "Bilan\tsanguin\r\nà jeun")).status_code == 200

    def test_nul_in_a_submission_set_identifier_is_refused(self, target: Target) -> None:
        bundle = target.bundle()
        bundle["entry"][0]["resource"]["identifier"][0]["value"] = "urn:uuid:\x00"
        issue = _refused(target, bundle)
        assert issue["expression"] == ["Bundle.entry[0].resource.identifier[0].value"]


class TestDates:
    @pytest.mark.parametrize("instant", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"])
    def test_a_period_leaving_years_1_to_9999_in_utc_is_refused(
        self, target: Target, instant: str
    ) -> None:
        issue = _refused(target, target.bundle(context={"period": {"start": instant}}))
        assert issue["code"] == "value"
        assert issue["expression"] == [f"{DOCUMENT}.context.period.start"]

    def test_the_last_instant_of_9999_in_utc_is_kept(self, target: Target) -> None:
        bundle = target.bundle(context={"period": {"end": "9999-12-31T23:59:59Z"}})
        assert target.publish(bundle).status_code == 200


class TestStructure:
    def test_nesting_just_within_the_limit_reaches_fhir_validation(self, target: Target) -> None:
        deep: dict[str, Any] = {}
        # Each round is two levels (an object and its list); the Bundle and meta are two more.
        for _ in range((MAX_DEPTH - 4) // 2):
            deep = {"extension": [deep]}
        bundle = target.bundle()
        bundle["meta"] = deep
        response = target.publish(bundle)
        # Refused by FHIR validation (meta has no such shape), not for its depth.
        assert response.status_code == 422, response.text

    def test_nesting_over_the_limit_is_refused_before_validation(self, target: Target) -> None:
        deep: dict[str, Any] = {}
        for _ in range(MAX_DEPTH // 2):
            deep = {"extension": [deep]}
        bundle = target.bundle()
        bundle["meta"] = deep
        issue = _refused(target, bundle)
        assert issue["code"] == "structure"
        assert issue["expression"][0].startswith("Bundle.meta.extension[0]")


class TestDatabaseRefusalsAreTheClientsFault:
    """The safety net: a DataError that still reaches a way in is a 400, nothing written."""

    def test_a_value_postgresql_refuses_is_answered_400_and_rolled_back(
        self, target: Target, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if target.session.get_bind().dialect.name != "postgresql":
            pytest.skip("SQLite stores an over-long string without complaint")
        # Switch the checks before the flush off, so that PostgreSQL itself refuses.
        monkeypatch.setattr("carnet.storable.check_column", lambda *_a, **_k: None)
        limit = _limit(Document.__table__.c.facility_type)
        context = {"facilityType": {"coding": [{"system": "urn:x", "code": "f" * (limit + 1)}]}}
        issue = _refused(target, target.bundle(context=context))
        assert issue["code"] == "invalid"
        assert target.session.scalar(select(func.count()).select_from(SubmissionSet)) == 0

    def test_postgresql_refusing_a_value_is_classified_as_input(self, target: Target) -> None:
        bind = target.session.get_bind()
        if bind.dialect.name != "postgresql":
            pytest.skip("SQLite refuses neither over-long strings nor NUL")
        for statement, value in (
            ("SELECT CAST(:value AS smallint)", "99999"),  # 22003 numeric value out of range
            ("SELECT CAST(:value AS text)", "a\x00b"),  # NUL, refused by the driver
            ("SELECT CAST(:value AS timestamptz)", "300000-01-01"),  # 22008 out of range
        ):
            with pytest.raises(SQLAlchemyError) as refused, target.session.begin_nested():
                target.session.execute(text(statement), {"value": value})
            assert database_fault(refused.value) is DatabaseFault.INPUT, refused.value

    def test_an_unreachable_database_is_the_only_503(self) -> None:
        engine = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
        )
        with pytest.raises(SQLAlchemyError) as unreachable, engine.connect():
            pass
        assert database_fault(unreachable.value) is DatabaseFault.UNREACHABLE
        engine.dispose()
