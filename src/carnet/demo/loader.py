"""Load the demo population through the domain services, idempotently.

One transaction for the directory, then one per patient (the patient, all their documents and
their essential data): an interrupted load leaves whole patients, and the next run completes
the rest.
"""

from __future__ import annotations

import random  # synthetic document content, not secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.scopes import parse_scope
from carnet.clock import Clock, FrozenClock, SystemClock
from carnet.db import unit_of_work
from carnet.demo.accounts import provision_demo_accounts
from carnet.demo.documents.catalogue import render
from carnet.demo.documents.model import DocumentContext
from carnet.demo.essentials import FactPlan
from carnet.demo.population import (
    DEMO_NOW,
    ORGANISATIONS,
    PatientSpec,
    Population,
    build_population,
)
from carnet.demo.relations import Relations, apply_relations, plan_relations
from carnet.directory import service as directory
from carnet.directory.service import LU_ORGANISATION
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata, SubmissionSetMetadata
from carnet.documents.models import Document
from carnet.essentials import service as essentials
from carnet.essentials.models import EssentialFact
from carnet.patients import service as patients
from carnet.storage import DocumentStore, KeyWrapper


@dataclass
class DemoReport:
    """What a demo load created and what it found already there."""

    organisations_created: int = 0
    professionals_created: int = 0
    patients_created: int = 0
    patients_existing: int = 0
    documents_created: int = 0
    documents_existing: int = 0
    accounts_created: int = 0
    facts_created: int = 0
    facts_existing: int = 0

    def summary(self) -> str:
        """One line for the operator."""
        if not (
            self.organisations_created
            or self.professionals_created
            or self.patients_created
            or self.documents_created
            or self.accounts_created
            or self.facts_created
        ):
            return (
                f"Demo population already loaded ({self.patients_existing} patients, "
                f"{self.documents_existing} documents, {self.facts_existing} essential facts); "
                "nothing changed."
            )
        return (
            f"Demo population loaded: {self.organisations_created} organisations, "
            f"{self.professionals_created} professionals, {self.patients_created} patients, "
            f"{self.documents_created} documents, {self.facts_created} essential facts, "
            f"{self.accounts_created} demo accounts created "
            f"({self.patients_existing} patients, {self.documents_existing} documents and "
            f"{self.facts_existing} essential facts were already there)."
        )


def load_demo(
    sessions: sessionmaker[Session],
    store: DocumentStore,
    *,
    seed: int,
    key_wrapper: KeyWrapper | None = None,
    patients_count: int = 200,
    documents_count: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    care_clock: Clock | None = None,
) -> DemoReport:
    """Load the deterministic demo population for ``seed``; a second run changes nothing.

    With ``key_wrapper``, every demo person also gets the documented demo credentials (password,
    one-time codes, professional card) to sign in on the demo identity provider. ``progress``
    is told (patients done, patients in all) after each patient. A new patient's relations
    with professionals (``demo.relations``) are recorded with them; their care contacts are
    dated by ``care_clock`` (the system's clock by default) so they are open on first use.
    """
    population = build_population(seed, patients=patients_count, documents=documents_count)
    clock = FrozenClock(DEMO_NOW)
    relations = plan_relations(population, seed)
    report = DemoReport()
    with unit_of_work(sessions) as session:
        loaded = _load_directory(session, population, clock, report)
    total = len(population.patients)
    for done, spec in enumerate(population.patients, start=1):
        with unit_of_work(sessions) as session:
            _load_patient(
                session,
                store,
                spec,
                directory_ids=loaded,
                clock=clock,
                report=report,
                relations=_Relating(relations, care_clock or SystemClock()),
            )
        if progress is not None:
            progress(done, total)
    if key_wrapper is not None:
        with unit_of_work(sessions) as session:
            report.accounts_created = provision_demo_accounts(
                session, key_wrapper=key_wrapper, clock=clock
            )
    return report


@dataclass(frozen=True)
class _Relating:
    plans: dict[str, Relations]
    care_clock: Clock


@dataclass(frozen=True)
class _LoadedDirectory:
    organisation_ids: dict[str, uuid.UUID]
    professional_ids: dict[str, uuid.UUID]


def _load_directory(
    session: Session, population: Population, clock: FrozenClock, report: DemoReport
) -> _LoadedDirectory:
    organisation_ids: dict[str, uuid.UUID] = {}
    for org in population.organisations:
        found = directory.find_organisation(session, LU_ORGANISATION, org.code)
        if found is None:
            found = directory.register_organisation(
                session,
                identifier_system=LU_ORGANISATION,
                identifier_value=org.code,
                name=org.name,
                kind=org.kind,
                city=org.city,
                clock=clock,
            )
            report.organisations_created += 1
        organisation_ids[org.code] = found.id
    professional_ids: dict[str, uuid.UUID] = {}
    for spec in population.professionals:
        professional = directory.find_professional(session, spec.system, spec.value)
        if professional is None:
            professional = directory.register_professional(
                session,
                identifier_system=spec.system,
                identifier_value=spec.value,
                family=spec.family,
                given=spec.given,
                profession=spec.profession,
                specialty=spec.specialty,
                organisation_id=organisation_ids[spec.organisation] if spec.organisation else None,
                clock=clock,
            )
            report.professionals_created += 1
        professional_ids[spec.value] = professional.id
    return _LoadedDirectory(organisation_ids, professional_ids)


def _load_patient(
    session: Session,
    store: DocumentStore,
    spec: PatientSpec,
    *,
    directory_ids: _LoadedDirectory,
    clock: FrozenClock,
    report: DemoReport,
    relations: _Relating,
) -> None:
    system, value = spec.identifiers[0]
    patient = patients.find_patient(session, system, value)
    created = patient is None
    if patient is None:
        patient = patients.create_dossier(
            session,
            identifiers_=spec.identifiers,
            demographics=patients.Demographics(
                family=spec.family,
                given=spec.given,
                birth_date=spec.birth_date,
                sex=spec.sex,
                language=spec.language,
                city=spec.city,
                country=spec.country,
                email=_email(spec),
            ),
            state=spec.state,
            clock=clock,
        )
        report.patients_created += 1
    else:
        report.patients_existing += 1
    planned = relations.plans.get(value)
    if created and planned is not None:
        # With the patient, in the same transaction: a reload finds both or neither.
        apply_relations(
            session,
            patient.id,
            planned,
            directory_ids.professional_ids,
            clock=clock,
            care_clock=relations.care_clock,
        )
    existing = set(  # patient-data: a reload skips the demo's own documents already there
        session.scalars(select(Document.master_identifier).where(Document.patient_id == patient.id))
    )
    national_id = spec.identifiers[0][1]
    for plan in spec.documents:
        if plan.master_identifier in existing:
            report.documents_existing += 1
            continue
        organisation_id = (
            directory_ids.organisation_ids[plan.organisation] if plan.organisation else None
        )
        author_id = directory_ids.professional_ids[plan.author.value] if plan.author else None
        title = plan.type.labels.in_language(spec.language)
        context = DocumentContext(
            type_key=plan.type.key,
            title=title,
            language=spec.language,
            patient_family=spec.family,
            patient_given=spec.given,
            patient_birth_date=spec.birth_date,
            patient_sex=spec.sex.value,
            patient_identifier=national_id,
            author_name=f"Dr {plan.author.given} {plan.author.family}" if plan.author else None,
            organisation_name=_organisation_name(plan.organisation),
            created_at=plan.created_at,
            document_id=plan.master_identifier,
        )
        content = render(context, plan.mime_type, random.Random(plan.seed))  # noqa: S311
        dossier = open_dossier(
            session,
            _publisher(session, patient.id, author_id, organisation_id),
            patient.id,
            purposes.PUBLISH_DOCUMENTS,
            clock=clock,
        )
        publication.submit(
            session,
            dossier,
            store,
            submission_set=SubmissionSetMetadata(
                source_id=f"urn:carnet:demo:{plan.organisation or 'patient'}",
                author_professional_id=author_id,
                author_organisation_id=organisation_id,
            ),
            documents=[
                (
                    DocumentMetadata(
                        type_system=plan.type.system,
                        type_code=plan.type.code,
                        title=title,
                        mime_type=plan.mime_type,
                        created_at=plan.created_at,
                        author_professional_id=author_id,
                        author_organisation_id=organisation_id,
                        authored_by_patient=plan.type.key == "patient-provided",
                        custodian_organisation_id=organisation_id,
                        master_identifier=plan.master_identifier,
                        language=spec.language,
                        confidentiality=plan.confidentiality,
                        masked_from_professionals=plan.masked,
                        hidden_from_patient=plan.hidden,
                        source_system="urn:carnet:demo",
                    ),
                    content,
                )
            ],
        )
        report.documents_created += 1
    _load_essentials(
        session, spec, patient.id, directory_ids=directory_ids, clock=clock, report=report
    )


def _load_essentials(
    session: Session,
    spec: PatientSpec,
    patient_id: uuid.UUID,
    *,
    directory_ids: _LoadedDirectory,
    clock: FrozenClock,
    report: DemoReport,
) -> None:
    """Record the patient's essential facts, each by its author, unless they are there."""
    if not spec.essentials:
        return
    # Facts have no identifier of their own to match: a dossier has the demo's facts or none,
    # since they are recorded in the same transaction as the patient.
    already = session.scalar(  # patient-data: the demo's own facts, recorded or not yet
        select(EssentialFact.id).where(EssentialFact.patient_id == patient_id).limit(1)
    )
    if already is not None:
        report.facts_existing += len(spec.essentials)
        return
    # One call per author: the policy is asked once for all that author's facts.
    by_author: dict[str | None, list[FactPlan]] = {}
    for plan in spec.essentials:
        by_author.setdefault(plan.author.value if plan.author else None, []).append(plan)
    for plans in by_author.values():
        recorded = essentials.record_facts(
            session,
            open_dossier(
                session,
                _recorder(session, patient_id, plans[0], directory_ids),
                patient_id,
                purposes.RECORD_ESSENTIALS,
                clock=clock,
            ),
            [essentials.NewFact(plan.category, plan.text, dict(plan.details)) for plan in plans],
        )
        report.facts_created += len(recorded)


# The demo publishes through the front door: each document is published by the actor who would
# publish it in life — its author, its organisation's feeding system, or the patient.
_PUBLISHER_SCOPES = frozenset({parse_scope("user/DocumentReference.c")})


def _publisher(
    session: Session,
    patient_id: uuid.UUID,
    author_id: uuid.UUID | None,
    organisation_id: uuid.UUID | None,
) -> Actor:
    if author_id is not None:
        author = directory.get_professional(session, author_id)
        return Actor(
            kind=ActorKind.PROFESSIONAL,
            subject=f"Practitioner/{author_id}",
            assurance=Assurance.HIGH,
            scopes=_PUBLISHER_SCOPES,
            professional_id=author_id,
            organisation_id=author.organisation_id,
            profession=author.profession.value,
        )
    if organisation_id is not None:
        return Actor(
            kind=ActorKind.FEEDING_SYSTEM,
            subject=f"Organization/{organisation_id}",
            assurance=Assurance.HIGH,
            scopes=frozenset({parse_scope("system/DocumentReference.c")}),
            organisation_id=organisation_id,
        )
    return Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient_id}",
        assurance=Assurance.HIGH,
        scopes=_PUBLISHER_SCOPES,
        person_id=patient_id,
        acting_for=patient_id,
    )


# Essential facts are recorded by their author too, with the scopes that creating them needs.
_RECORDER_SCOPES = frozenset({parse_scope("user/*.c")})


def _recorder(
    session: Session, patient_id: uuid.UUID, plan: FactPlan, directory_ids: _LoadedDirectory
) -> Actor:
    author_id = directory_ids.professional_ids[plan.author.value] if plan.author else None
    actor = _publisher(session, patient_id, author_id, None)
    return replace(actor, scopes=_RECORDER_SCOPES)


def _email(spec: PatientSpec) -> str:
    ascii_name = f"{spec.given}.{spec.family}".lower().encode("ascii", "ignore").decode()
    return f"{ascii_name.replace(' ', '')}@example.lu"


def _organisation_name(code: str | None) -> str | None:
    return next((org.name for org in ORGANISATIONS if org.code == code), None)
