"""CDA tests: a patient named by a Luxembourg matricule, a laboratory and its biologist."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation, Profession, Professional
from carnet.patients.models import Patient
from factories.actors import professional_actor
from factories.directory import make_organisation, make_professional
from factories.patients import make_matricule, make_patient


@pytest.fixture
def matricule() -> str:
    return make_matricule()


@pytest.fixture
def patient(session: Session, clock: FrozenClock, matricule: str) -> Patient:
    return make_patient(session, clock, matricule=matricule)


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
