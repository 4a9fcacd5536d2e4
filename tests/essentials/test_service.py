"""Essential data: record, read and withdraw facts, under the access policy, on the audit trail."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access import rules as access_rules
from carnet.access.actors import Actor, Assurance
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, InsufficientScope, StrongerAuthenticationRequired
from carnet.access.models import GrantLevel, RepresentationKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import FrozenClock
from carnet.directory.models import Profession, Professional
from carnet.essentials import service as essentials
from carnet.essentials.errors import FactConflict, FactNotFound, InvalidFact
from carnet.essentials.models import Category, EssentialFact
from carnet.notifications.models import Notification, NotificationKind
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore
from factories.actors import operator_actor, patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient

ALLERGIES = (LOINC_SYSTEM, "48765-2")
VACCINATIONS = (LOINC_SYSTEM, "82593-5")


@pytest.fixture
def patient(session: Session, clock: FrozenClock) -> Patient:
    return make_patient(session, clock)


@pytest.fixture
def me(patient: Patient) -> Actor:
    return patient_actor(patient)


@pytest.fixture
def gp(session: Session, clock: FrozenClock) -> Professional:
    return make_professional(session, clock, family="Hoffmann")


@pytest.fixture
def doctor(
    session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
) -> Actor:
    """The patient's doctor, with a normal grant."""
    access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.NORMAL,
        professional_id=gp.id,
    )
    return professional_actor(gp)


def _record(
    session: Session,
    actor: Actor,
    patient: Patient,
    clock: FrozenClock,
    category: Category,
    text: str,
    details: Mapping[str, object] | None = None,
) -> EssentialFact:
    return essentials.record_fact(
        session,
        open_dossier(session, actor, patient.id, purposes.RECORD_ESSENTIALS, clock=clock),
        category=category,
        text=text,
        details=details,
    )


def _last_event(
    session: Session, patient: Patient, action: AuditAction | None = None
) -> AuditEvent:
    query = select(AuditEvent).where(AuditEvent.chain_id == patient.id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    event = session.scalar(query.order_by(AuditEvent.seq.desc()))
    assert event is not None
    return event


def _contact(name: str = "Anne Weber", phone: str = "+352 621 123 456") -> dict[str, str]:
    return {"name": name, "relationship": "sister", "phone": phone}


class TestRecordAndRead:
    def test_a_new_dossier_has_every_category_and_nothing_recorded(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        found = essentials.read_essentials(
            session, open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock)
        )
        assert found.categories == tuple(Category)
        assert found.facts == ()
        assert found.blood_group is None
        assert found.recordable == essentials.PATIENT_CATEGORIES

    def test_the_patient_records_an_allergy_and_reads_it_back(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        fact = _record(
            session,
            me,
            patient,
            clock,
            Category.ALLERGY,
            "  Penicillin: hives  ",
            {"substance": "Penicillin", "reaction": "hives", "severity": "Moderate"},
        )
        published = _last_event(session, patient)
        assert (published.action, published.outcome) == (AuditAction.PUBLISH, AuditOutcome.ALLOWED)
        assert str(fact.id) in published.entity_ids
        clock.advance(dt.timedelta(minutes=5))
        found = essentials.read_essentials(
            session, open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock)
        )
        (allergy,) = found.of(Category.ALLERGY)
        assert allergy.text == "Penicillin: hives"
        assert allergy.details == {
            "substance": "Penicillin",
            "reaction": "hives",
            "severity": "moderate",
        }
        assert (allergy.author_role, allergy.author) == ("patient", None)
        assert allergy.recorded_at == fact.recorded_at
        assert allergy.withdrawable
        read = _last_event(session, patient, AuditAction.READ)
        assert read.outcome is AuditOutcome.ALLOWED
        assert '"resource": "essentials"' in read.details
        assert str(fact.id) in read.entity_ids

    def test_a_professional_records_a_treatment_the_patient_sees_with_their_name(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, doctor: Actor
    ) -> None:
        _record(
            session,
            doctor,
            patient,
            clock,
            Category.TREATMENT,
            "Ramipril 5 mg once a day",
            {"medication": "Ramipril", "dosage": "5 mg daily", "since": dt.date(2025, 3, 1)},
        )
        (treatment,) = essentials.read_essentials(
            session, open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock)
        ).of(Category.TREATMENT)
        assert treatment.author == "Marc Hoffmann"
        assert treatment.author_role == "professional"
        assert treatment.details["since"] == "2025-03-01"
        # The patient does not withdraw a treatment; the doctor does.
        assert not treatment.withdrawable
        seen_by_doctor = essentials.read_essentials(
            session,
            open_dossier(session, doctor, patient.id, purposes.READ_ESSENTIALS, clock=clock),
        )
        assert seen_by_doctor.of(Category.TREATMENT)[0].withdrawable
        assert seen_by_doctor.recordable == frozenset(Category)

    def test_withdrawing_keeps_the_fact_in_the_history(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        fact = _record(session, me, patient, clock, Category.EMERGENCY_CONTACT, "Anne", _contact())
        clock.advance(dt.timedelta(days=1))
        essentials.withdraw_fact(
            session,
            open_dossier(session, me, patient.id, purposes.WITHDRAW_ESSENTIALS, clock=clock),
            fact.id,
        )
        assert (
            essentials.read_essentials(
                session,
                open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            ).facts
            == ()
        )
        stored = session.get(EssentialFact, (patient.id, fact.id))
        assert stored is not None
        assert (stored.withdrawn_at, stored.withdrawn_by) == (clock.now(), me.agent.subject)
        assert stored.text == "Anne"
        withdrawn = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == patient.id, AuditEvent.action == AuditAction.STATUS_CHANGE
            )
        ).one()
        assert str(fact.id) in withdrawn.entity_ids
        with pytest.raises(FactNotFound):
            essentials.withdraw_fact(
                session,
                open_dossier(session, me, patient.id, purposes.WITHDRAW_ESSENTIALS, clock=clock),
                fact.id,
            )
        with pytest.raises(FactNotFound):
            essentials.withdraw_fact(
                session,
                open_dossier(session, me, patient.id, purposes.WITHDRAW_ESSENTIALS, clock=clock),
                uuid.uuid4(),
            )

    def test_a_fact_may_name_the_document_it_was_taken_from(
        self,
        session: Session,
        clock: FrozenClock,
        store: FilesystemDocumentStore,
        patient: Patient,
        doctor: Actor,
    ) -> None:
        document = make_document(
            session,
            store,
            clock,
            actor=doctor,
            patient_id=patient.id,
            type_system=ALLERGIES[0],
            type_code=ALLERGIES[1],
            title="Allergies",
        )
        fact = essentials.record_fact(
            session,
            open_dossier(session, doctor, patient.id, purposes.RECORD_ESSENTIALS, clock=clock),
            category=Category.ALLERGY,
            text="Latex",
            details={"substance": "latex"},
            source_document_id=document.id,
        )
        assert fact.source_document_id == document.id
        with pytest.raises(AccessDenied):
            essentials.record_fact(
                session,
                open_dossier(session, doctor, patient.id, purposes.RECORD_ESSENTIALS, clock=clock),
                category=Category.ALLERGY,
                text="Latex",
                details=None,
                source_document_id=uuid.uuid4(),
            )

    def test_the_latest_essential_documents_come_along_for_context(
        self,
        session: Session,
        clock: FrozenClock,
        store: FilesystemDocumentStore,
        patient: Patient,
        me: Actor,
        doctor: Actor,
    ) -> None:
        def publish(code: tuple[str, str], title: str, days_ago: int) -> uuid.UUID:
            return make_document(
                session,
                store,
                clock,
                actor=doctor,
                patient_id=patient.id,
                type_system=code[0],
                type_code=code[1],
                title=title,
                created_at=clock.now() - dt.timedelta(days=days_ago),
            ).id

        publish(ALLERGIES, "Allergies 2024", 400)
        newest = publish(ALLERGIES, "Allergies 2026", 3)
        vaccinations = publish(VACCINATIONS, "Vaccinations", 30)
        make_document(session, store, clock, actor=doctor, patient_id=patient.id)  # a lab report
        found = essentials.read_essentials(
            session, open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock)
        )
        assert [(d.id, d.title) for d in found.documents] == [
            (newest, "Allergies 2026"),
            (vaccinations, "Vaccinations"),
        ]
        document_id, title, date = found.documents[0]
        assert (document_id, title) == (newest, "Allergies 2026")
        assert date == clock.now() - dt.timedelta(days=3)


class TestBloodGroup:
    def test_a_new_blood_group_withdraws_the_previous_one(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, doctor: Actor
    ) -> None:
        first = _record(session, me, patient, clock, Category.BLOOD_GROUP, "A+", {"group": "a +"})
        assert first.details == {"group": "A+"}
        clock.advance(dt.timedelta(days=10))
        second = _record(
            session, doctor, patient, clock, Category.BLOOD_GROUP, "A-, lab", {"group": "A-"}
        )
        found = essentials.read_essentials(
            session, open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock)
        )
        assert found.blood_group is not None
        assert found.blood_group.id == second.id
        assert len(found.of(Category.BLOOD_GROUP)) == 1
        assert first.withdrawn_at == clock.now()
        assert first.withdrawn_by == doctor.agent.subject
        replaced = _last_event(session, patient, AuditAction.PUBLISH)
        assert str(first.id) in replaced.entity_ids

    def test_the_patient_does_not_overwrite_a_professionals_blood_group(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, doctor: Actor
    ) -> None:
        _record(session, doctor, patient, clock, Category.BLOOD_GROUP, "O+", {"group": "O+"})
        with pytest.raises(FactConflict) as caught:
            _record(session, me, patient, clock, Category.BLOOD_GROUP, "AB+", {"group": "AB+"})
        assert caught.value.field == "group"
        found = essentials.read_essentials(
            session, open_dossier(session, me, patient.id, purposes.READ_ESSENTIALS, clock=clock)
        )
        assert Category.BLOOD_GROUP not in found.recordable
        assert found.blood_group is not None
        assert found.blood_group.text == "O+"

    def test_the_database_keeps_one_live_blood_group(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        first = _record(session, me, patient, clock, Category.BLOOD_GROUP, "B+", {"group": "B+"})
        twin = EssentialFact(
            patient_id=patient.id,
            id=uuid.uuid4(),
            category=Category.BLOOD_GROUP,
            text="B-",
            details={"group": "B-"},
            recorded_at=clock.now(),
            recorded_by=first.recorded_by,
            recorded_by_kind="patient",
        )

        def insert_twin() -> None:
            session.add(twin)
            session.flush()

        with pytest.raises(IntegrityError), session.begin_nested():
            insert_twin()


class TestWhoMayWrite:
    def test_the_patient_does_not_record_treatments_or_vaccinations(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        for category in (Category.TREATMENT, Category.VACCINATION):
            with pytest.raises(AccessDenied) as caught:
                _record(session, me, patient, clock, category, "Something")
            assert caught.value.refusal is not None
            assert caught.value.refusal.action is AuditAction.PUBLISH
        assert session.scalar(select(func.count()).select_from(EssentialFact)) == 0

    def test_the_patient_withdraws_their_contacts_but_not_a_doctors_allergy(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, doctor: Actor
    ) -> None:
        contact = _record(
            session, doctor, patient, clock, Category.EMERGENCY_CONTACT, "Anne", _contact()
        )
        allergy = _record(session, doctor, patient, clock, Category.ALLERGY, "Iodine")
        essentials.withdraw_fact(
            session,
            open_dossier(session, me, patient.id, purposes.WITHDRAW_ESSENTIALS, clock=clock),
            contact.id,
        )
        with pytest.raises(AccessDenied):
            essentials.withdraw_fact(
                session,
                open_dossier(session, me, patient.id, purposes.WITHDRAW_ESSENTIALS, clock=clock),
                allergy.id,
            )
        assert allergy.withdrawn_at is None

    def test_a_representative_records_for_the_child(
        self, session: Session, clock: FrozenClock
    ) -> None:
        child = make_patient(session, clock, birth_date=dt.date(2018, 2, 3), given="Tom")
        parent = make_patient(session, clock, given="Sophie")
        access_representation.record_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            parent.id,
            kind=RepresentationKind.PARENT,
        )
        for_child = patient_actor(parent, acting_for=child)
        fact = _record(
            session, for_child, child, clock, Category.ALLERGY, "Peanuts", {"severity": "severe"}
        )
        assert fact.recorded_by_kind == "representative"
        (seen,) = essentials.read_essentials(
            session,
            open_dossier(session, for_child, child.id, purposes.READ_ESSENTIALS, clock=clock),
        ).facts
        assert seen.author_role == "representative"
        stranger = patient_actor(make_patient(session, clock, given="Nora"))
        with pytest.raises(AccessDenied):
            essentials.read_essentials(
                session,
                open_dossier(session, stranger, child.id, purposes.READ_ESSENTIALS, clock=clock),
            )

    def test_a_blocked_professional_writes_nothing(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        access_rules.block_professional(
            session,
            open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
            gp.id,
        )
        with pytest.raises(AccessDenied):
            _record(session, professional_actor(gp), patient, clock, Category.ALLERGY, "Latex")

    def test_nothing_is_written_to_a_dossier_that_is_not_active(
        self, session: Session, clock: FrozenClock
    ) -> None:
        invited = make_patient(session, clock, state=DossierState.INVITED)
        with pytest.raises(AccessDenied):
            _record(session, patient_actor(invited), invited, clock, Category.ALLERGY, "Latex")

    def test_a_token_without_the_scope_writes_nothing(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        narrow = patient_actor(patient, scopes="user/Observation.cruds")
        _record(session, narrow, patient, clock, Category.BLOOD_GROUP, "O-", {"group": "O-"})
        with pytest.raises(InsufficientScope):
            _record(session, narrow, patient, clock, Category.ALLERGY, "Latex")


class TestWhoMayRead:
    def test_a_professional_without_access_is_refused_and_recorded(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor, gp: Professional
    ) -> None:
        _record(session, me, patient, clock, Category.ALLERGY, "Penicillin")
        stranger = professional_actor(gp)
        with pytest.raises(AccessDenied) as caught:
            essentials.read_essentials(
                session,
                open_dossier(session, stranger, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            )
        # The way in records the refusal in its own transaction, as here.
        refusal = caught.value.refusal
        assert refusal is not None
        audit_trail.record_refusal(session, refusal, clock=clock)
        event = _last_event(session, patient)
        assert (event.action, event.outcome) == (AuditAction.READ, AuditOutcome.DENIED)
        assert event.agent_professional_id == gp.id
        assert event.reason == "no grant, care contact, designation or emergency access"

    def test_even_the_author_needs_a_basis_to_read(
        self, session: Session, clock: FrozenClock, patient: Patient, gp: Professional
    ) -> None:
        author = professional_actor(gp)
        _record(session, author, patient, clock, Category.ALLERGY, "Penicillin")
        with pytest.raises(AccessDenied):
            essentials.read_essentials(
                session,
                open_dossier(session, author, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            )

    def test_breaking_the_glass_opens_the_essentials(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        _record(session, me, patient, clock, Category.ADVANCE_DIRECTIVE, "No resuscitation")
        _record(session, me, patient, clock, Category.BLOOD_GROUP, "AB-", {"group": "AB-"})
        physician = professional_actor(
            make_professional(session, clock, profession=Profession.EMERGENCY_PHYSICIAN)
        )
        with pytest.raises(AccessDenied):
            essentials.read_essentials(
                session,
                open_dossier(session, physician, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            )
        access_care.break_glass(
            session,
            open_dossier(session, physician, patient.id, purposes.BREAK_GLASS, clock=clock),
            reason="Unconscious after a road accident",
        )
        found = essentials.read_essentials(
            session,
            open_dossier(session, physician, patient.id, purposes.READ_ESSENTIALS, clock=clock),
        )
        assert found.blood_group is not None
        assert found.blood_group.details["group"] == "AB-"
        assert [f.text for f in found.of(Category.ADVANCE_DIRECTIVE)] == ["No resuscitation"]
        read = _last_event(session, patient, AuditAction.READ)
        assert '"basis": "emergency"' in read.details

    def test_each_profession_sees_the_categories_of_its_access_matrix(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        _record(session, me, patient, clock, Category.ALLERGY, "Latex")
        _record(session, me, patient, clock, Category.ADVANCE_DIRECTIVE, "Living will at home")
        physio = make_professional(session, clock, profession=Profession.PHYSIOTHERAPIST)
        access_rules.grant_access(
            session,
            open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
            level=GrantLevel.NORMAL,
            professional_id=physio.id,
        )
        found = essentials.read_essentials(
            session,
            open_dossier(
                session,
                professional_actor(physio),
                patient.id,
                purposes.READ_ESSENTIALS,
                clock=clock,
            ),
        )
        assert Category.ALLERGY in found.categories
        assert Category.ADVANCE_DIRECTIVE not in found.categories
        assert Category.VACCINATION not in found.categories
        assert [f.text for f in found.facts] == ["Latex"]

    def test_a_professionals_first_look_is_told_to_the_patient(
        self, session: Session, clock: FrozenClock, patient: Patient, doctor: Actor
    ) -> None:
        def first_access_notices() -> int:
            return (
                session.scalar(
                    select(func.count()).where(
                        Notification.patient_id == patient.id,
                        Notification.kind == NotificationKind.FIRST_ACCESS,
                    )
                )
                or 0
            )

        essentials.read_essentials(
            session,
            open_dossier(session, doctor, patient.id, purposes.READ_ESSENTIALS, clock=clock),
        )
        essentials.read_essentials(
            session,
            open_dossier(session, doctor, patient.id, purposes.READ_ESSENTIALS, clock=clock),
        )
        assert first_access_notices() == 1

    def test_a_token_sees_only_the_categories_its_scopes_cover(
        self, session: Session, clock: FrozenClock, patient: Patient, me: Actor
    ) -> None:
        _record(session, me, patient, clock, Category.ALLERGY, "Latex")
        _record(session, me, patient, clock, Category.EMERGENCY_CONTACT, "Anne", _contact())
        narrow = patient_actor(patient, scopes="user/AllergyIntolerance.rs")
        found = essentials.read_essentials(
            session,
            open_dossier(session, narrow, patient.id, purposes.READ_ESSENTIALS, clock=clock),
        )
        assert found.categories == (Category.ALLERGY,)
        assert [f.text for f in found.facts] == ["Latex"]
        assert found.documents == ()
        assert found.recordable == frozenset()

    def test_a_weak_sign_in_must_step_up(
        self, session: Session, clock: FrozenClock, patient: Patient
    ) -> None:
        weak = patient_actor(patient, assurance=Assurance.LOW)
        with pytest.raises(StrongerAuthenticationRequired):
            essentials.read_essentials(
                session,
                open_dossier(session, weak, patient.id, purposes.READ_ESSENTIALS, clock=clock),
            )

    def test_an_unknown_dossier_looks_like_a_refusal(
        self, session: Session, clock: FrozenClock, me: Actor
    ) -> None:
        with pytest.raises(AccessDenied):
            essentials.read_essentials(
                session,
                open_dossier(session, me, uuid.uuid4(), purposes.READ_ESSENTIALS, clock=clock),
            )


class TestValidation:
    @pytest.mark.parametrize(
        ("category", "text", "details", "field"),
        [
            ("allergy", "   ", None, "text"),
            ("allergy", "x" * 501, None, "text"),
            ("hobby", "Chess", None, "category"),
            ("blood-group", "C+", {"group": "C+"}, "group"),
            ("blood-group", "A+", {}, "group"),
            ("allergy", "Latex", {"severity": "deadly"}, "severity"),
            ("allergy", "Latex", {"colour": "red"}, "colour"),
            ("allergy", "Latex", {"substance": 12}, "substance"),
            ("allergy", "Latex", {"substance": "x" * 201}, "substance"),
            ("emergency-contact", "Anne", {"name": "Anne Weber"}, "phone"),
            ("emergency-contact", "Anne", {"name": "Anne", "phone": "call me"}, "phone"),
            ("emergency-contact", "Anne", {"phone": "+352 621 123 456"}, "name"),
            ("vaccination", "Tetanus", {"date": "last spring"}, "date"),
            ("vaccination", "Tetanus", {"date": "2027-01-01"}, "date"),
            ("treatment", "Ramipril", {"since": "1850-01-01"}, "since"),
            ("advance-directive", "Will", {"kind": "wish"}, "kind"),
        ],
    )
    def test_bad_input_names_its_field_and_writes_nothing(
        self,
        session: Session,
        clock: FrozenClock,
        patient: Patient,
        doctor: Actor,
        category: str,
        text: str,
        details: dict[str, object] | None,
        field: str,
    ) -> None:
        with pytest.raises(InvalidFact) as caught:
            essentials.record_fact(
                session,
                open_dossier(session, doctor, patient.id, purposes.RECORD_ESSENTIALS, clock=clock),
                category=category,
                text=text,
                details=details,
            )
        assert caught.value.field == field
        assert caught.value.message
        assert session.scalar(select(func.count()).select_from(EssentialFact)) == 0

    def test_empty_parts_are_left_out(
        self, session: Session, clock: FrozenClock, patient: Patient, doctor: Actor
    ) -> None:
        fact = _record(
            session,
            doctor,
            patient,
            clock,
            Category.VACCINATION,
            "Tetanus booster",
            {"vaccine": " Boostrix ", "date": ""},
        )
        assert fact.details == {"vaccine": "Boostrix"}


def test_purging_a_dossier_deletes_its_facts(
    session: Session, clock: FrozenClock, patient: Patient, me: Actor
) -> None:
    fact = _record(session, me, patient, clock, Category.ALLERGY, "Latex")
    essentials.withdraw_fact(
        session,
        open_dossier(session, me, patient.id, purposes.WITHDRAW_ESSENTIALS, clock=clock),
        fact.id,
    )
    _record(session, me, patient, clock, Category.ALLERGY, "Penicillin")
    assert essentials.purge_facts(session, patient.id) == 2
    assert session.scalar(select(func.count()).select_from(EssentialFact)) == 0
