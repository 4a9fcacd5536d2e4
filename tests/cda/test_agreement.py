"""A CDA document and the metadata sent with it must agree, and be about the dossier's patient:
else the publication is refused naming the field and both values (issue 17)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.cda.patient import oid_of
from carnet.clock import FrozenClock
from carnet.demo.documents.catalogue import render
from carnet.demo.documents.model import DocumentContext
from carnet.documents import publication
from carnet.documents.errors import InvalidDocument
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Confidentiality, Document
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.cda import CCD, fitted, metadata_of
from factories.patients import demographics, make_matricule, make_patient

UTC = dt.UTC
Publish = Callable[[Patient, DocumentMetadata, bytes], Document]


@pytest.fixture
def publish(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, author: Actor
) -> Publish:
    def publish(patient: Patient, metadata: DocumentMetadata, content: bytes) -> Document:
        return publication.add_document(
            session,
            open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
            store,
            metadata=metadata,
            content=content,
        )

    return publish


def _refusal(
    publish: Publish, patient: Patient, metadata: DocumentMetadata, content: bytes
) -> InvalidDocument:
    with pytest.raises(InvalidDocument) as refused:
        publish(patient, metadata, content)
    return refused.value


class TestDisagreement:
    @pytest.mark.parametrize(
        ("changes", "field", "words"),
        [
            (
                {"type_code": "11488-4"},
                "type",
                "The type http://loinc.org|11488-4 is not the CDA header's code "
                "http://loinc.org|34133-9.",
            ),
            (
                {"created_at": dt.datetime(2013, 8, 15, 18, 31, tzinfo=UTC)},
                "created_at",
                "The creation time 2013-08-15T18:31:00+00:00 is not the CDA header's "
                "effectiveTime 201308151030-0800.",
            ),
            (
                {"language": "fr"},
                "language",
                "The language fr is not the CDA header's languageCode en-US.",
            ),
        ],
        ids=["type", "created_at", "language"],
    )
    def test_each_disagreement_names_both_values(
        self,
        publish: Publish,
        patient: Patient,
        matricule: str,
        changes: dict[str, object],
        field: str,
        words: str,
    ) -> None:
        content = fitted(CCD.read_bytes(), matricule=matricule)

        refused = _refusal(publish, patient, metadata_of(content, **changes), content)

        assert (refused.field, refused.message) == (field, words)

    def test_a_looser_confidentiality_than_the_header_is_refused(
        self, publish: Publish, patient: Patient, matricule: str
    ) -> None:
        content = fitted(
            CCD.read_bytes(),
            matricule=matricule,
            attributes={"confidentialityCode": {"code": "V"}},
        )
        refused = _refusal(
            publish,
            patient,
            metadata_of(content, confidentiality=Confidentiality.RESTRICTED),
            content,
        )
        assert refused.field == "confidentiality"
        assert refused.message == (
            "The confidentiality R is less restricted than the CDA header's confidentialityCode V."
        )

    def test_a_stricter_confidentiality_is_kept(
        self, publish: Publish, patient: Patient, matricule: str
    ) -> None:
        content = fitted(CCD.read_bytes(), matricule=matricule)
        document = publish(
            patient, metadata_of(content, confidentiality=Confidentiality.RESTRICTED), content
        )
        assert document.confidentiality is Confidentiality.RESTRICTED

    @pytest.mark.parametrize(
        ("declared", "header"), [("en", "en-US"), ("EN-us", "en-US"), (None, "en-US")]
    )
    def test_a_language_and_its_region_agree(
        self, publish: Publish, patient: Patient, matricule: str, declared: str | None, header: str
    ) -> None:
        content = fitted(CCD.read_bytes(), matricule=matricule)
        assert (
            publish(patient, metadata_of(content, language=declared), content).language == declared
        )

    def test_the_creation_time_falls_within_the_effective_time_precision(
        self, publish: Publish, patient: Patient, matricule: str
    ) -> None:
        content = fitted(CCD.read_bytes(), matricule=matricule)
        within = dt.datetime(2013, 8, 15, 18, 30, 59, tzinfo=UTC)
        assert (
            publish(patient, metadata_of(content, created_at=within), content).created_at == within
        )


class TestThePatient:
    def test_another_patients_document_is_refused(
        self, session: Session, clock: FrozenClock, publish: Publish, patient: Patient
    ) -> None:
        other = make_matricule()
        make_patient(session, clock, matricule=other)
        content = fitted(CCD.read_bytes(), matricule=other)

        refused = _refusal(publish, patient, metadata_of(content), content)

        assert refused.field == "subject"
        assert refused.message == (
            f"The recordTarget's patient ({other}, {identifiers.LU_MATRICULE}) is not the "
            "patient of this dossier."
        )

    def test_a_french_ins_names_the_patient(
        self, session: Session, clock: FrozenClock, publish: Publish
    ) -> None:
        nir = identifiers.fr_nir(2, 1980, 5, "75", "056", 42)
        patient = patients.create_dossier(
            session,
            identifiers_=[(identifiers.FR_NIR, nir)],
            demographics=demographics(),
            clock=clock,
        )
        content = fitted(CCD.read_bytes(), matricule=nir, system=identifiers.FR_NIR)
        assert b'root="1.2.250.1.213.1.4.8"' in content

        document = publish(patient, metadata_of(content), content)

        assert document.patient_id == patient.id

    def test_a_matricule_whose_check_digits_fail_is_named(
        self, publish: Publish, patient: Patient, matricule: str
    ) -> None:
        wrong = matricule[:-1] + str((int(matricule[-1]) + 1) % 10)
        content = fitted(CCD.read_bytes(), matricule=wrong)

        refused = _refusal(publish, patient, metadata_of(content), content)

        assert refused.field == "subject"
        assert (
            f"{oid_of(identifiers.LU_MATRICULE)}^{wrong} is not a valid identifier"
            in refused.message
        )

    def test_two_record_targets_are_refused(
        self, publish: Publish, patient: Patient, matricule: str
    ) -> None:
        content = fitted(CCD.read_bytes(), matricule=matricule)
        start = content.index(b"<recordTarget")
        end = content.index(b"</recordTarget>") + len(b"</recordTarget>")
        doubled = content[:end] + content[start:end] + content[end:]

        refused = _refusal(publish, patient, metadata_of(doubled), doubled)

        assert refused.message == (
            "The document has 2 recordTargets; a dossier's document is about one patient."
        )


def test_the_demo_cda_documents_pass(
    session: Session, clock: FrozenClock, publish: Publish, patient: Patient, matricule: str
) -> None:
    """Carnet's own demo CDA documents name the patient as this module reads them."""
    created = clock.now() - dt.timedelta(days=3)
    context = DocumentContext(
        type_key="consultation-note",
        title="Consultation",
        language="fr",
        patient_family="Weber",
        patient_given="Léa",
        patient_birth_date=dt.date(1980, 5, 17),
        patient_sex="female",
        patient_identifier=matricule,
        author_name="Dr Anne Muller",
        organisation_name="Laboratoire",
        created_at=created,
        document_id="urn:uuid:4b0c9e0f-7e39-4a43-9a5b-6a1c2b9b4a11",
    )
    content = render(context, "text/xml", random.Random(1))
    document = publish(patient, metadata_of(content), content)
    assert document.created_at == created.replace(microsecond=0)
