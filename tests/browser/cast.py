"""The people of the browser journeys, seeded through the domain services before Carnet serves.

Small on purpose (the full ``carnet demo`` takes some twenty seconds): three organisations, a
biologist, a general practitioner and an emergency physician, three patients (one invited with
its letter's code; two active, with a lab report, an allergy and a blood group, one of whom
granted the GP access) and the agency's operator, each with the documented demo credentials
(password ``carnet-demo``, TOTP from ``demo_totp_secret``, card PIN ``1234``) so that the
journeys sign in exactly as a person trying the demo would.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass

import pyotp
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.catalogue import LOINC_SYSTEM
from carnet.clinical import extraction
from carnet.clock import Clock
from carnet.db import unit_of_work
from carnet.demo import accounts as demo_accounts
from carnet.directory import service as directory
from carnet.directory.models import OrganisationKind, Profession, Professional
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata
from carnet.essentials import service as essentials
from carnet.essentials.models import Category
from carnet.lifecycle.service import issue_invitation
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.models import DossierState, Patient, Sex
from carnet.platform import build_platform
from carnet.settings import Settings
from carnet.storage import DocumentStore
from clinical.sources import synthea_document, synthea_files
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.pdf import text_pdf

PASSWORD = demo_accounts.DEMO_PASSWORD
PIN = demo_accounts.DEMO_PIN
LAB_REPORT = (LOINC_SYSTEM, "11502-2")
LAB_REPORT_TITLE = "Bilan sanguin"
# What the lab report says, so a journey can check it reads the very document published.
LAB_REPORT_TEXT = "Hémoglobine 14.2 g/dL — Leucocytes 6.1 G/L — Plaquettes 245 G/L"
# Recorded by the patients of the active dossiers: what a doctor must see first.
ALLERGY = "Penicillin"
BLOOD_GROUP = "O-"


@dataclass(frozen=True)
class Person:
    """Someone who signs in: their identifier on the sign-in page and their name on pages."""

    id: uuid.UUID
    identifier: str
    given: str
    family: str

    @property
    def name(self) -> str:
        """Given name and family name, as pages show them."""
        return f"{self.given} {self.family}"


@dataclass(frozen=True)
class Cast:
    """Everyone the journeys need, seeded and able to sign in."""

    invited: Person  # a new dossier and its invitation letter's code: journey a
    activation_code: str
    followed: Person  # the GP's patient, who granted them access: journey b
    injured: Person  # brought to the emergency room, no grant: journey c
    gp: Person
    emergency_physician: Person
    biologist: Person
    operator: str  # the agency operator's account name: journey d


def seed_cast(settings: Settings) -> Cast:
    """Create the journeys' people in the database ``settings`` name (freshly migrated)."""
    platform = build_platform(settings)
    try:
        clock = platform.clock
        assert platform.key_wrapper is not None
        with unit_of_work(platform.sessions) as session:
            lab = _organisation(session, clock, "ORG-LAB", "Laboratoire Central Alzette")
            practice = _organisation(
                session,
                clock,
                "ORG-PRACTICE",
                "Cabinet médical du Brill",
                OrganisationKind.PRACTICE,
            )
            hospital = _organisation(
                session,
                clock,
                "ORG-HOSPITAL",
                "Centre hospitalier d'Esch",
                OrganisationKind.HOSPITAL,
            )
            biologist = _professional(
                session, clock, 1, "Irène", "Kieffer", Profession.BIOLOGIST, lab
            )
            gp = _professional(
                session, clock, 2, "Marc", "Schaack", Profession.GENERAL_PRACTITIONER, practice
            )
            emergency = _professional(
                session, clock, 3, "Nadia", "Urbany", Profession.EMERGENCY_PHYSICIAN, hospital
            )
            invited = _patient(
                session, clock, 11, "Léa", "Weber", dt.date(1984, 3, 9), DossierState.INVITED
            )
            followed = _patient(
                session, clock, 12, "Paul", "Frieden", dt.date(1957, 11, 2), DossierState.ACTIVE
            )
            injured = _patient(
                session, clock, 13, "Sophie", "Kremer", dt.date(1991, 7, 23), DossierState.ACTIVE
            )
            letter = issue_invitation(
                session,
                open_dossier(
                    session,
                    operator_actor("browser-tests"),
                    invited.id,
                    purposes.ISSUE_INVITATION,
                    clock=clock,
                ),
                lifetime=dt.timedelta(days=60),
            )
            for patient in (followed, injured):
                _publish_lab_report(session, platform.store, clock, patient.id, biologist)
                _record_essentials(session, clock, patient)
            access_rules.grant_access(
                session,
                open_dossier(
                    session,
                    patient_actor(followed),
                    followed.id,
                    purposes.GRANT_ACCESS,
                    clock=clock,
                ),
                level=GrantLevel.NORMAL,
                professional_id=gp.id,
            )
            demo_accounts.provision_demo_accounts(
                session, key_wrapper=platform.key_wrapper, clock=clock
            )
            return Cast(
                invited=_person(invited),
                activation_code=letter.code,
                followed=_person(followed),
                injured=_person(injured),
                gp=_professional_person(gp),
                emergency_physician=_professional_person(emergency),
                biologist=_professional_person(biologist),
                operator=demo_accounts.DEMO_OPERATOR,
            )
    finally:
        platform.close()


def publish_lab_report(settings: Settings, patient: Person, author: Person) -> None:
    """The laboratory publishes a lab report to ``patient``'s (active) dossier now.

    For a journey in which a report arrives while it runs: the served Carnet is not writing at
    that moment, and SQLite serialises writers anyway.
    """
    platform = build_platform(settings)
    try:
        with unit_of_work(platform.sessions) as session:
            biologist = directory.get_professional(session, author.id)
            _publish_lab_report(session, platform.store, platform.clock, patient.id, biologist)
    finally:
        platform.close()


PDF_LAB_REPORT_TITLE = "Bilan lipidique"
PDF_LAB_REPORT_LINES = (
    "Laboratoire Central Alzette - Bilan lipidique",
    "Cholesterol total 5.2 mmol/L (< 5.2)",
    "HDL cholesterol 1.4 mmol/L (> 1.0)",
    "Triglycerides 1.1 mmol/L (< 1.7)",
)


def publish_pdf_lab_report(settings: Settings, patient: Person, author: Person) -> None:
    """The laboratory publishes a one-page PDF lab report (drawn by fpdf2) to ``patient``."""
    platform = build_platform(settings)
    try:
        with unit_of_work(platform.sessions) as session:
            biologist = directory.get_professional(session, author.id)
            publication.add_document(
                session,
                open_dossier(
                    session,
                    professional_actor(biologist),
                    patient.id,
                    purposes.PUBLISH_DOCUMENTS,
                    clock=platform.clock,
                ),
                platform.store,
                metadata=DocumentMetadata(
                    type_system=LAB_REPORT[0],
                    type_code=LAB_REPORT[1],
                    title=PDF_LAB_REPORT_TITLE,
                    mime_type="application/pdf",
                    created_at=platform.clock.now() - dt.timedelta(hours=1),
                    language="fr",
                ),
                content=text_pdf(*PDF_LAB_REPORT_LINES),
            )
    finally:
        platform.close()


def publish_fhir_record(settings: Settings, patient: Person, author: Person) -> None:
    """A doctor publishes a FHIR patient record (the Synthea dataset's Alva) to ``patient``:
    its treatments, vaccinations and results become the dossier's structured data."""
    source = next(p for p in synthea_files() if p.name.startswith("Alva958"))
    content = json.dumps(synthea_document(source)).encode()
    platform = build_platform(settings)
    try:
        with unit_of_work(platform.sessions) as session:
            dossier = open_dossier(
                session,
                professional_actor(directory.get_professional(session, author.id)),
                patient.id,
                purposes.PUBLISH_DOCUMENTS,
                clock=platform.clock,
            )
            document = publication.add_document(
                session,
                dossier,
                platform.store,
                metadata=DocumentMetadata(
                    type_system=LOINC_SYSTEM,
                    type_code="60591-5",
                    title="Patient summary",
                    mime_type="application/fhir+json",
                    created_at=platform.clock.now() - dt.timedelta(hours=2),
                    language="en",
                ),
                content=content,
            )
            extraction.record_facts(session, dossier, [(document, content)])
    finally:
        platform.close()


class OneTimeCodes:
    """The codes the demo accounts' authenticator apps would show, never one step twice.

    Carnet refuses a step already used by the account (RFC 6238 section 5.2) and accepts one
    step of drift either side; so a second sign-in within the same 30 s uses the next step's
    code, and only a third one waits.
    """

    def __init__(self) -> None:
        self._last_step: dict[str, int] = {}

    def code(self, identifier: str) -> str:
        """The code to type for the account of ``identifier`` (national id, RPPS or name)."""
        totp = pyotp.TOTP(demo_accounts.demo_totp_secret(identifier))
        now = time.time()
        current = int(now // totp.interval)
        step = max(current, self._last_step.get(identifier, current - 1) + 1)
        if step > current + 1:
            # Two codes already spent within this step and the next: wait for the next step.
            time.sleep(totp.interval - now % totp.interval + 0.5)
        self._last_step[identifier] = step
        return totp.at(step * totp.interval)


# --- seeding -----------------------------------------------------------------------------------


def _organisation(
    session: Session,
    clock: Clock,
    code: str,
    name: str,
    kind: OrganisationKind = OrganisationKind.LABORATORY,
) -> uuid.UUID:
    return directory.register_organisation(
        session,
        identifier_system=directory.LU_ORGANISATION,
        identifier_value=code,
        name=name,
        kind=kind,
        city="Esch-sur-Alzette",
        clock=clock,
    ).id


def _professional(
    session: Session,
    clock: Clock,
    serial: int,
    given: str,
    family: str,
    profession: Profession,
    organisation_id: uuid.UUID,
) -> Professional:
    return directory.register_professional(
        session,
        identifier_system=identifiers.FR_RPPS,
        identifier_value=identifiers.fr_rpps(serial),
        family=family,
        given=given,
        profession=profession,
        specialty=None,
        organisation_id=organisation_id,
        clock=clock,
    )


def _patient(
    session: Session,
    clock: Clock,
    serial: int,
    given: str,
    family: str,
    birth_date: dt.date,
    state: DossierState,
) -> Patient:
    return patients.create_dossier(
        session,
        identifiers_=[(identifiers.LU_MATRICULE, identifiers.lu_matricule(birth_date, serial))],
        demographics=patients.Demographics(
            family=family,
            given=given,
            birth_date=birth_date,
            sex=Sex.FEMALE if given in ("Léa", "Sophie") else Sex.MALE,
            language="fr",
            email=f"{given.lower().replace('é', 'e')}.{family.lower()}@example.lu",
            city="Esch-sur-Alzette",
            country="LU",
        ),
        state=state,
        opening_deadline=clock.now() + dt.timedelta(days=30)
        if state is DossierState.INVITED
        else None,
        clock=clock,
    )


def _publish_lab_report(
    session: Session,
    store: DocumentStore,
    clock: Clock,
    patient_id: uuid.UUID,
    biologist: Professional,
) -> None:
    publication.add_document(
        session,
        open_dossier(
            session,
            professional_actor(biologist),
            patient_id,
            purposes.PUBLISH_DOCUMENTS,
            clock=clock,
        ),
        store,
        metadata=DocumentMetadata(
            type_system=LAB_REPORT[0],
            type_code=LAB_REPORT[1],
            title=LAB_REPORT_TITLE,
            mime_type="text/plain",
            created_at=clock.now() - dt.timedelta(hours=3),
            language="fr",
        ),
        content=f"Laboratoire Central Alzette\n{LAB_REPORT_TITLE}\n\n{LAB_REPORT_TEXT}\n".encode(),
    )


def _record_essentials(session: Session, clock: Clock, patient: Patient) -> None:
    essentials.record_facts(
        session,
        open_dossier(
            session, patient_actor(patient), patient.id, purposes.RECORD_ESSENTIALS, clock=clock
        ),
        [
            essentials.NewFact(
                Category.ALLERGY,
                ALLERGY,
                {"substance": ALLERGY, "reaction": "Hives", "severity": "severe"},
            ),
            essentials.NewFact(Category.BLOOD_GROUP, BLOOD_GROUP, {"group": BLOOD_GROUP}),
        ],
    )


def _person(patient: Patient) -> Person:
    matricule = next(i.value for i in patient.identifiers if i.system == identifiers.LU_MATRICULE)
    return Person(patient.id, matricule, patient.given, patient.family)


def _professional_person(professional: Professional) -> Person:
    return Person(
        professional.id, professional.identifier_value, professional.given, professional.family
    )
