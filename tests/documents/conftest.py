"""Documents tests: a patient, a laboratory, its biologist as author, the patient as actor."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation, Profession, Professional
from carnet.patients.models import Patient
from factories.actors import patient_actor, professional_actor
from factories.directory import make_organisation, make_professional
from factories.patients import make_patient


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock)


@pytest.fixture
def lab(session: Session, clock: FrozenClock) -> Organisation:
    return make_organisation(session, clock)


@pytest.fixture
def biologist(session: Session, clock: FrozenClock, lab: Organisation) -> Professional:
    return make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
    )


@pytest.fixture
def author(biologist: Professional) -> Actor:
    """The biologist who publishes, signed in with their card."""
    return professional_actor(biologist)


@pytest.fixture
def me(patient: Patient) -> Actor:
    """The patient, signed in."""
    return patient_actor(patient)
