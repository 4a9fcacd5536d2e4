"""The report as a person reads it (a PDF in the patient's language) and its results, read
through the door: the policy on the report document decides who sees its values."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.clock import FrozenClock
from carnet.directory.models import Profession
from carnet.documents import reading, visibility
from carnet.feeds import service as feeds
from carnet.feeds.models import FeedingSystem
from carnet.laboratory import message, oru
from carnet.laboratory.rendering import ReportView, render_pdf
from carnet.laboratory.results import report_results
from carnet.patients.models import Patient
from carnet.storage import DocumentStore
from factories.actors import patient_actor, professional_actor
from factories.directory import make_professional
from factories.patients import make_patient
from factories.pdf import content_streams
from laboratory.sending import lead_report, matricule_of, send


@pytest.mark.parametrize(
    ("language", "words"),
    [("fr", b"Valeurs de r"), ("en", b"Reference range"), ("de", b"Referenzbereich")],
)
def test_the_report_is_a_pdf_in_the_patients_language(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    feed: FeedingSystem,
    language: str,
    words: bytes,
) -> None:
    patient = make_patient(session, clock, language=language)
    [document_id] = send(session, store, clock, lead_report(matricule_of(patient))).document_ids
    dossier = open_dossier(
        session, patient_actor(patient), patient.id, purposes.RETRIEVE_DOCUMENTS, clock=clock
    )
    document, content = reading.read_content(session, dossier, document_id, store)
    assert content.startswith(b"%PDF-")
    assert document.language == language
    drawn = b"".join(content_streams(content))
    assert words in drawn
    assert b"Lead BldC-mCnc" in drawn
    assert b"ug/dL" in drawn


def test_the_patient_reads_the_results_of_their_report(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    patient: Patient,
    feed: FeedingSystem,
) -> None:
    [document_id] = send(session, store, clock, lead_report(matricule_of(patient))).document_ids
    dossier = open_dossier(
        session, patient_actor(patient), patient.id, purposes.READ_DOCUMENTS, clock=clock
    )
    lead, haemoglobin = report_results(session, dossier, document_id)
    assert (lead.code, lead.value, lead.unit, lead.abnormal_flags) == (
        "10368-9",
        "50",
        "ug/dL",
        ("H",),
    )
    assert (haemoglobin.numeric_value, haemoglobin.reference_range) == (13.2, "12-16")


def test_a_withdrawn_report_takes_its_results_with_it(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    patient: Patient,
    feed: FeedingSystem,
) -> None:
    [document_id] = send(session, store, clock, lead_report(matricule_of(patient))).document_ids
    withdrawing = open_dossier(
        session, feeds.actor_of(feed), patient.id, purposes.MANAGE_DOCUMENT, clock=clock
    )
    visibility.mark_entered_in_error(session, withdrawing, document_id)
    dossier = open_dossier(
        session, patient_actor(patient), patient.id, purposes.READ_DOCUMENTS, clock=clock
    )
    with pytest.raises(AccessDenied):
        report_results(session, dossier, document_id)


def test_a_professional_without_a_basis_sees_no_results(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    patient: Patient,
    feed: FeedingSystem,
) -> None:
    [document_id] = send(session, store, clock, lead_report(matricule_of(patient))).document_ids
    stranger = professional_actor(make_professional(session, clock, profession=Profession.NURSE))
    dossier = open_dossier(session, stranger, patient.id, purposes.READ_DOCUMENTS, clock=clock)
    with pytest.raises(AccessDenied) as denied:
        report_results(session, dossier, document_id)
    assert denied.value.refusal is not None


def test_a_value_too_long_for_its_column_wraps_within_the_row() -> None:
    # Most rows fit on one line and are drawn as plain cells; a long name or a text result
    # wraps inside its column, the row as tall as its tallest cell, nothing cut.
    long_name = "Hemoglobin A1c/Hemoglobin.total in Blood by HPLC " * 3
    raw = lead_report("1980051712345").replace("Hemoglobin", long_name.strip())
    [order] = oru.read_results(message.read(raw)).orders
    view = ReportView(
        order=order, patient_name="Lea Weber", birth_date="19800517", laboratory="Lab"
    )
    content = render_pdf(view, language="en", printed_at=dt.datetime(2026, 5, 20, tzinfo=dt.UTC))
    drawn = b"".join(content_streams(content))
    assert b"Lead BldC-mCnc" in drawn
    # Every word of the long name is drawn, over several lines of its cell.
    assert long_name.strip().encode() not in drawn
    assert drawn.count(b"HPLC") == 3
