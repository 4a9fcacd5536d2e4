"""A patient names someone to act for them, and ends it; a representative cannot do either."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, AccessRuleNotFound, InvalidAccessRule
from carnet.access.models import Representation, RepresentationKind
from carnet.access.representation import (
    end_named_representative,
    name_representative,
    record_representation,
    representatives,
)
from carnet.audit.models import AuditAction, AuditEvent
from carnet.clock import FrozenClock
from carnet.documents import reading
from carnet.patients import identifiers
from carnet.patients.errors import InvalidIdentifier
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_matricule, make_patient

BORN = dt.date(1975, 2, 11)


def _person(session: Session, clock: FrozenClock, born: dt.date = BORN) -> tuple[Patient, str]:
    matricule = make_matricule(born)
    return make_patient(session, clock, matricule=matricule, birth_date=born), matricule


def _name(
    session: Session,
    clock: FrozenClock,
    patient: Patient,
    matricule: str,
    born: dt.date = BORN,
    *,
    by: Patient | None = None,
    ends_at: dt.datetime | None = None,
) -> Representation:
    actor = patient_actor(by or patient, acting_for=patient)
    return name_representative(
        session,
        open_dossier(session, actor, patient.id, purposes.NAME_REPRESENTATIVE, clock=clock),
        system=identifiers.LU_MATRICULE,
        value=matricule,
        birth_date=born,
        ends_at=ends_at,
    )


def _listed(session: Session, clock: FrozenClock, patient: Patient) -> list[str]:
    opened = open_dossier(
        session, patient_actor(patient), patient.id, purposes.READ_ACCESS_RULES, clock=clock
    )
    return [f"{r.given} {r.family} ({r.kind.value})" for r in representatives(session, opened)]


class TestNamingARepresentative:
    def test_the_named_person_reads_the_dossier_until_the_patient_ends_it(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        daughter, matricule = _person(session, clock)
        writer = professional_actor(make_professional(session, clock))
        make_document(session, store, clock, actor=writer, patient_id=patient.id)
        for_mother = patient_actor(daughter, acting_for=patient)
        with pytest.raises(AccessDenied):
            open_dossier(session, for_mother, patient.id, purposes.FIND_DOCUMENTS, clock=clock)

        named = _name(session, clock, patient, matricule)

        assert named.kind is RepresentationKind.NAMED
        assert named.recorded_by == f"Patient/{patient.id}"
        assert _listed(session, clock, patient) == [f"{daughter.given} {daughter.family} (named)"]
        found = reading.list_documents(
            session,
            open_dossier(session, for_mother, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
        )
        assert found.total == 1

        clock.advance(dt.timedelta(minutes=5))
        end_named_representative(
            session,
            open_dossier(
                session,
                patient_actor(patient),
                patient.id,
                purposes.NAME_REPRESENTATIVE,
                clock=clock,
            ),
            named.id,
        )
        with pytest.raises(AccessDenied):
            open_dossier(session, for_mother, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
        assert _listed(session, clock, patient) == []
        trail = session.scalars(
            select(AuditEvent.details).where(
                AuditEvent.patient_id == patient.id,
                AuditEvent.action == AuditAction.REPRESENTATION,
            )
        ).all()
        assert sorted(json.loads(details).get("revoked", False) for details in trail) == [
            False,
            True,
        ]

    def test_naming_the_same_person_again_changes_the_end_not_a_second_link(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        _, matricule = _person(session, clock)
        first = _name(
            session, clock, patient, matricule, ends_at=clock.now() + dt.timedelta(days=9)
        )
        again = _name(session, clock, patient, matricule)
        assert again.id == first.id
        assert again.ends_at is None
        assert len(_listed(session, clock, patient)) == 1

    def test_a_link_with_an_end_date_stops_by_itself(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        carer, matricule = _person(session, clock)
        _name(session, clock, patient, matricule, ends_at=clock.now() + dt.timedelta(days=2))
        for_patient = patient_actor(carer, acting_for=patient)
        open_dossier(session, for_patient, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
        clock.advance(dt.timedelta(days=3))
        with pytest.raises(AccessDenied):
            open_dossier(session, for_patient, patient.id, purposes.FIND_DOCUMENTS, clock=clock)
        assert _listed(session, clock, patient) == []


class TestWhatIsRefused:
    @pytest.mark.parametrize("born", [dt.date(1975, 2, 12), None])
    def test_a_wrong_birth_date_or_unknown_identifier_says_the_same(
        self, session: Session, clock: FrozenClock, born: dt.date | None
    ) -> None:
        patient = make_patient(session, clock)
        if born is None:  # a valid matricule nobody holds
            matricule, born = make_matricule(BORN), BORN
        else:
            _, matricule = _person(session, clock)
        with pytest.raises(InvalidAccessRule) as refused:
            _name(session, clock, patient, matricule, born)
        assert refused.value.message == "No insured person has this identifier and birth date."
        assert refused.value.field == "identifier"
        assert session.scalars(select(Representation)).all() == []

    def test_a_malformed_identifier_is_named(self, session: Session, clock: FrozenClock) -> None:
        patient = make_patient(session, clock)
        with pytest.raises(InvalidIdentifier):
            _name(session, clock, patient, "12345")

    def test_a_minor_or_oneself_cannot_be_named(self, session: Session, clock: FrozenClock) -> None:
        patient, own = _person(session, clock)
        _, matricule = _person(session, clock, dt.date(2015, 1, 1))
        with pytest.raises(InvalidAccessRule, match="of age"):
            _name(session, clock, patient, matricule, dt.date(2015, 1, 1))
        with pytest.raises(InvalidAccessRule, match="yourself"):
            _name(session, clock, patient, own)

    def test_a_representative_neither_names_nor_ends(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_patient(session, clock)
        named, _ = _person(session, clock)
        other, other_matricule = _person(session, clock)
        link = _name(session, clock, patient, make_matricule_of(named), BORN)
        with pytest.raises(AccessDenied):
            _name(session, clock, patient, other_matricule, by=named)
        with pytest.raises(AccessDenied):
            end_named_representative(
                session,
                open_dossier(
                    session,
                    patient_actor(named, acting_for=patient),
                    patient.id,
                    purposes.NAME_REPRESENTATIVE,
                    clock=clock,
                ),
                link.id,
            )
        assert other.id not in {
            r.representative_id for r in session.scalars(select(Representation))
        }

    def test_the_patient_does_not_end_a_guardianship(
        self, session: Session, clock: FrozenClock
    ) -> None:
        ward = make_patient(session, clock)
        guardian = make_patient(session, clock)
        link = record_representation(
            session,
            open_dossier(
                session, operator_actor(), ward.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            guardian.id,
            kind=RepresentationKind.GUARDIAN,
        )
        opened = open_dossier(
            session, patient_actor(ward), ward.id, purposes.NAME_REPRESENTATIVE, clock=clock
        )
        with pytest.raises(InvalidAccessRule, match="registry"):
            end_named_representative(session, opened, link.id)
        with pytest.raises(InvalidAccessRule, match="already acts"):
            _name(session, clock, ward, make_matricule_of(guardian), guardian.birth_date)
        with pytest.raises(AccessRuleNotFound):
            end_named_representative(session, opened, ward.id)


def make_matricule_of(patient: Patient) -> str:
    """The patient's Luxembourg matricule, as they would type it."""
    return next(i.value for i in patient.identifiers if i.system == identifiers.LU_MATRICULE)
