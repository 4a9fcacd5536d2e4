"""Every ORU^R01 of the shared HL7 v2 datasets is stored or refused naming the field.

cdc-prime-reportstream-hl7v2, node-hl7-complete-hl7v2 and the HL7 v2 files of
ms-fhir-converter (see shared/datasets/README.md): real messages, written by others. Each is sent
once as it is (many are training messages, MSH-11 T, or HL7 2.8: refused naming MSH-11/MSH-12)
and once as a production message, after its PID-3 is mapped to a test patient. Either the
message stores one report per OBR group, with a result per OBX, or it is refused with the field
named — and then nothing of it is in the dossier: no message crashes, none is half-stored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.directory.models import Organisation
from carnet.feeds import service as feeds
from carnet.laboratory.errors import MessageRefused
from carnet.laboratory.message import read, split_batch
from carnet.laboratory.models import LabResult
from carnet.laboratory.oru import read_results
from carnet.storage import DocumentStore
from factories.patients import make_patient
from laboratory.sending import (
    addressed_to,
    dataset_files,
    documents_of,
    facility_of,
    matricule_of,
    register_lab,
    results_count,
    send,
    set_field,
)

_FIELD = re.compile(r"^[A-Z][A-Z0-9]{2}(-\d+)?$")


def _oru_messages() -> list[tuple[str, int, str]]:
    found = []
    for path in dataset_files():
        for index, text in enumerate(split_batch(path.read_bytes()), start=1):
            if re.search(r"^MSH.{4}([^|]*\|){7}ORU\^R01", text):
                found.append((path.name, index, text))
    return found


MESSAGES = _oru_messages()


def test_the_datasets_hold_the_oru_messages_the_readme_counts() -> None:
    # 37 (ReportStream) + 17 (node-hl7-complete) + 5 (FHIR-Converter) ORU^R01.
    assert len(MESSAGES) == 59


@pytest.mark.parametrize("production", [False, True], ids=["as-sent", "as-production"])
def test_every_dataset_oru_is_stored_or_refused_naming_the_field(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    lab: Organisation,
    production: bool,
) -> None:
    registered: set[str] = set()
    outcomes: dict[str, int] = {"stored": 0, "refused": 0}
    for name, index, original in MESSAGES:
        patient = make_patient(session, clock)
        text = addressed_to(original, matricule_of(patient))
        # Several files reuse one control id (an input and its expected output): each is
        # sent as a message of its own here, not as a resend.
        text = set_field(text, "MSH", 10, f"{index}-{name}"[:199])
        if production:
            text = set_field(text, "MSH", 11, "P")
        facility = facility_of(text)
        if facility and facility not in registered:
            register_lab(session, clock, lab, facility)
            registered.add(facility)
        savepoint = session.begin_nested()
        refused: MessageRefused | None = None
        try:
            accepted = send(session, store, clock, text)
        except MessageRefused as refusal:
            refused = refusal
        if refused is not None:
            savepoint.rollback()
            assert _FIELD.match(refused.field), (name, index, refused.field)
            assert documents_of(session, patient.id) == [], (name, index)
            assert results_count(session, patient.id) == 0, (name, index)
            outcomes["refused"] += 1
            continue
        savepoint.commit()
        report = read_results(read(text))
        stored = [order for order in report.orders if not order.cancelled]
        assert not accepted.repeated, (name, index)
        assert len(documents_of(session, patient.id)) == len(stored), (name, index)
        assert len(accepted.document_ids) == len(stored), (name, index)
        assert results_count(session, patient.id) == sum(len(o.observations) for o in stored)
        outcomes["stored"] += 1
    if production:
        # Most messages are stored once they are production messages of a supported version.
        assert outcomes["stored"] >= 40, outcomes


def _stored(
    session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation, path: Path
) -> list[LabResult]:
    patient = make_patient(session, clock)
    for original in split_batch(path.read_bytes()):
        text = set_field(addressed_to(original, matricule_of(patient)), "MSH", 11, "P")
        if not facility_of(text):
            # FHIR-Converter's LAB-ORU messages name no facility: a sender must.
            text = set_field(text, "MSH", 4, "Central Lab")
        facility = facility_of(text)
        if not any(s.sending_facility == facility for s, _ in feeds.list_feeding_systems(session)):
            register_lab(session, clock, lab, facility)
        send(session, store, clock, text)
    return list(
        session.scalars(
            select(LabResult)
            .where(LabResult.patient_id == patient.id)
            .order_by(LabResult.observed_at, LabResult.sequence)
        )
    )


def _dataset(folder: str, name: str) -> Path:
    return next(
        path for path in dataset_files() if path.parent.name in folder and path.name == name
    )


class TestValues:
    def test_nist_case_1_blood_lead(
        self, session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation
    ) -> None:
        path = _dataset("node-hl7-complete-hl7v2", "valid__nist__ORU_R01_2.5.1_SampleTestCase1.hl7")
        [lead] = _stored(session, store, clock, lab, path)
        assert (lead.code, lead.code_system, lead.display) == ("10368-9", "LN", "Lead BldC-mCnc")
        assert (lead.value, lead.numeric_value, lead.unit, lead.abnormal_flags) == (
            "50",
            50.0,
            "ug/dL",
            "H",
        )
        assert lead.reference_range.startswith("<9 mcg/dL")
        assert lead.observed_at is not None
        assert lead.observed_at.isoformat() == "2008-08-15T17:30:00+00:00"

    def test_nist_lri_complete_blood_count(
        self, session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation
    ) -> None:
        path = _dataset("hl7v2", "LRI_2.0-NG_CBC_Typ_Message.hl7")
        results = {r.code: r for r in _stored(session, store, clock, lab, path)}
        haemoglobin = results["718-7"]
        assert (haemoglobin.numeric_value, haemoglobin.unit) == (12.5, "g/mL")
        assert (haemoglobin.reference_range, haemoglobin.abnormal_flags) == ("13 to 18", "L")
        assert results["26464-8"].abnormal_flags == "HH"

    def test_a_structured_numeric_glucose(
        self, session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation
    ) -> None:
        path = _dataset("hl7v2", "ORU-R01-RMGEAD.hl7")
        [glucose] = _stored(session, store, clock, lab, path)
        assert (glucose.code, glucose.value_type, glucose.value) == ("1554-5", "SN", "182")
        assert (glucose.numeric_value, glucose.unit, glucose.abnormal_flags) == (
            182.0,
            "mg/dl",
            "H",
        )

    def test_a_reportstream_batch_stores_both_messages(
        self, session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation
    ) -> None:
        path = _dataset("cdc-prime-reportstream-hl7v2", "hl7_test_files__batch_message.hl7")
        results = _stored(session, store, clock, lab, path)
        covid = [r for r in results if r.code == "94558-4"]
        assert len(covid) == 2
        assert {(r.value_type, r.value, r.abnormal_flags) for r in covid} == {
            ("CWE", "Not detected", "N")
        }

    def test_two_orders_make_two_reports(
        self, session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation
    ) -> None:
        path = _dataset("hl7v2", "LAB-ORU-2.hl7")
        results = _stored(session, store, clock, lab, path)
        assert len({r.document_id for r in results}) == 2
        haemoglobin = next(r for r in results if r.code == "20509-6")
        assert (haemoglobin.value, haemoglobin.unit) == ("13.4", "g/l-1")
