"""Receiving ORU^R01 messages: reports stored, resends, corrections, cancellations, refusals.

HL7 v2.5.1 chapter 7 (ORU^R01), chapter 2 (original acknowledgment mode); the issue's rules:
one report document (LOINC 11502-2) per OBR group, nothing stored on a refusal, the refusal
naming the field and audited when it concerns a patient.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.documents.models import DocumentStatus
from carnet.feeds import service as feeds
from carnet.feeds.models import FeedingSystem
from carnet.laboratory.errors import AckCode, ErrorCode, MessageRefused
from carnet.laboratory.intake import Credentials, receive
from carnet.laboratory.message import read
from carnet.laboratory.models import LabReport, LabResult
from carnet.patients.models import DossierState, Patient
from carnet.storage import DocumentStore
from factories.patients import make_matricule, make_patient
from laboratory.sending import (
    documents_of,
    lead_report,
    matricule_of,
    results_count,
    send,
    set_field,
)


def _refusal(
    session: Session, store: DocumentStore, clock: FrozenClock, text: str
) -> MessageRefused:
    with session.begin_nested() as savepoint, pytest.raises(MessageRefused) as raised:
        send(session, store, clock, text)
    assert not savepoint.is_active
    return raised.value


class TestStoring:
    def test_one_report_document_per_obr_group_with_its_results(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        accepted = send(session, store, clock, lead_report(matricule_of(patient)))
        [document] = documents_of(session, patient.id)
        assert accepted.document_ids == (document.id,)
        assert (document.type_system, document.type_code) == ("http://loinc.org", "11502-2")
        assert document.mime_type == "application/pdf"
        assert document.author_organisation_id == feed.organisation_id
        assert document.language == "fr"
        assert document.title.startswith("Résultats d'analyses de laboratoire - Lead")
        results = session.scalars(
            select(LabResult).where(LabResult.patient_id == patient.id).order_by(LabResult.sequence)
        ).all()
        lead, haemoglobin = results
        assert (lead.code, lead.code_system, lead.value, lead.numeric_value) == (
            "10368-9",
            "LN",
            "50",
            50.0,
        )
        assert (lead.unit, lead.reference_range, lead.abnormal_flags) == ("ug/dL", "<9", "H")
        assert lead.observed_at is not None
        assert lead.observed_at.isoformat() == "2026-05-15T08:30:00+00:00"
        assert (haemoglobin.value, haemoglobin.unit, haemoglobin.abnormal_flags) == (
            "13.2",
            "g/dL",
            "N",
        )
        assert all(result.document_id == document.id for result in results)

    def test_the_same_control_id_again_is_accepted_without_storing_twice(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        first = send(session, store, clock, lead_report(matricule_of(patient)))
        again = send(session, store, clock, lead_report(matricule_of(patient)))
        assert again.repeated
        assert again.document_ids == first.document_ids
        assert again.text == first.text
        assert len(documents_of(session, patient.id)) == 1
        assert results_count(session, patient.id) == 2

    def test_a_final_after_a_preliminary_replaces_it(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        matricule = matricule_of(patient)
        send(session, store, clock, lead_report(matricule, control="A", status="P"))
        send(session, store, clock, lead_report(matricule, control="B", status="F"))
        preliminary, final = documents_of(session, patient.id)
        assert preliminary.status is DocumentStatus.SUPERSEDED
        assert final.status is DocumentStatus.CURRENT
        assert final.replaces_id == preliminary.id


class TestCorrectionAndCancellation:
    def test_a_corrected_report_replaces_the_earlier_one_with_its_values(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        matricule = matricule_of(patient)
        send(session, store, clock, lead_report(matricule, control="A"))
        send(
            session,
            store,
            clock,
            lead_report(matricule, control="B", status="C", value="5", flag="N"),
        )
        earlier, corrected = documents_of(session, patient.id)
        assert earlier.status is DocumentStatus.SUPERSEDED
        assert corrected.replaces_id == earlier.id
        values = session.scalars(
            select(LabResult.value).where(
                LabResult.document_id == corrected.id, LabResult.code == "10368-9"
            )
        ).all()
        assert values == ["5"]

    def test_an_obx_marked_corrected_replaces_the_report_too(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        matricule = matricule_of(patient)
        send(session, store, clock, lead_report(matricule, control="A"))
        send(session, store, clock, lead_report(matricule, control="B", obx_status="C"))
        assert [d.status for d in documents_of(session, patient.id)] == [
            DocumentStatus.SUPERSEDED,
            DocumentStatus.CURRENT,
        ]

    def test_a_cancelled_order_withdraws_the_report(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        matricule = matricule_of(patient)
        first = send(session, store, clock, lead_report(matricule, control="A"))
        cancelled = send(session, store, clock, lead_report(matricule, control="B", status="X"))
        [document] = documents_of(session, patient.id)
        assert document.status is DocumentStatus.ENTERED_IN_ERROR
        assert cancelled.document_ids == first.document_ids
        assert "withdrawn" in cancelled.text

    def test_a_cancellation_of_an_unknown_order_stores_nothing(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        accepted = send(session, store, clock, lead_report(matricule_of(patient), status="X"))
        assert accepted.document_ids == ()
        assert documents_of(session, patient.id) == []

    def test_another_senders_order_with_the_same_number_is_its_own_report(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
        lab: object,
    ) -> None:
        matricule = matricule_of(patient)
        send(session, store, clock, lead_report(matricule, control="A"))
        other = set_field(lead_report(matricule, control="A", status="C"), "MSH", 4, "Other Lab")
        feeds.register(
            session,
            organisation_id=feed.organisation_id,
            sending_facility="Other Lab",
            clock=clock,
            authorities={"CNS": "lu-matricule"},
        )
        send(session, store, clock, other)
        assert [d.status for d in documents_of(session, patient.id)] == [DocumentStatus.CURRENT] * 2


class TestRefusals:
    def test_an_unknown_sender_is_rejected_naming_msh_4(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = set_field(lead_report(matricule_of(patient)), "MSH", 4, "Nobody Lab")
        refusal = _refusal(session, store, clock, text)
        assert (refusal.ack, refusal.field, refusal.code) == (
            AckCode.REJECT,
            "MSH-4",
            ErrorCode.UNKNOWN_KEY,
        )
        assert documents_of(session, patient.id) == []

    def test_a_deactivated_sender_is_rejected(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        feeds.deactivate(session, feed.id, clock=clock)
        refusal = _refusal(session, store, clock, lead_report(matricule_of(patient)))
        assert (refusal.ack, refusal.field) == (AckCode.REJECT, "MSH-4")

    def test_a_pinned_sender_without_its_certificate_is_rejected(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        lab: object,
    ) -> None:
        system = feeds.register(
            session,
            organisation_id=lab.id,  # type: ignore[attr-defined]
            sending_facility="Central Lab",
            certificate_sha256="ab" * 32,
            authorities={"CNS": "lu-matricule"},
            clock=clock,
        )
        message = read(lead_report(matricule_of(patient)))
        with session.begin_nested(), pytest.raises(MessageRefused) as raised:
            receive(session, store, message, Credentials(certificate_sha256="cd" * 32), clock=clock)
        assert raised.value.field == "MSH-4"
        accepted = receive(
            session, store, message, Credentials(certificate_sha256="AB" * 32), clock=clock
        )
        assert accepted.document_ids
        assert system.certificate_sha256 == "ab" * 32

    def test_an_unknown_patient_is_an_error_naming_pid_3_and_audited(
        self, session: Session, store: DocumentStore, clock: FrozenClock, feed: FeedingSystem
    ) -> None:
        refusal = _refusal(session, store, clock, lead_report(make_matricule()))
        assert (refusal.ack, refusal.field, refusal.code) == (
            AckCode.ERROR,
            "PID-3",
            ErrorCode.UNKNOWN_KEY,
        )
        assert "Unknown patient" in refusal.message
        assert refusal.refusal is not None
        assert refusal.refusal.patient_id is None

    def test_an_identifier_of_an_unmapped_authority_names_pid_3(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = set_field(lead_report(matricule_of(patient)), "PID", 3, "12345^^^MPI^MR")
        refusal = _refusal(session, store, clock, text)
        assert (refusal.field, refusal.code) == ("PID-3", ErrorCode.UNKNOWN_KEY)

    def test_a_malformed_matricule_names_pid_3(
        self, session: Session, store: DocumentStore, clock: FrozenClock, feed: FeedingSystem
    ) -> None:
        refusal = _refusal(session, store, clock, lead_report("1980051700000"))
        assert (refusal.field, refusal.code) == ("PID-3", ErrorCode.DATA_TYPE)

    @pytest.mark.parametrize("state", [DossierState.CLOSED, DossierState.OPPOSED])
    def test_a_dossier_not_active_is_an_error_audited_and_nothing_stored(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        feed: FeedingSystem,
        state: DossierState,
    ) -> None:
        patient = make_patient(session, clock, state=state)
        refusal = _refusal(session, store, clock, lead_report(matricule_of(patient)))
        assert (refusal.ack, refusal.field) == (AckCode.ERROR, "PID-3")
        assert state.value in refusal.message
        assert refusal.refusal is not None
        assert refusal.refusal.patient_id == patient.id
        assert documents_of(session, patient.id) == []
        assert (
            session.scalars(select(LabReport).where(LabReport.patient_id == patient.id)).all() == []
        )

    def test_a_value_that_is_not_a_number_names_obx_5(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        refusal = _refusal(session, store, clock, lead_report(matricule_of(patient), value="fifty"))
        assert (refusal.ack, refusal.field, refusal.code) == (
            AckCode.ERROR,
            "OBX-5",
            ErrorCode.DATA_TYPE,
        )
        assert documents_of(session, patient.id) == []
        assert results_count(session, patient.id) == 0

    @pytest.mark.parametrize(
        ("field", "value", "named", "code"),
        [
            (9, "ADT^A01^ADT_A01", "MSH-9", ErrorCode.UNSUPPORTED_MESSAGE_TYPE),
            (9, "ORU^R30", "MSH-9", ErrorCode.UNSUPPORTED_EVENT),
            (10, "", "MSH-10", ErrorCode.REQUIRED_FIELD_MISSING),
            (11, "T", "MSH-11", ErrorCode.UNSUPPORTED_PROCESSING_ID),
            (12, "2.8", "MSH-12", ErrorCode.UNSUPPORTED_VERSION),
        ],
    )
    def test_a_header_carnet_does_not_take_is_rejected_naming_the_field(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
        field: int,
        value: str,
        named: str,
        code: ErrorCode,
    ) -> None:
        text = set_field(lead_report(matricule_of(patient)), "MSH", field, value)
        refusal = _refusal(session, store, clock, text)
        assert (refusal.ack, refusal.field, refusal.code) == (AckCode.REJECT, named, code)

    def test_results_before_any_order_are_a_segment_sequence_error(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = lead_report(matricule_of(patient)).replace("OBR|", "NTE|", 1)
        refusal = _refusal(session, store, clock, text)
        assert (refusal.field, refusal.code) == ("OBX", ErrorCode.SEGMENT_SEQUENCE)
