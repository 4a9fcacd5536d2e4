"""The demo population: its shape, its determinism, and a load that is idempotent."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter

import pytest
from sqlalchemy import Engine, func, select

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.scopes import parse_scopes
from carnet.clock import FrozenClock
from carnet.db import session_factory
from carnet.demo.loader import load_demo
from carnet.demo.population import build_population
from carnet.directory.models import Organisation, Professional
from carnet.documents import reading
from carnet.documents.models import Document, SubmissionSet
from carnet.patients import identifiers
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper

SEED = 20261123


class TestPopulation:
    def test_has_the_promised_size(self) -> None:
        population = build_population(SEED)
        assert len(population.patients) == 200
        assert len(population.professionals) == 50
        assert len(population.organisations) == 10
        assert sum(len(p.documents) for p in population.patients) == 2000

    def test_document_mix_follows_luxembourg(self) -> None:
        population = build_population(SEED)
        mix = Counter(d.type.key for p in population.patients for d in p.documents)
        assert 0.77 <= mix["lab-report"] / 2000 <= 0.85
        assert 0.06 <= mix["patient-summary"] / 2000 <= 0.12
        assert 0.03 <= mix["insurer-summary"] / 2000 <= 0.09
        assert len(mix) >= 10

    def test_every_identifier_is_valid_and_unique(self) -> None:
        population = build_population(SEED)
        seen = set()
        for patient in population.patients:
            for system, value in patient.identifiers:
                assert identifiers.validate(system, value).value == value
                assert (system, value) not in seen
                seen.add((system, value))
        systems = {system for p in population.patients for system, _ in p.identifiers}
        assert systems == {identifiers.LU_MATRICULE, identifiers.FR_NIR}

    def test_professions_are_all_represented(self) -> None:
        professions = {p.profession for p in build_population(SEED).professionals}
        assert len(professions) == 9

    def test_only_active_dossiers_get_documents(self) -> None:
        population = build_population(SEED)
        states = Counter(p.state for p in population.patients)
        assert states[DossierState.ACTIVE] > 180
        assert states[DossierState.INVITED] > 0
        for patient in population.patients:
            if patient.state is not DossierState.ACTIVE:
                assert patient.documents == ()

    def test_is_deterministic(self) -> None:
        assert build_population(SEED) == build_population(SEED)
        assert build_population(SEED) != build_population(SEED + 1)


def _counts(engine: Engine) -> dict[str, int]:
    with session_factory(engine)() as session:
        return {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Organisation, Professional, Patient, Document, SubmissionSet)
        }


@pytest.mark.parametrize("scale", [(20, 80)])
def test_load_twice_changes_nothing(
    committing_engine: Engine, store: FilesystemDocumentStore, scale: tuple[int, int]
) -> None:
    patients, docs = scale
    sessions = session_factory(committing_engine)
    first = load_demo(sessions, store, seed=SEED, patients_count=patients, documents_count=docs)
    assert first.patients_created == patients
    assert first.documents_created == docs
    assert "loaded" in first.summary()
    before = _counts(committing_engine)
    assert before == {
        "organisations": 10,
        "professionals": 50,
        "patients": patients,
        "documents": docs,
        "submission_sets": docs,
    }
    files = sorted(store.root.rglob("*"))

    second = load_demo(sessions, store, seed=SEED, patients_count=patients, documents_count=docs)
    assert second.documents_created == second.patients_created == 0
    assert second.documents_existing == docs
    assert "nothing changed" in second.summary()
    assert _counts(committing_engine) == before
    assert sorted(store.root.rglob("*")) == files


def _reader(patient_id: uuid.UUID) -> Actor:
    return Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient_id}",
        assurance=Assurance.SUBSTANTIAL,
        scopes=parse_scopes("patient/*.rs")[0],
        person_id=patient_id,
        acting_for=patient_id,
    )


def test_loaded_documents_are_readable_and_intact(
    committing_engine: Engine, store: FilesystemDocumentStore, clock: FrozenClock
) -> None:
    sessions = session_factory(committing_engine)
    load_demo(sessions, store, seed=SEED, patients_count=10, documents_count=40)
    with sessions() as session:
        rows = list(session.scalars(select(Document)))
        assert {row.mime_type for row in rows} >= {"application/pdf"}
        for row in rows:
            if row.hidden_from_patient:
                continue  # held back until its author discloses it
            _, content = reading.read_content(
                session,
                open_dossier(
                    session,
                    _reader(row.patient_id),
                    row.patient_id,
                    purposes.RETRIEVE_DOCUMENTS,
                    clock=clock,
                ),
                row.id,
                store,
            )
            assert hashlib.sha256(content).hexdigest() == row.sha256
            if row.mime_type == "application/pdf":
                assert content.startswith(b"%PDF-")


def test_demo_accounts_are_provisioned_once(
    committing_engine: Engine, store: FilesystemDocumentStore, master_key: bytes
) -> None:
    sessions = session_factory(committing_engine)
    wrapper = MasterKeyWrapper(master_key, "test")
    first = load_demo(
        sessions, store, seed=SEED, key_wrapper=wrapper, patients_count=5, documents_count=10
    )
    assert first.accounts_created == 5 + 50 + 1  # patients, professionals, the agency operator
    second = load_demo(
        sessions, store, seed=SEED, key_wrapper=wrapper, patients_count=5, documents_count=10
    )
    assert second.accounts_created == 0
    assert "nothing changed" in second.summary()
