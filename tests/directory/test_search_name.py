"""The patient's directory search: every word typed, in any order, accents and case aside."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.directory import service
from carnet.directory.models import Profession, folded, searchable_name
from factories.directory import make_professional


def _named(session: Session, clock: FrozenClock, given: str, family: str) -> str:
    professional = make_professional(session, clock, family=family)
    professional.given = given
    session.flush()
    return str(professional.id)


class TestFolding:
    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("Gonçalves", "goncalves"),
            ("Benoît  MEYER", "benoit meyer"),
            ("Schmit-Hansen", "schmit hansen"),
            ("Strauß", "strauss"),
            ("  ", ""),
        ],
    )
    def test_a_name_loses_accents_case_and_punctuation(self, name: str, expected: str) -> None:
        assert folded(name) == expected

    def test_the_stored_form_puts_a_space_before_every_word(self) -> None:
        assert searchable_name("Anne-Marie", "Gonçalves") == " anne marie goncalves "


class TestSearch:
    @pytest.mark.parametrize(
        "typed", ["Ben Meyer", "meyer ben", "MEYER", "benoit", "Benoît Mey", "  ben   meyer "]
    )
    def test_given_and_family_in_any_order_without_accents(
        self, session: Session, clock: FrozenClock, typed: str
    ) -> None:
        wanted = _named(session, clock, "Benoît", "Meyer")
        _named(session, clock, "Benjamin", "Weber")
        found = [str(p.id) for p in service.search_professionals(session, name=typed)]
        assert found == [wanted]

    def test_a_word_matches_only_at_a_word_start(
        self, session: Session, clock: FrozenClock
    ) -> None:
        _named(session, clock, "Ana", "Gonçalves")
        assert len(service.search_professionals(session, name="goncalves")) == 1
        assert service.search_professionals(session, name="alves") == []

    def test_the_identifier_finds_the_professional(
        self, session: Session, clock: FrozenClock
    ) -> None:
        professional = make_professional(session, clock, family="Kieffer")
        found = service.search_professionals(session, name=professional.identifier_value)
        assert [p.id for p in found] == [professional.id]

    def test_a_renamed_professional_is_found_by_the_new_name(
        self, session: Session, clock: FrozenClock
    ) -> None:
        professional = make_professional(session, clock, family="Muller")
        professional.family = "Müller-Thill"
        session.flush()
        assert [p.id for p in service.search_professionals(session, name="thill")] == [
            professional.id
        ]

    def test_inactive_professionals_and_other_professions_are_left_out(
        self, session: Session, clock: FrozenClock
    ) -> None:
        gone = make_professional(session, clock, family="Reuter")
        gone.active = False
        make_professional(session, clock, family="Reuter", profession=Profession.DENTIST)
        session.flush()
        found = service.search_professionals(
            session, name="reuter", profession=Profession.GENERAL_PRACTITIONER
        )
        assert found == []

    def test_wildcards_typed_are_plain_letters(self, session: Session, clock: FrozenClock) -> None:
        _named(session, clock, "Ana", "Gonçalves")
        assert service.search_professionals(session, name="g_nc") == []
