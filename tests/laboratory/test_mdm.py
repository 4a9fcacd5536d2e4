"""Receiving MDM^T02/T10: the document it carries published as ITI-65 publishes, or refused.

HL7 v2.5.1 chapter 9 (MDM^T02 original document notification and content, MDM^T10 document
replacement); issue 17: a CDA document received this way gets every CDA header check (a header
that disagrees with TXA or PID is refused naming the field), a PDF the content checks; the ACK
semantics are ORU's (a resend is answered AA without storing twice, a refusal stores nothing).
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy.orm import Session

from carnet.catalogue import load_catalogue
from carnet.cda.header import read_header
from carnet.clock import FrozenClock
from carnet.documents.models import Confidentiality, DocumentStatus
from carnet.feeds.models import FeedingSystem
from carnet.laboratory.errors import ErrorCode, MessageRefused
from carnet.notifications.messages import language_for
from carnet.patients.models import Patient
from carnet.storage import DocumentStore
from factories.cda import dataset, fitted
from factories.patients import make_patient
from factories.pdf import text_pdf
from laboratory.sending import document_notification, documents_of, matricule_of, send

PDF = text_pdf("Compte rendu de consultation", "Dr Weber")
CONSULT_NOTE = dataset("Consultation_Note__Consultation_Note.xml")


def _refusal(
    session: Session, store: DocumentStore, clock: FrozenClock, text: str
) -> MessageRefused:
    with session.begin_nested() as savepoint, pytest.raises(MessageRefused) as raised:
        send(session, store, clock, text)
    assert not savepoint.is_active
    return raised.value


def _hl7_escaped(text: str) -> str:
    """``text`` as HL7 v2 writes it inside a field (2.7: escape sequences)."""
    for character, sequence in (
        ("\\", "\\E\\"),
        ("|", "\\F\\"),
        ("^", "\\S\\"),
        ("&", "\\T\\"),
        ("~", "\\R\\"),
        ("\r", "\\X0D\\"),
        ("\n", "\\X0A\\"),
    ):
        text = text.replace(character, sequence)
    return text


def _consult_note(patient: Patient, **attributes: dict[str, str]) -> tuple[bytes, str]:
    """The dataset's consultation note about ``patient``, and its effectiveTime as an HL7 TS."""
    content = fitted(
        CONSULT_NOTE.read_bytes(), matricule=matricule_of(patient), attributes=attributes
    )
    return content, read_header(content).effective_time.text


class TestPdf:
    def test_a_pdf_is_published_as_its_organisation_with_what_txa_says(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = document_notification(matricule_of(patient), PDF, confidentiality="R")
        accepted = send(session, store, clock, text)
        [document] = documents_of(session, patient.id)
        assert accepted.document_ids == (document.id,)
        assert accepted.text == "Document stored."
        assert (document.type_system, document.type_code) == ("http://loinc.org", "11488-4")
        assert document.mime_type == "application/pdf"
        assert document.master_identifier == "1.2.250.1.999.1^DOC-1"
        assert document.author_organisation_id == feed.organisation_id
        assert document.confidentiality is Confidentiality.RESTRICTED
        assert document.created_at.astimezone(dt.UTC) == dt.datetime(2026, 5, 30, 8, tzinfo=dt.UTC)
        label = load_catalogue().by_key("consultation-note").labels
        assert document.title == label.in_language(language_for(patient.language))
        assert store.get(document.content_key) == PDF

    def test_a_pdf_split_over_several_obx_is_joined(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        send(session, store, clock, document_notification(matricule_of(patient), PDF, pieces=4))
        [document] = documents_of(session, patient.id)
        assert store.get(document.content_key) == PDF

    def test_base64_wrapped_with_escaped_line_breaks_and_an_add_segment_is_read(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        encoded = base64.encodebytes(PDF).decode()  # MIME style: a line break every 76
        head, tail = encoded[: len(encoded) // 2], encoded[len(encoded) // 2 :]
        text = document_notification(matricule_of(patient), PDF, data=_hl7_escaped(head))
        text += f"ADD|{_hl7_escaped(tail)}\r"
        send(session, store, clock, text)
        [document] = documents_of(session, patient.id)
        assert store.get(document.content_key) == PDF

    def test_the_type_confidentiality_follows_when_txa_18_is_empty(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        send(
            session,
            store,
            clock,
            document_notification(matricule_of(patient), PDF, document_type="DS"),
        )
        [document] = documents_of(session, patient.id)
        assert document.type_code == "18842-5"
        assert document.confidentiality is Confidentiality.NORMAL


class TestCda:
    def test_an_embedded_cda_document_is_stored_with_its_header_checked(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        content, effective = _consult_note(patient)
        text = document_notification(
            matricule_of(patient),
            content,
            kind="text^XML",
            created=effective,
            number="TT988^^2.16.840.1.113883.19.5.99999.1^ISO",
            pieces=3,
        )
        send(session, store, clock, text)
        [document] = documents_of(session, patient.id)
        assert document.mime_type == "text/xml"
        assert document.type_code == "11488-4"
        assert document.master_identifier == "2.16.840.1.113883.19.5.99999.1^TT988"
        assert store.get(document.content_key) == content

    def test_a_cda_document_sent_as_escaped_text_is_read(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        content, effective = _consult_note(patient)
        written = _hl7_escaped(content.decode())
        text = document_notification(
            matricule_of(patient),
            b"",
            kind="TEXT^XML",
            encoding="A",
            data=written,
            created=effective,
        )
        send(session, store, clock, text)
        [document] = documents_of(session, patient.id)
        assert store.get(document.content_key) == content

    def test_the_header_confidentiality_is_taken_when_txa_18_is_empty(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        content, effective = _consult_note(patient, confidentialityCode={"code": "R"})
        text = document_notification(
            matricule_of(patient), content, kind="text^XML", created=effective
        )
        send(session, store, clock, text)
        [document] = documents_of(session, patient.id)
        assert document.confidentiality is Confidentiality.RESTRICTED

    @pytest.mark.parametrize(
        ("changes", "field", "words"),
        [
            ({"document_type": "DI"}, "TXA-2", "is not the CDA header's code"),
            ({"created": "20260530100000+0200"}, "TXA-6", "is not the CDA header's effectiveTime"),
            ({"confidentiality": "U", "header": "R"}, "TXA-18", "less restricted"),
            ({"other_patient": True}, "PID-3", ""),
        ],
        ids=["type", "time", "confidentiality", "patient"],
    )
    def test_a_header_that_disagrees_is_refused_naming_the_field(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
        changes: dict[str, object],
        field: str,
        words: str,
    ) -> None:
        changes = dict(changes)  # the parameter is shared by both databases' runs
        about = make_patient(session, clock) if changes.pop("other_patient", False) else patient
        header = changes.pop("header", None)
        attributes = {"confidentialityCode": {"code": str(header)}} if header else {}
        content, effective = _consult_note(about, **attributes)
        options: dict[str, object] = {"kind": "text^XML", "created": effective, **changes}
        text = document_notification(matricule_of(patient), content, **options)  # type: ignore[arg-type]
        refusal = _refusal(session, store, clock, text)
        assert (refusal.field, refusal.code) == (field, ErrorCode.DATA_TYPE)
        assert words in refusal.message
        assert documents_of(session, patient.id) == []

    def test_xml_that_is_no_cda_document_is_refused(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = document_notification(matricule_of(patient), b"<note>hello</note>", kind="text^XML")
        assert _refusal(session, store, clock, text).field == "OBX-5"


class TestRefusals:
    @pytest.mark.parametrize(
        ("changes", "field", "code"),
        [
            ({"data": "JVBERi0x!!not base64"}, "OBX-5", ErrorCode.DATA_TYPE),
            ({"data": "JVBERi0"}, "OBX-5", ErrorCode.DATA_TYPE),  # truncated padding
            ({"data": ""}, "OBX-5", ErrorCode.REQUIRED_FIELD_MISSING),
            ({"data": base64.b64encode(b"hello").decode()}, "OBX-5", ErrorCode.DATA_TYPE),
            ({"encoding": "Zip"}, "OBX-5", ErrorCode.TABLE_VALUE),
            ({"kind": "image^JPEG"}, "OBX-5", ErrorCode.TABLE_VALUE),
            ({"document_type": "HP"}, "TXA-2", ErrorCode.TABLE_VALUE),
            ({"document_type": ""}, "TXA-2", ErrorCode.REQUIRED_FIELD_MISSING),
            ({"number": ""}, "TXA-12", ErrorCode.REQUIRED_FIELD_MISSING),
            ({"completion": "IP"}, "TXA-17", ErrorCode.TABLE_VALUE),
            ({"completion": ""}, "TXA-17", ErrorCode.REQUIRED_FIELD_MISSING),
            ({"confidentiality": "X"}, "TXA-18", ErrorCode.TABLE_VALUE),
            ({"created": "2026-05-30"}, "TXA-6", ErrorCode.DATA_TYPE),
            ({"created": ""}, "TXA-6", ErrorCode.REQUIRED_FIELD_MISSING),
            ({"created": "20300101"}, "TXA-6", ErrorCode.DATA_TYPE),  # in the future
            ({"event": "T10"}, "TXA-13", ErrorCode.REQUIRED_FIELD_MISSING),
        ],
    )
    def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_stored(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
        changes: dict[str, str],
        field: str,
        code: ErrorCode,
    ) -> None:
        text = document_notification(matricule_of(patient), PDF, **changes)  # type: ignore[arg-type]
        refusal = _refusal(session, store, clock, text)
        assert (refusal.field, refusal.code) == (field, code), refusal.message
        assert documents_of(session, patient.id) == []

    def test_text_lines_without_an_encapsulated_document_are_refused(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = document_notification(matricule_of(patient), PDF).replace(
            "OBX|1|ED|11488-4^Consult note^LN|1|", "OBX|1|TX|11488-4^Consult note^LN|1|"
        )
        assert _refusal(session, store, clock, text).field == "OBX-2"

    def test_two_documents_in_one_message_are_refused(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        one = document_notification(matricule_of(patient), PDF)
        other = one.split("\r")[-2].replace("11488-4^Consult note^LN", "18748-4^Imaging^LN")
        assert _refusal(session, store, clock, f"{one}{other}\r").field == "OBX-3"

    def test_an_unknown_patient_is_refused_on_pid_3_and_audited(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        refusal = _refusal(session, store, clock, document_notification("1980051700000", PDF))
        assert refusal.field == "PID-3"
        assert refusal.refusal is not None


class TestRepeatsAndVersions:
    def test_a_resend_is_answered_again_without_storing_twice(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = document_notification(matricule_of(patient), PDF)
        first = send(session, store, clock, text)
        again = send(session, store, clock, text)
        assert again.repeated
        assert again.document_ids == first.document_ids
        assert len(documents_of(session, patient.id)) == 1

    def test_another_message_reusing_the_document_number_is_refused(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        send(session, store, clock, document_notification(matricule_of(patient), PDF))
        text = document_notification(matricule_of(patient), PDF, control="MDM-2")
        refusal = _refusal(session, store, clock, text)
        assert (refusal.field, refusal.code) == ("TXA-12", ErrorCode.DUPLICATE_KEY)
        assert len(documents_of(session, patient.id)) == 1

    def test_a_t10_replaces_the_document_txa_13_names(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        matricule = matricule_of(patient)
        send(session, store, clock, document_notification(matricule, PDF))
        corrected = text_pdf("Compte rendu corrigé")
        replacement = document_notification(
            matricule,
            corrected,
            control="MDM-2",
            event="T10",
            number="DOC-2^^1.2.250.1.999.1^ISO",
            parent="DOC-1^^1.2.250.1.999.1^ISO",
        )
        accepted = send(session, store, clock, replacement)
        assert accepted.text == "Document replaced."
        original, new = documents_of(session, patient.id)
        assert original.status is DocumentStatus.SUPERSEDED
        assert (new.status, new.replaces_id) == (DocumentStatus.CURRENT, original.id)
        assert store.get(new.content_key) == corrected

    def test_a_t10_naming_no_document_of_the_dossier_is_refused(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        text = document_notification(
            matricule_of(patient), PDF, event="T10", parent="NOPE^^1.2.250.1.999.1^ISO"
        )
        refusal = _refusal(session, store, clock, text)
        assert (refusal.field, refusal.code) == ("TXA-13", ErrorCode.UNKNOWN_KEY)

    def test_a_t10_of_a_superseded_document_is_refused(
        self,
        session: Session,
        store: DocumentStore,
        clock: FrozenClock,
        patient: Patient,
        feed: FeedingSystem,
    ) -> None:
        matricule = matricule_of(patient)
        send(session, store, clock, document_notification(matricule, PDF))
        parent = "DOC-1^^1.2.250.1.999.1^ISO"
        send(session, store, clock, document_notification(
            matricule, PDF, control="MDM-2", number="DOC-2^^1.2.250.1.999.1^ISO",
            event="T10", parent=parent,
        ))  # fmt: skip
        again = document_notification(
            matricule,
            PDF,
            control="MDM-3",
            number="DOC-3^^1.2.250.1.999.1^ISO",
            event="T10",
            parent=parent,
        )
        assert _refusal(session, store, clock, again).field == "TXA-13"
