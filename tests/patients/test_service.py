"""Patients service: creating dossiers, finding and updating patients."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.patients import identifiers, service
from carnet.patients.errors import (
    DuplicateIdentifier,
    InvalidDemographics,
    InvalidIdentifier,
    PatientNotFound,
)
from carnet.patients.models import DossierState, Patient, PatientIdentifier
from factories.patients import demographics, make_matricule, make_patient


class TestCreateDossier:
    def test_creates_patient_identifiers_and_active_dossier(
        self, session: Session, clock: FrozenClock
    ) -> None:
        matricule = make_matricule()
        nir = identifiers.fr_nir(2, 1980, 5, "2A", "004", 12)
        patient = service.create_dossier(
            session,
            identifiers_=[(identifiers.LU_MATRICULE, matricule), (identifiers.FR_NIR, nir)],
            demographics=demographics(),
            clock=clock,
        )
        session.expire_all()
        stored = service.get_patient(session, patient.id)
        assert stored.family == "Weber"
        assert stored.given == "Léa"
        assert {(i.system, i.value) for i in stored.identifiers} == {
            (identifiers.LU_MATRICULE, matricule),
            (identifiers.FR_NIR, nir),
        }
        assert stored.dossier.state is DossierState.ACTIVE
        assert stored.dossier.opened_at == clock.now()
        assert stored.created_at.tzinfo is not None

    def test_invited_dossier_is_not_yet_opened(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock, state=DossierState.INVITED)
        assert patient.dossier.state is DossierState.INVITED
        assert patient.dossier.opened_at is None

    def test_identifier_is_normalised(self, session: Session, clock: FrozenClock) -> None:
        matricule = make_matricule()
        spaced = f"{matricule[:4]} {matricule[4:8]} {matricule[8:]}"
        patient = make_patient(session, clock, matricule=spaced)
        assert patient.identifiers[0].value == matricule

    def test_bad_identifier_is_refused_naming_the_check(
        self, session: Session, clock: FrozenClock
    ) -> None:
        matricule = make_matricule()
        broken = matricule[:-1] + str((int(matricule[-1]) + 1) % 10)
        with pytest.raises(InvalidIdentifier) as caught:
            make_patient(session, clock, matricule=broken)
        assert caught.value.check == "verhoeff"
        assert caught.value.field == "identifier"
        assert session.scalar(select(func.count()).select_from(Patient)) == 0

    def test_identifier_already_taken_is_a_conflict(
        self, session: Session, clock: FrozenClock
    ) -> None:
        matricule = make_matricule()
        make_patient(session, clock, matricule=matricule)
        with pytest.raises(DuplicateIdentifier, match="already belongs"):
            make_patient(session, clock, matricule=matricule, given="Paul")
        assert session.scalar(select(func.count()).select_from(Patient)) == 1

    def test_no_identifier_is_refused(self, session: Session, clock: FrozenClock) -> None:
        with pytest.raises(InvalidDemographics) as caught:
            service.create_dossier(
                session, identifiers_=[], demographics=demographics(), clock=clock
            )
        assert caught.value.field == "identifier"

    @pytest.mark.parametrize(
        ("overrides", "field"),
        [
            ({"family": "  "}, "family"),
            ({"given": ""}, "given"),
            ({"family": "x" * 201}, "family"),
            ({"birth_date": dt.date(2030, 1, 1)}, "birth_date"),
            ({"birth_date": dt.date(1850, 1, 1)}, "birth_date"),
            ({"language": "xx"}, "language"),
            ({"email": "not-an-address"}, "email"),
            ({"country": "LUX"}, "country"),
        ],
    )
    def test_bad_demographics_name_the_field(
        self, session: Session, clock: FrozenClock, overrides: dict[str, object], field: str
    ) -> None:
        with pytest.raises(InvalidDemographics) as caught:
            service.create_dossier(
                session,
                identifiers_=[(identifiers.LU_MATRICULE, make_matricule())],
                demographics=demographics(**overrides),
                clock=clock,
            )
        assert caught.value.field == field
        assert session.scalar(select(func.count()).select_from(PatientIdentifier)) == 0


class TestFindPatient:
    def test_by_identifier(self, session: Session, clock: FrozenClock) -> None:
        matricule = make_matricule()
        patient = make_patient(session, clock, matricule=matricule)
        found = service.find_patient(session, identifiers.LU_MATRICULE, matricule)
        assert found is not None
        assert found.id == patient.id

    def test_unknown_identifier_finds_nobody(self, session: Session) -> None:
        assert service.find_patient(session, identifiers.LU_MATRICULE, make_matricule()) is None

    def test_malformed_identifier_is_an_error_not_a_miss(self, session: Session) -> None:
        with pytest.raises(InvalidIdentifier):
            service.find_patient(session, identifiers.LU_MATRICULE, "123")
        with pytest.raises(InvalidIdentifier):
            service.find_patient_id(session, identifiers.LU_MATRICULE, "123")

    def test_only_the_id(self, session: Session, clock: FrozenClock) -> None:
        matricule = make_matricule()
        patient = make_patient(session, clock, matricule=matricule)
        assert service.find_patient_id(session, identifiers.LU_MATRICULE, matricule) == patient.id
        assert service.find_patient_id(session, identifiers.LU_MATRICULE, make_matricule()) is None

    def test_get_unknown_patient(self, session: Session) -> None:
        import uuid

        with pytest.raises(PatientNotFound):
            service.get_patient(session, uuid.uuid4())
        with pytest.raises(PatientNotFound):
            service.get_dossier(session, uuid.uuid4())

    def test_search_by_name_prefix_and_birth_date(
        self, session: Session, clock: FrozenClock
    ) -> None:
        weber = make_patient(session, clock, family="Weber", given="Léa")
        make_patient(session, clock, family="Webster", given="Tom", birth_date=dt.date(1990, 1, 2))
        make_patient(session, clock, family="Muller", given="Léa")
        assert {p.family for p in service.search_patients(session, family="web")} == {
            "Weber",
            "Webster",
        }
        found = service.search_patients(session, family="WEB", birth_date=dt.date(1980, 5, 17))
        assert [p.id for p in found] == [weber.id]
        assert len(service.search_patients(session, given="léa")) == 2

    def test_search_treats_wildcards_literally(self, session: Session, clock: FrozenClock) -> None:
        make_patient(session, clock, family="Weber")
        assert service.search_patients(session, family="%") == []
        assert service.search_patients(session, family="W_ber") == []

    def test_search_needs_a_criterion(self, session: Session) -> None:
        with pytest.raises(InvalidDemographics):
            service.search_patients(session)


class TestUpdateDemographics:
    def test_changes_are_applied_and_reported(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock)
        clock.advance(dt.timedelta(days=1))
        changed = service.update_demographics(
            session, patient.id, demographics(city="Luxembourg"), clock=clock
        )
        assert changed
        assert patient.city == "Luxembourg"
        assert patient.updated_at == clock.now()

    def test_same_demographics_change_nothing(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock)
        before = patient.updated_at
        clock.advance(dt.timedelta(days=1))
        assert not service.update_demographics(session, patient.id, demographics(), clock=clock)
        assert patient.updated_at == before

    def test_invalid_update_changes_nothing(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock)
        with pytest.raises(InvalidDemographics):
            service.update_demographics(
                session, patient.id, demographics(family="", city="Paris"), clock=clock
            )
        assert patient.city == "Esch-sur-Alzette"
