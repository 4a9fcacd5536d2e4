"""Directory service: registering and finding professionals and organisations."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.directory import service
from carnet.directory.errors import (
    DuplicateDirectoryEntry,
    InvalidDirectoryEntry,
    OrganisationNotFound,
    ProfessionalNotFound,
)
from carnet.directory.models import OrganisationKind, Profession
from carnet.patients import identifiers
from factories.directory import make_organisation, make_professional


class TestOrganisations:
    def test_register_and_find(self, session: Session, clock: FrozenClock) -> None:
        lab = make_organisation(session, clock)
        assert service.get_organisation(session, lab.id).name == "Laboratoire Central Alzette"
        found = service.find_organisation(
            session, lab.identifier_system, lab.identifier_value.lower()
        )
        assert found is not None
        assert found.id == lab.id

    def test_duplicate_identifier(self, session: Session, clock: FrozenClock) -> None:
        lab = make_organisation(session, clock)
        with pytest.raises(DuplicateDirectoryEntry, match="already registered"):
            service.register_organisation(
                session,
                identifier_system=lab.identifier_system,
                identifier_value=lab.identifier_value,
                name="Other",
                kind=OrganisationKind.PHARMACY,
                clock=clock,
            )

    @pytest.mark.parametrize(
        ("value", "name", "field"),
        [("ORG-1", " ", "name"), ("x", "Lab", "identifier"), ("ORG 1/2", "Lab", "identifier")],
    )
    def test_invalid_entries(
        self, session: Session, clock: FrozenClock, value: str, name: str, field: str
    ) -> None:
        with pytest.raises(InvalidDirectoryEntry) as caught:
            service.register_organisation(
                session,
                identifier_system=service.LU_ORGANISATION,
                identifier_value=value,
                name=name,
                kind=OrganisationKind.HOSPITAL,
                clock=clock,
            )
        assert caught.value.field == field

    def test_unknown_organisation(self, session: Session) -> None:
        with pytest.raises(OrganisationNotFound):
            service.get_organisation(session, uuid.uuid4())


class TestProfessionals:
    def test_register_with_organisation(self, session: Session, clock: FrozenClock) -> None:
        hospital = make_organisation(session, clock, kind=OrganisationKind.HOSPITAL, name="CHL")
        cardiologist = make_professional(
            session,
            clock,
            profession=Profession.SPECIALIST,
            specialty="cardiology",
            organisation_id=hospital.id,
        )
        stored = service.get_professional(session, cardiologist.id)
        assert stored.organisation is not None
        assert stored.organisation.name == "CHL"
        assert stored.specialty == "cardiology"

    def test_rpps_luhn_is_checked(self, session: Session, clock: FrozenClock) -> None:
        rpps = identifiers.fr_rpps(42)
        wrong = rpps[:-1] + str((int(rpps[-1]) + 1) % 10)
        with pytest.raises(InvalidDirectoryEntry, match="Luhn") as caught:
            service.register_professional(
                session,
                identifier_system=identifiers.FR_RPPS,
                identifier_value=wrong,
                family="Schmit",
                given="Marc",
                profession=Profession.NURSE,
                clock=clock,
            )
        assert caught.value.field == "identifier"

    def test_specialist_needs_specialty(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(InvalidDirectoryEntry) as caught:
            make_professional(session, clock, profession=Profession.SPECIALIST)
        assert caught.value.field == "specialty"

    def test_only_specialists_have_a_specialty(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(InvalidDirectoryEntry, match="Only specialists"):
            make_professional(session, clock, specialty="cardiology")

    def test_empty_name(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(InvalidDirectoryEntry) as caught:
            make_professional(session, clock, family=" ")
        assert caught.value.field == "family"

    def test_unknown_organisation(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(OrganisationNotFound):
            make_professional(session, clock, organisation_id=uuid.uuid4())

    def test_duplicate(self, session: Session, clock: FrozenClock) -> None:
        professional = make_professional(session, clock)
        with pytest.raises(DuplicateDirectoryEntry):
            service.register_professional(
                session,
                identifier_system=professional.identifier_system,
                identifier_value=professional.identifier_value,
                family="Other",
                given="Person",
                profession=Profession.DENTIST,
                clock=clock,
            )

    def test_unknown_professional(self, session: Session) -> None:
        with pytest.raises(ProfessionalNotFound):
            service.get_professional(session, uuid.uuid4())

    def test_search_by_name_and_profession(self, session: Session, clock: FrozenClock) -> None:
        make_professional(session, clock, family="Hoffmann")
        make_professional(session, clock, family="Hoffmeister", profession=Profession.DENTIST)
        make_professional(session, clock, family="Reuter")
        assert len(service.search_professionals(session, name="hoff")) == 2
        dentists = service.search_professionals(session, name="hoff", profession=Profession.DENTIST)
        assert [p.family for p in dentists] == ["Hoffmeister"]
        assert len(service.search_professionals(session)) == 3


class TestAuthorName:
    def test_the_professional_before_the_organisation(
        self, session: Session, clock: FrozenClock
    ) -> None:
        lab = make_organisation(session, clock, name="Laboratoire Ketterthill")
        biologist = make_professional(session, clock, organisation_id=lab.id, family="Weber")
        named = service.author_name(session, professional_id=biologist.id, organisation_id=lab.id)
        assert named == "Marc Weber"
        assert (
            service.author_name(session, professional_id=None, organisation_id=lab.id)
            == "Laboratoire Ketterthill"
        )

    def test_nobody_named(self, session: Session) -> None:
        assert service.author_name(session, professional_id=None, organisation_id=None) is None
        assert (
            service.author_name(session, professional_id=uuid.uuid4(), organisation_id=None) is None
        )
