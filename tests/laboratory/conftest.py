"""Laboratory tests: a patient, their laboratory and its registered feeding system."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.directory.models import Organisation
from carnet.feeds.models import FeedingSystem
from carnet.patients.models import Patient
from factories.directory import make_organisation
from factories.patients import make_patient
from laboratory.sending import register_lab


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock)


@pytest.fixture
def lab(session: Session, clock: FrozenClock) -> Organisation:
    return make_organisation(session, clock)


@pytest.fixture
def feed(session: Session, clock: FrozenClock, lab: Organisation) -> FeedingSystem:
    return register_lab(session, clock, lab, "Central Lab")
