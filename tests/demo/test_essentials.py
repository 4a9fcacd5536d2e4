"""The demo patients' essential data: plausible, deterministic, recorded through the service."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import replace

import pytest
from sqlalchemy import Engine, func, select

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.scopes import parse_scopes
from carnet.clock import FrozenClock
from carnet.db import session_factory
from carnet.demo import population as population_module
from carnet.demo.loader import load_demo
from carnet.demo.population import DEMO_NOW, build_population
from carnet.essentials import service as essentials
from carnet.essentials.models import Category, EssentialFact
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore

SEED = 20261123


def _age(birth_date: dt.date) -> int:
    return (DEMO_NOW.date() - birth_date).days // 365


class TestPlans:
    def test_most_patients_have_a_blood_group_and_some_the_rest(self) -> None:
        active = [p for p in build_population(SEED).patients if p.state is DossierState.ACTIVE]
        having = Counter(
            category for p in active for category in {f.category for f in p.essentials}
        )
        assert having[Category.BLOOD_GROUP] >= 0.7 * len(active)
        assert 0.2 * len(active) <= having[Category.ALLERGY] <= 0.6 * len(active)
        assert having[Category.TREATMENT] > 0
        assert having[Category.VACCINATION] > 0.4 * len(active)
        assert having[Category.EMERGENCY_CONTACT] > 0.3 * len(active)
        assert having[Category.ADVANCE_DIRECTIVE] > 0
        for patient in active:
            assert [f.category for f in patient.essentials].count(Category.BLOOD_GROUP) <= 1

    def test_directives_are_for_the_elderly_and_childrens_facts_for_professionals(self) -> None:
        for patient in build_population(SEED).patients:
            for fact in patient.essentials:
                if fact.category is Category.ADVANCE_DIRECTIVE:
                    assert _age(patient.birth_date) >= 70
                if _age(patient.birth_date) < 18:
                    assert fact.author is not None

    def test_only_active_dossiers_get_essential_data(self) -> None:
        for patient in build_population(SEED).patients:
            if patient.state is not DossierState.ACTIVE:
                assert patient.essentials == ()

    def test_the_same_seed_gives_the_same_facts(self) -> None:
        first = [p.essentials for p in build_population(SEED, patients=30, documents=60).patients]
        again = [p.essentials for p in build_population(SEED, patients=30, documents=60).patients]
        assert first == again
        other = [
            p.essentials for p in build_population(SEED + 1, patients=30, documents=60).patients
        ]
        assert first != other

    def test_drawing_them_leaves_the_rest_of_the_population_as_it_was(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with_facts = build_population(SEED)
        monkeypatch.setattr(population_module, "draw_essentials", lambda *_a, **_k: ())
        without = build_population(SEED)
        assert [replace(p, essentials=()) for p in with_facts.patients] == list(without.patients)
        assert with_facts.professionals == without.professionals


def _reader(patient_id: uuid.UUID) -> Actor:
    return Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient_id}",
        assurance=Assurance.SUBSTANTIAL,
        scopes=parse_scopes("patient/*.rs")[0],
        person_id=patient_id,
        acting_for=patient_id,
    )


def test_the_demo_records_essential_data_once(
    committing_engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock
) -> None:
    sessions = session_factory(committing_engine)
    population = build_population(SEED, patients=20, documents=40)
    planned = sum(len(p.essentials) for p in population.patients)
    first = load_demo(sessions, store, seed=SEED, patients_count=20, documents_count=40)
    assert first.facts_created == planned > 0
    assert "essential facts" in first.summary()
    second = load_demo(sessions, store, seed=SEED, patients_count=20, documents_count=40)
    assert (second.facts_created, second.facts_existing) == (0, planned)
    assert "nothing changed" in second.summary()
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(EssentialFact)) == planned
        authors = Counter(session.scalars(select(EssentialFact.recorded_by_kind)))
        assert set(authors) == {"patient", "professional"}
        shown = 0
        for patient_id in session.scalars(select(Patient.id)):
            spec_facts = session.scalar(
                select(func.count()).where(
                    EssentialFact.patient_id == patient_id, EssentialFact.withdrawn_at.is_(None)
                )
            )
            if not spec_facts:
                continue
            read = essentials.read_essentials(
                session,
                open_dossier(
                    session, _reader(patient_id), patient_id, purposes.READ_ESSENTIALS, clock=clock
                ),
            )
            assert len(read.facts) == spec_facts
            shown += len(read.facts)
        assert shown == planned
