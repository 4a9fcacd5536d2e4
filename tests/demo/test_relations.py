"""The demo's professionals have patients: treating doctors, grants, care contacts and an
emergency access in a history, so both portals show a living system on first run (issue 21)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, func, select

from carnet.access.models import CareContact, EmergencyAccess, Grant, TreatingDoctor
from carnet.clock import FrozenClock
from carnet.db import session_factory
from carnet.demo.loader import load_demo
from carnet.demo.population import DEMO_NOW, build_population
from carnet.demo.relations import featured_patient, featured_professional, plan_relations
from carnet.directory.models import Profession
from carnet.storage.filesystem import FilesystemDocumentStore

SEED = 20261123


def test_the_featured_gp_treats_patients_and_the_featured_patient_has_every_relation() -> None:
    population = build_population(SEED)
    plans = plan_relations(population, SEED)
    gp = featured_professional(population, Profession.GENERAL_PRACTITIONER)
    patient = featured_patient(population)
    assert gp is not None
    assert patient is not None
    assert sum(plan.treating_doctor == gp.value for plan in plans.values()) >= 10
    featured = plans[patient.identifiers[0][1]]
    assert featured.treating_doctor == gp.value
    assert featured.grants
    assert featured.care_contacts
    assert featured.emergency_by is not None
    assert plan_relations(population, SEED) == plans


def test_the_load_records_the_relations_through_the_services(
    committing_engine: Engine, store: FilesystemDocumentStore
) -> None:
    sessions = session_factory(committing_engine)
    loaded_at = DEMO_NOW + dt.timedelta(days=30)
    load_demo(
        sessions,
        store,
        seed=SEED,
        patients_count=20,
        documents_count=40,
        care_clock=FrozenClock(loaded_at),
    )
    with sessions() as session:

        def count(model: type) -> int:
            return (
                session.scalar(select(func.count()).select_from(model)) or 0
            )  # patient-data: counting what the demo wrote

        assert count(TreatingDoctor) >= 5
        assert count(Grant) >= 1
        assert count(EmergencyAccess) >= 1
        contacts = list(session.scalars(select(CareContact)))  # patient-data: the demo's own
        assert contacts
        assert all(c.window_ends_at > loaded_at for c in contacts)
