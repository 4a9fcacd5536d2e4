"""A laboratory report written as CDA R2 (LOINC 11502-2): what Carnet writes, Carnet takes."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from lxml import etree
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.cda.header import InstanceId, read_header
from carnet.cda.parsing import V3
from carnet.cda.patient import national_identifiers
from carnet.cda.writing import (
    ReportedPatient,
    write_lab_report,
)
from carnet.clock import FrozenClock
from carnet.documents import publication
from carnet.patients import identifiers
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.cda import DOCUMENT, metadata_of, report

UTC = dt.UTC
V = f"{{{V3}}}"


class TestTheHeader:
    def test_it_reads_back_as_written(self, matricule: str) -> None:
        header = read_header(write_lab_report(report(matricule)))

        assert header.document_id == InstanceId(str(DOCUMENT).upper())
        assert (header.code.system_uri, header.code.code) == ("http://loinc.org", "11502-2")
        assert header.title == "Bilan sanguin"
        assert header.effective_time.at == dt.datetime(2026, 5, 30, 8, 15, tzinfo=UTC)
        assert (header.confidentiality, header.language) == ("N", "fr")
        assert (header.set_id, header.version) == (InstanceId(str(DOCUMENT).upper()), 1)
        assert [i.value for i in national_identifiers(header)] == [matricule]
        assert header.patient_name == "Léa Weber"
        assert header.authors[0].organisation == "Laboratoire national de santé"
        assert header.custodian.organisation == "Laboratoire national de santé"
        assert header.body == "structured"

    def test_a_correction_is_a_new_version_that_replaces_the_first(self, matricule: str) -> None:
        corrected = uuid.UUID("1c9f2f3e-5a0b-4d8e-9f7a-2b6c4d8e0f33")
        header = read_header(
            write_lab_report(
                report(
                    matricule,
                    document_id=corrected,
                    set_id=DOCUMENT,
                    version=2,
                    replaces=(DOCUMENT,),
                    confidentiality="R",
                )
            )
        )
        assert (header.set_id, header.version) == (InstanceId(str(DOCUMENT).upper()), 2)
        assert header.replaces == (InstanceId(str(DOCUMENT).upper()),)
        assert header.confidentiality == "R"

    def test_a_french_patient_is_named_by_the_ins(self, matricule: str) -> None:
        nir = identifiers.fr_nir(2, 1980, 5, "75", "056", 42)
        patient = ReportedPatient(identifiers.validate(identifiers.FR_NIR, nir), "Dupont", "Anne")
        content = write_lab_report(report(matricule, patient=patient))
        assert b'<realmCode code="FR"/>' in content
        assert b'root="1.2.250.1.213.1.4.8"' in content

    @pytest.mark.parametrize(
        ("changes", "words"),
        [
            ({"created_at": dt.datetime(2026, 5, 30, 8, 15)}, "time zone"),  # noqa: DTZ001
            ({"confidentiality": "X"}, "N, R or V"),
        ],
    )
    def test_bad_values_are_refused(
        self, matricule: str, changes: dict[str, object], words: str
    ) -> None:
        with pytest.raises(ValueError, match=words):
            write_lab_report(report(matricule, **changes))


class TestTheResults:
    def test_each_result_is_a_row_and_an_observation(self, matricule: str) -> None:
        root = etree.fromstring(write_lab_report(report(matricule)))
        section = root.find(f"{V}component/{V}structuredBody/{V}component/{V}section")
        assert section is not None
        rows = section.findall(f"{V}text/{V}table/{V}tbody/{V}tr")
        assert [[cell.text or "" for cell in row] for row in rows] == [
            ["Hémoglobine", "14.2", "g/dL", "12.0-16.0", "", "2026-05-30 07:00 UTC"],
            ["Glucose", "7.9", "mmol/L", "3.9-6.1", "H", ""],
            ["Remarque", "Échantillon hémolysé", "", "", "", ""],
        ]
        observations = section.findall(f"{V}entry/{V}observation")
        assert len(observations) == 3
        first, second, third = observations
        code = first.find(f"{V}code")
        assert code is not None
        assert (code.get("code"), code.get("codeSystem")) == ("718-7", "2.16.840.1.113883.6.1")
        value = first.find(f"{V}value")
        assert value is not None
        assert dict(value.attrib) == {
            "value": "14.2",
            "unit": "g/dL",
            "{http://www.w3.org/2001/XMLSchema-instance}type": "PQ",
        }
        assert second.find(f"{V}statusCode").get("code") == "active"  # type: ignore[union-attr]
        assert second.find(f"{V}interpretationCode").get("code") == "H"  # type: ignore[union-attr]
        assert third.find(f"{V}value").text == "Échantillon hémolysé"  # type: ignore[union-attr]
        assert third.find(f"{V}code").get("codeSystemName") == "L"  # type: ignore[union-attr]

    def test_the_same_report_is_written_the_same(self, matricule: str) -> None:
        assert write_lab_report(report(matricule)) == write_lab_report(report(matricule))


def test_a_written_report_is_published_like_a_received_one(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
) -> None:
    content = write_lab_report(report(matricule))

    document = publication.add_document(
        session,
        open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        store,
        metadata=metadata_of(content),
        content=content,
    )

    assert (document.type_code, document.class_code) == ("11502-2", "laboratory")
