"""A synthetic national population, loaded into PostgreSQL through Carnet's own bulk paths.

- The directory (organisations, professionals) through ``directory.service``.
- Patients through the registry enrolment (``lifecycle.enrolment.enrol_rows``: the operator's
  batches, every new dossier's audit chain started), 2,000 rows per transaction. Enrolment makes
  *invited* dossiers; the harness then opens them with one UPDATE per batch — the one step not
  taken through a service (the opening job, one transition, audit event and notice per dossier,
  would take longer than everything else at a million dossiers). Their opening is therefore not
  in their history or their chain.
- Documents through ``documents.bulk.load_documents`` (COPY), in transactions of ``batch``
  documents, with the catalogue's type mix (``demo_share``), each type written by the kind of
  professional or organisation that writes it, dates over the last ten years (never before
  birth), 3 % restricted, 1 % secret, 1 % masked, a fifth of imaging reports hidden until
  disclosed. The number of documents per patient grows with age, exponentially spread.
- Content: every document points at its own dossier's object for its format (see
  ``content.py``). Objects are written (encrypted, fsynced) for the *reachable* patients only —
  those the load generator reads; the other dossiers' rows name objects never written, which
  keeps a 10-million-document run on an ordinary disk. Nothing reads them.
- Reachable patients each grant one of the ``readers`` (general practitioners the load generator
  signs in as) an extended access, through ``access.rules.grant_access``, acting as the
  patient: the policy then lets that doctor find, read and retrieve their documents.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bench.national.content import PDF, Templates
from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.access.rules import grant_access
from carnet.access.scopes import parse_scopes
from carnet.catalogue import load_catalogue
from carnet.db import unit_of_work
from carnet.directory import service as directory
from carnet.directory.models import OrganisationKind, Profession, Professional
from carnet.documents import bulk
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality
from carnet.lifecycle.enrolment import RegistryRow, enrol_rows
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.models import Dossier, DossierState, PatientIdentifier, Sex
from carnet.platform import Platform
from carnet.storage import StoredContent

OPERATOR = Actor(kind=ActorKind.OPERATOR, subject="operator:bench", assurance=Assurance.HIGH)
ENROL_BATCH = 2000
_BORN_FROM, _BORN_DAYS = dt.date(1925, 1, 1), 36_500
_HISTORY = dt.timedelta(days=3650)
_FAMILIES = (
    "Schmit", "Muller", "Weber", "Wagner", "Hoffmann", "Thill", "Schmitz", "Klein", "Kremer",
    "Reuter", "Meyer", "Schneider", "Becker", "Faber", "Welter", "Majerus", "Steffen", "Hansen",
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Da Silva", "Pereira", "Ferreira", "Rossi", "Kieffer", "Reding",
)  # fmt: skip
_GIVENS = {
    Sex.FEMALE: ("Léa", "Anne", "Sofia", "Inês", "Mia", "Claire", "Marie", "Emma", "Julie", "Lara"),
    Sex.MALE: ("Luc", "Marc", "Tom", "Jean", "Paul", "Noah", "Lucas", "João", "Max", "Gilles"),
}
_CITIES = (
    ("1111", "Luxembourg"), ("4011", "Esch-sur-Alzette"), ("4501", "Differdange"),
    ("3401", "Dudelange"), ("9001", "Ettelbruck"), ("9201", "Diekirch"), ("7501", "Mersch"),
    ("9501", "Wiltz"), ("6401", "Echternach"), ("5501", "Remich"),
)  # fmt: skip
_LANGUAGES = ("fr", "de", "en", "lb", "pt")
_LANGUAGE_WEIGHTS = (40, 25, 10, 15, 10)
_SPECIALTIES = (
    "cardiology", "radiology", "internal-medicine", "general-surgery", "paediatrics",
    "gynaecology", "dermatology", "ophthalmology", "psychiatry",
)  # fmt: skip
# Share of the workforce, and the kind of organisation each works for (None: independent).
_WORKFORCE: tuple[tuple[Profession, float, OrganisationKind | None], ...] = (
    (Profession.GENERAL_PRACTITIONER, 0.28, OrganisationKind.PRACTICE),
    (Profession.SPECIALIST, 0.30, OrganisationKind.HOSPITAL),
    (Profession.NURSE, 0.14, OrganisationKind.HOME_CARE),
    (Profession.PHARMACIST, 0.08, OrganisationKind.PHARMACY),
    (Profession.BIOLOGIST, 0.06, OrganisationKind.LABORATORY),
    (Profession.DENTIST, 0.05, None),
    (Profession.EMERGENCY_PHYSICIAN, 0.05, OrganisationKind.HOSPITAL),
    (Profession.MIDWIFE, 0.02, None),
    (Profession.PHYSIOTHERAPIST, 0.02, None),
)
# Who writes each type: a profession (and specialty), the insurer, or the patient.
_AUTHORS: dict[str, tuple[Profession | None, str | None]] = {
    "lab-report": (Profession.BIOLOGIST, None),
    "imaging-report": (Profession.SPECIALIST, "radiology"),
    "discharge-summary": (Profession.SPECIALIST, "internal-medicine"),
    "operative-report": (Profession.SPECIALIST, "general-surgery"),
    "consultation-note": (Profession.SPECIALIST, None),
    "emergency-visit-summary": (Profession.EMERGENCY_PHYSICIAN, None),
    "nursing-note": (Profession.NURSE, None),
    "emergency-liaison-file": (Profession.NURSE, None),
    "dental-report": (Profession.DENTIST, None),
    "insurer-summary": (None, "insurer"),
    "patient-provided": (None, "patient"),
}
_ORGANISATIONS_PER: dict[OrganisationKind, tuple[int, int]] = {
    # kind: (at least, one more per this many patients)
    OrganisationKind.LABORATORY: (2, 100_000),
    OrganisationKind.HOSPITAL: (2, 50_000),
    OrganisationKind.PRACTICE: (3, 20_000),
    OrganisationKind.PHARMACY: (2, 10_000),
    OrganisationKind.HOME_CARE: (1, 100_000),
    OrganisationKind.INSURER: (1, 10**12),
}


@dataclass(frozen=True)
class Scale:
    """How big a population to make."""

    patients: int
    documents: int
    readers: int = 20
    reachable: int = 10_000
    batch: int = 10_000
    seed: int = 20261123


@dataclass
class Target:
    """A reachable patient: whom they granted, and which of their documents that doctor sees."""

    patient_id: uuid.UUID
    matricule: str
    reader: int
    visible: list[uuid.UUID] = field(default_factory=list)
    pdfs: list[uuid.UUID] = field(default_factory=list)


@dataclass
class Population:
    """What the load generator needs, and what making it cost."""

    readers: list[str]  # the general practitioners' identifiers
    feeder: str  # the laboratory whose system publishes
    targets: list[Target]
    figures: dict[str, Any]


@dataclass
class _Author:
    professional_id: uuid.UUID | None
    organisation_id: uuid.UUID | None
    organisation_code: str | None
    setting: str


@dataclass
class _Directory:
    readers: list[str]
    feeder: str
    by_type: dict[str, list[_Author]]
    general: list[_Author]  # general practitioners, for every other type
    counts: dict[str, int]


def build(platform: Platform, scale: Scale, templates: Templates) -> Population:
    """Make the whole population; timings and rates in ``figures``."""
    figures: dict[str, Any] = {"patients": scale.patients, "documents_planned": scale.documents}
    started = time.perf_counter()
    found = _directory(platform, scale)
    figures["directory"] = found.counts | {"seconds": _since(started)}

    started = time.perf_counter()
    patient_ids, births, languages = _enrol(platform, scale)
    elapsed = time.perf_counter() - started
    figures["enrolment"] = {
        "seconds": round(elapsed, 1),
        "patients_per_second": round(scale.patients / elapsed),
    }

    step = max(1, scale.patients // max(1, scale.reachable))
    targets: dict[int, Target] = {}
    for number, index in enumerate(range(0, scale.patients, step)):
        if number >= scale.reachable:
            break
        born = births[index]
        targets[index] = Target(
            patient_id=patient_ids[index],
            matricule=_matricule(index, born),
            reader=number % scale.readers,
        )
    people = _People(ids=patient_ids, births=births, languages=languages)
    figures["documents"] = _DocumentLoader(platform, scale, found, templates).run(people, targets)

    started = time.perf_counter()
    _grants(platform, found.readers, list(targets.values()))
    figures["grants"] = {"count": len(targets), "seconds": _since(started)}
    return Population(
        readers=found.readers, feeder=found.feeder, targets=list(targets.values()), figures=figures
    )


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _matricule(index: int, born: dt.date) -> str:
    return identifiers.lu_matricule(born, index // _BORN_DAYS)


_Places = dict[OrganisationKind, list[tuple[uuid.UUID, str]]]
_Staff = list[tuple[Profession, str | None, _Author]]


def _directory(platform: Platform, scale: Scale) -> _Directory:
    with unit_of_work(platform.sessions) as session:
        places = _organisations(session, platform, scale)
        readers, staff = _staff(session, platform, scale, places)
    insurer_id, insurer_code = places[OrganisationKind.INSURER][0]
    by_type: dict[str, list[_Author]] = {}
    for key, (writer, who) in _AUTHORS.items():
        if who == "insurer":
            by_type[key] = [_Author(None, insurer_id, insurer_code, "insurance")]
        elif who == "patient":
            by_type[key] = [_Author(None, None, None, "patient")]
        else:
            by_type[key] = [
                author
                for profession, specialty, author in staff
                if profession is writer and (who is None or specialty == who)
            ]
    return _Directory(
        readers=readers,
        feeder=places[OrganisationKind.LABORATORY][0][1],
        by_type=by_type,
        general=[a for p, _, a in staff if p is Profession.GENERAL_PRACTITIONER],
        counts={
            "organisations": sum(len(found) for found in places.values()),
            "professionals": len(staff),
        },
    )


def _organisations(session: Session, platform: Platform, scale: Scale) -> _Places:
    places: _Places = {}
    for kind, (least, per) in _ORGANISATIONS_PER.items():
        for number in range(max(least, scale.patients // per)):
            code = f"B{kind.value[:4].upper()}-{number + 1:04d}"
            organisation = directory.register_organisation(
                session,
                identifier_system=directory.LU_ORGANISATION,
                identifier_value=code,
                name=f"{kind.value.title()} {number + 1} (bench)",
                kind=kind,
                city=_CITIES[number % len(_CITIES)][1],
                clock=platform.clock,
            )
            places.setdefault(kind, []).append((organisation.id, code))
    return places


def _staff(
    session: Session, platform: Platform, scale: Scale, places: _Places
) -> tuple[list[str], _Staff]:
    """The readers (general practitioners the load signs in as), then the workforce."""
    staff: _Staff = []
    readers = []
    practices = places[OrganisationKind.PRACTICE]
    for reader in range(scale.readers):
        identifier = f"BENCHGP{reader + 1:04d}"
        practice_id, practice_code = practices[reader % len(practices)]
        gp = _register(
            session,
            platform,
            identifier,
            profession=Profession.GENERAL_PRACTITIONER,
            specialty=None,
            organisation_id=practice_id,
        )
        readers.append(identifier)
        author = _Author(gp.id, practice_id, practice_code, "general-medicine")
        staff.append((Profession.GENERAL_PRACTITIONER, None, author))
    total = max(60, scale.patients // 250)
    serial = itertools.count(1)
    for profession, share, works_for in _WORKFORCE:
        employers = places.get(works_for, []) if works_for is not None else []
        for number in range(max(2, round(total * share))):
            specialty = (
                _SPECIALTIES[number % len(_SPECIALTIES)]
                if profession is Profession.SPECIALIST
                else None
            )
            employer: tuple[uuid.UUID | None, str | None] = (
                employers[number % len(employers)] if employers else (None, None)
            )
            person = _register(
                session,
                platform,
                f"LU{next(serial):06d}",
                profession=profession,
                specialty=specialty,
                organisation_id=employer[0],
            )
            author = _Author(person.id, employer[0], employer[1], specialty or profession.value)
            staff.append((profession, specialty, author))
    return readers, staff


def _register(
    session: Session,
    platform: Platform,
    identifier: str,
    *,
    profession: Profession,
    specialty: str | None,
    organisation_id: uuid.UUID | None,
) -> Professional:
    number = sum(ord(c) for c in identifier)
    sex = (Sex.FEMALE, Sex.MALE)[number % 2]
    return directory.register_professional(
        session,
        identifier_system=directory.LU_PROFESSIONAL,
        identifier_value=identifier,
        family=_FAMILIES[number % len(_FAMILIES)],
        given=_GIVENS[sex][number % len(_GIVENS[sex])],
        profession=profession,
        specialty=specialty,
        organisation_id=organisation_id,
        clock=platform.clock,
    )


def _enrol(platform: Platform, scale: Scale) -> tuple[list[uuid.UUID], list[dt.date], bytes]:
    """Enrol everyone through the registry path; open their dossiers. Ids, births, languages."""
    clock = platform.clock
    ids: list[uuid.UUID] = []
    births: list[dt.date] = []
    languages = bytearray()
    language_rng = random.Random(scale.seed + 1)  # noqa: S311 — synthetic data
    drawn = language_rng.choices(range(len(_LANGUAGES)), _LANGUAGE_WEIGHTS, k=scale.patients)
    analysed_at = 0
    for start in range(0, scale.patients, ENROL_BATCH):
        rows = []
        for index in range(start, min(scale.patients, start + ENROL_BATCH)):
            row, born = _registry_row(index, _LANGUAGES[drawn[index]])
            rows.append(row)
            births.append(born)
            languages.append(drawn[index])
        with unit_of_work(platform.sessions) as session:
            result = enrol_rows(
                session, OPERATOR, rows, clock=clock, opening_delay=dt.timedelta(days=30)
            )
            if result.report.created != len(rows):
                raise RuntimeError(f"enrolment refused rows: {result.problems[:3]}")
            batch_ids = _ids_of(session, [row.entry.value for row in rows])
            now = clock.now()
            session.execute(
                update(Dossier)
                .where(Dossier.patient_id.in_(batch_ids))
                .values(
                    state=DossierState.ACTIVE,
                    state_changed_at=now,
                    opened_at=now,
                    opening_deadline=None,
                )
            )
            ids.extend(batch_ids)
        # As ``carnet enrol`` does: fresh planner statistics each time the tables double.
        if len(ids) > 2 * analysed_at:
            with unit_of_work(platform.sessions) as session:
                patients.refresh_statistics(session)
            analysed_at = len(ids)
    return ids, births, bytes(languages)


def _registry_row(index: int, language: str) -> tuple[RegistryRow, dt.date]:
    # The serial keeps (birth date, serial) unique: index // days, with day = index % days.
    born = _BORN_FROM + dt.timedelta(days=index % _BORN_DAYS)
    sex = (Sex.FEMALE, Sex.MALE)[index % 2]
    family = _FAMILIES[(index * 31) % len(_FAMILIES)]
    given = _GIVENS[sex][(index // 2) % len(_GIVENS[sex])]
    postal_code, city = _CITIES[index % len(_CITIES)]
    demographics = patients.Demographics(
        family=family,
        given=given,
        birth_date=born,
        sex=sex,
        language=language,
        email=f"{given}.{family}.{index}@example.lu".lower().replace(" ", ""),
        address_line=f"{index % 180 + 1}, rue de la Gare",
        postal_code=postal_code,
        city=city,
        country="LU",
        insured_since=max(born, dt.date(1995, 1, 1)),
    )
    entry = patients.RegistryEntry(
        system=identifiers.LU_MATRICULE, value=_matricule(index, born), demographics=demographics
    )
    return RegistryRow(line=index + 2, entry=entry), born


def _ids_of(session: Session, values: Sequence[str]) -> list[uuid.UUID]:
    found: dict[str, uuid.UUID] = {}
    for start in range(0, len(values), 500):
        rows = session.execute(
            select(PatientIdentifier.value, PatientIdentifier.patient_id).where(
                PatientIdentifier.system == identifiers.LU_MATRICULE,
                PatientIdentifier.value.in_(values[start : start + 500]),
            )
        )
        found.update((value, patient_id) for value, patient_id in rows)
    return [found[value] for value in values]


def _counts(scale: Scale, rng: random.Random, births: list[dt.date], today: dt.date) -> list[int]:
    """Documents per patient: exponentially spread around a mean that grows with age."""
    weights = [0.4 + (today - born).days / 365.25 / 40 for born in births]
    drawn = [rng.expovariate(1.0) * weight for weight in weights]
    total = sum(drawn) or 1.0
    counts = [int(value * scale.documents / total) for value in drawn]
    missing = scale.documents - sum(counts)
    for index in rng.choices(range(scale.patients), weights=weights, k=max(0, missing)):
        counts[index] += 1
    return counts


@dataclass
class _People:
    ids: list[uuid.UUID]
    births: list[dt.date]
    languages: bytes  # index in _LANGUAGES


@dataclass
class _Loaded:
    documents: int = 0
    objects: int = 0
    generating: float = 0.0
    loading: float = 0.0
    storing: float = 0.0
    methods: set[str] = field(default_factory=set)


class _DocumentLoader:
    """Draws every patient's documents and loads them, ``batch`` at a time."""

    def __init__(
        self, platform: Platform, scale: Scale, found: _Directory, templates: Templates
    ) -> None:
        self.platform, self.scale, self.found, self.templates = platform, scale, found, templates
        self.rng = random.Random(scale.seed + 2)  # noqa: S311 — synthetic data
        self.now = platform.clock.now()
        self.kinds = [kind for kind in load_catalogue().types if kind.demo_share > 0]
        self.cumulative = list(itertools.accumulate(kind.demo_share for kind in self.kinds))
        self.digests = {
            mime: (sha256(data).hexdigest(), len(data)) for mime, data in templates.by_mime.items()
        }
        self.pending: list[bulk.BulkDocument] = []
        self.puts: set[tuple[uuid.UUID, str]] = set()
        self.done = _Loaded()

    def run(self, people: _People, targets: dict[int, Target]) -> dict[str, Any]:
        """Generate and load everything; the figures."""
        counts = _counts(self.scale, self.rng, people.births, self.now.date())
        with ThreadPoolExecutor(max_workers=4) as pool:
            began = time.perf_counter()
            for index, patient_id in enumerate(people.ids):
                language = _LANGUAGES[people.languages[index]]
                self._patient(
                    patient_id, counts[index], people.births[index], language, targets.get(index)
                )
                if len(self.pending) >= self.scale.batch:
                    self.done.generating += time.perf_counter() - began
                    self._flush(pool)
                    began = time.perf_counter()
            self.done.generating += time.perf_counter() - began
            if self.pending:
                self._flush(pool)
        began = time.perf_counter()
        with unit_of_work(self.platform.sessions) as session:
            bulk.refresh_statistics(session)
        done = self.done
        return {
            "loaded": done.documents,
            "method": "+".join(sorted(done.methods)),
            "batch": self.scale.batch,
            "generate_seconds": round(done.generating, 1),
            "load_seconds": round(done.loading, 1),
            "load_per_second": round(done.documents / done.loading) if done.loading else None,
            "end_to_end_per_second": round(
                done.documents / (done.generating + done.loading + done.storing)
            )
            if done.documents
            else None,
            "analyze_seconds": _since(began),
            "content_objects_stored": done.objects,
            "content_store_seconds": round(done.storing, 1),
        }

    def _patient(
        self,
        patient_id: uuid.UUID,
        count: int,
        born: dt.date,
        language: str,
        target: Target | None,
    ) -> None:
        receipts: dict[str, StoredContent] = {}
        earliest = max(self.now - _HISTORY, dt.datetime.combine(born, dt.time(12), tzinfo=dt.UTC))
        span = max(1, int((self.now - earliest).total_seconds()) - 3600)
        for _ in range(count):
            metadata, visible = self._metadata(
                earliest + dt.timedelta(seconds=self.rng.randrange(span)), language
            )
            mime = metadata.mime_type
            receipt = receipts.get(mime)
            if receipt is None:
                digest, size = self.digests[mime]
                receipt = receipts[mime] = StoredContent(f"{patient_id}/{digest}", digest, size)
            document = bulk.BulkDocument(
                patient_id=patient_id,
                metadata=metadata,
                content=receipt,
                id=uuid.UUID(int=self.rng.getrandbits(128), version=4),
                submitted_at=metadata.created_at + dt.timedelta(minutes=30),
            )
            self.pending.append(document)
            if target is not None:
                self.puts.add((patient_id, mime))
                if visible:
                    target.visible.append(document.id)
                    if mime == PDF:
                        target.pdfs.append(document.id)

    def _metadata(self, created: dt.datetime, language: str) -> tuple[DocumentMetadata, bool]:
        """One document's metadata, and whether the patient's doctor may see it."""
        rng = self.rng
        draw = rng.random() * self.cumulative[-1]
        kind = self.kinds[min(len(self.kinds) - 1, bisect.bisect(self.cumulative, draw))]
        authors = self.found.by_type.get(kind.key) or self.found.general
        author = authors[rng.randrange(len(authors))]
        draw = rng.random()
        confidentiality = (
            Confidentiality.VERY_RESTRICTED
            if draw < 0.01
            else Confidentiality.RESTRICTED
            if draw < 0.04
            else Confidentiality.NORMAL
        )
        masked = rng.random() < 0.01
        hidden = kind.key == "imaging-report" and rng.random() < 0.2
        metadata = DocumentMetadata(
            type_system=kind.system,
            type_code=kind.code,
            title=kind.labels.in_language(language),
            mime_type=kind.demo_mime_types[rng.randrange(len(kind.demo_mime_types))],
            created_at=created,
            author_professional_id=author.professional_id,
            author_organisation_id=author.organisation_id,
            authored_by_patient=author.setting == "patient",
            language=language,
            format_code="urn:ihe:iti:xds:2017:mimeTypeSufficient",
            service_start=created - dt.timedelta(hours=rng.randrange(1, 72)),
            service_end=created,
            facility_type=author.setting,
            practice_setting=author.setting,
            confidentiality=confidentiality,
            masked_from_professionals=masked,
            hidden_from_patient=hidden,
            source_system=author.organisation_code,
        )
        visible = confidentiality is not Confidentiality.VERY_RESTRICTED and not (masked or hidden)
        return metadata, visible

    def _flush(self, pool: ThreadPoolExecutor) -> None:
        began = time.perf_counter()
        # The content first, as every write path does: metadata never names a missing object.
        store, by_mime = self.platform.store, self.templates.by_mime
        list(pool.map(lambda put: store.put(str(put[0]), by_mime[put[1]]), self.puts))
        self.done.objects += len(self.puts)
        self.puts.clear()
        self.done.storing += time.perf_counter() - began
        began = time.perf_counter()
        with unit_of_work(self.platform.sessions) as session:
            report = bulk.load_documents(
                session, OPERATOR, self.pending, clock=self.platform.clock, source="bench"
            )
        self.done.loading += time.perf_counter() - began
        self.done.documents += report.documents
        self.done.methods.add(report.method)
        self.pending.clear()


def _grants(platform: Platform, readers: list[str], targets: list[Target]) -> None:
    """Each reachable patient grants their doctor an extended access, as the patient."""
    scopes = parse_scopes("patient/*.cruds")[0]
    with unit_of_work(platform.sessions) as session:
        doctors = {
            identifier: directory.find_professional(session, directory.LU_PROFESSIONAL, identifier)
            for identifier in readers
        }
        doctor_ids = {key: found.id for key, found in doctors.items() if found is not None}

    def grant(chunk: list[Target]) -> None:
        with unit_of_work(platform.sessions) as session:
            for target in chunk:
                patient = Actor(
                    kind=ActorKind.PATIENT,
                    subject=f"Patient/{target.patient_id}",
                    assurance=Assurance.SUBSTANTIAL,
                    scopes=scopes,
                    person_id=target.patient_id,
                    acting_for=target.patient_id,
                )
                grant_access(
                    session,
                    open_dossier(
                        session,
                        patient,
                        target.patient_id,
                        purposes.GRANT_ACCESS,
                        clock=platform.clock,
                    ),
                    level=GrantLevel.EXTENDED,
                    professional_id=doctor_ids[readers[target.reader]],
                )

    # Two at a time: each grant is a dozen short statements, PostgreSQL has the other core.
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(grant, [targets[i : i + 250] for i in range(0, len(targets), 250)]))
