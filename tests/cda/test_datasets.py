"""Issue 17's acceptance: every CDA document of the shared datasets (hl7-c-cda-examples and
ms-fhir-converter/ccda) is either stored with its header's metadata or refused with a named
reason, when published for a dossier through the documents service (the path ITI-65, ITI-41,
the portals and HL7 v2 MDM all take).

The datasets are US documents: as received, their patients are named by US ids no dossier
holds, so each is refused for its patient. Fitted to the test dossier (``factories.cda.fitted``:
the recordTarget's ids replaced by the patient's matricule, nothing else), each is stored or
refused for what it is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.catalogue import load_catalogue
from carnet.cda.header import read_header
from carnet.clock import FrozenClock
from carnet.documents import publication
from carnet.documents.errors import InvalidDocument
from carnet.documents.metadata import DocumentMetadata
from carnet.documents.models import Document
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from factories.cda import CDA_FILES, fitted, metadata_of
from factories.documents import lab_metadata

# Stored, by the catalogue type their LOINC code names.
STORED = {
    "CCD__CCD_1__CCD.xml": "episode-summary",
    "CCD__CCD_2__CCD.xml": "episode-summary",
    "Consultation_Note__Consultation_Note.xml": "consultation-note",
    "Diagnostic_Imaging_Report__Diagnostic_Imaging_Report.xml": "imaging-report",
    "Discharge_Summary__Discharge_Summary.xml": "discharge-summary",
    "General__External_Document_Reference__PROBLEMS_in_Empty_C-CDA_2.1__C-CDAR2.1.xml": (
        "episode-summary"
    ),
    "General__Parent_Document_Replace_Relationship__CCD_Parent_Document_Replace__C-CDAR2.1.xml": (
        "episode-summary"
    ),
    "Operative_Note__Operative_Note.xml": "operative-report",
    "Referrals_-_Planned_and_Completed__Close_Referral_with_a_Document__Consult_Document_Closing_"
    "Referral_C-CDAR2.1.xml": "consultation-note",
    "170.314B2_Amb_CCD.ccda": "episode-summary",
    "C-CDA_R2-1_CCD.ccda": "episode-summary",
    "Patient-1.ccda": "episode-summary",
}
NOT_WELL_FORMED = ("content", "not well-formed XML: Namespace prefix xsi")
NO_NAMESPACE = ("content", "not in the CDA namespace urn:hl7-org:v3 (it is in no namespace)")
# Refused, with the field at fault and the words of the reason.
REFUSED = {
    "Guide_Examples__Entry_Reference_2.16.840.1.113883.10.20.22.4.122__Diagnosis_Reference_"
    "Example.xml": NO_NAMESPACE,
    "Guide_Examples__Entry_Reference_2.16.840.1.113883.10.20.22.4.122__Entry_Reference_"
    "Example.xml": NOT_WELL_FORMED,
    "Guide_Examples__Transfer_Summary__V2__2.16.840.1.113883.10.20.22.1.13__Transfer_Summary_"
    "participant__Support__Example.xml": NOT_WELL_FORMED,
    "Guide_Examples__US_Realm_Header__V3__2.16.840.1.113883.10.20.22.1.1__Supporting_Person_"
    "participant_Example.xml": NO_NAMESPACE,
    "Guide_Examples__US_Realm_Header__V3__2.16.840.1.113883.10.20.22.1.1__US_Realm_Header__V3__"
    "Example.xml": NO_NAMESPACE,
    "Guide_Examples__US_Realm_Header_for_Patient_Generated_Document__V2__2.16.840.1.113883.10.20."
    "29.1__Patient_Generated_Document_informationRecipient.xml": NO_NAMESPACE,
    "Header__Direct_Address__Patient_and_Provider_Organization_Direct_Address_C-CDAR2.1.xml": (
        "content",
        "ClinicalDocument needs author where component is.",
    ),
    "Health_Concerns__Health_Concerns_Link_to_Problems_Section__Health_Concerns_Link_to_Problems_"
    "Section_C-CDA2.1.xml": NOT_WELL_FORMED,
    "Health_Concerns__Health_Concerns_Link_to_Problems_Section_with_linkHTML__Health_Concerns_"
    "Link_to_Problems_Section_with_linkHTML_C-CDA2.1.xml": NOT_WELL_FORMED,
    "Plan_of_Treatment__Planned_Encounter_-_Referral__Planned_Encounter_-_Reason_for_Referral_"
    "C-CDAR2.1.xml": NOT_WELL_FORMED,
    "Referrals_-_Planned_and_Completed__Referral_Request_and_Close_Referral_with_a_Note__"
    "Intervention_Planned_Referral_and_Note_Completeting_Referral_C-CDAR2.1.xml": NO_NAMESPACE,
    # LOINC document codes Carnet's catalogue does not hold.
    "Care_Plan__Care_Plan.xml": ("type", "52521-2"),
    "History_and_Physical__History_and_Physical.xml": ("type", "34117-2"),
    "Procedure_Note__Procedure_Note.xml": ("type", "28570-0"),
    "Progress_Note__Progress_Note.xml": ("type", "11506-3"),
    "Referral_Note__Referral_Note.xml": ("type", "57113-1"),
    "Transfer_Summary__Transfer_Summary.xml": ("type", "18761-7"),
    "Unstructured__CDA_reference_PDF__Unstructured_Document_reference.xml": ("type", "11490-0"),
    "Unstructured__CDA_with_Embedded_PDF_1__Unstructured_Document_embed.xml": ("type", "11490-0"),
    "Unstructured__CDA_with_Embedded_PDF_2__CDA_with_Embedded_PDF.xml": ("type", "81334-5"),
    "Unstructured__CDA_with_Embedded_Text_plain__CDA_Embedded_Text_Plain_Surgical_Consult.xml": (
        "type",
        "34847-4",
    ),
    "sample.ccda": ("type", "11490-0"),
}
# Refused for their body once their code is one of the catalogue's.
REFERENCE_BODIES = {
    "Unstructured__CDA_reference_PDF__Unstructured_Document_reference.xml",
    "sample.ccda",
}


def _publish(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    metadata: DocumentMetadata,
    content: bytes,
) -> Document:
    return publication.add_document(
        session,
        open_dossier(session, author, patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock),
        store,
        metadata=metadata,
        content=content,
    )


def _readable(path: Path) -> bool:
    return path.name not in REFUSED or REFUSED[path.name][0] == "type"


def test_every_dataset_document_has_its_expected_outcome() -> None:
    assert {path.name for path in CDA_FILES} == set(STORED) | set(REFUSED)
    assert len(CDA_FILES) == 34


@pytest.mark.parametrize("path", CDA_FILES, ids=lambda p: p.name[:60])
def test_fitted_to_the_dossier_each_is_stored_or_refused_for_a_named_reason(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
    path: Path,
) -> None:
    if not _readable(path):
        # What cannot be read has no header to send as metadata: a sender's own words.
        content, metadata = path.read_bytes(), lab_metadata(clock, mime_type="text/xml")
    else:
        content = fitted(path.read_bytes(), matricule=matricule)
        metadata = metadata_of(content)

    if path.name in REFUSED:
        field, words = REFUSED[path.name]
        with pytest.raises(InvalidDocument) as refused:
            _publish(session, store, clock, author, patient, metadata, content)
        assert refused.value.field == field
        assert words in refused.value.message
        return

    document = _publish(session, store, clock, author, patient, metadata, content)

    header = read_header(content)
    kind = load_catalogue().by_key(STORED[path.name])
    assert (document.type_system, document.type_code) == (kind.system, kind.code)
    assert document.created_at == header.effective_time.at
    assert document.created_at < dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    assert document.confidentiality.value == header.confidentiality
    assert document.language == header.language
    assert document.mime_type == "text/xml"


@pytest.mark.parametrize(
    "path",
    [p for p in CDA_FILES if p.name in REFUSED and REFUSED[p.name][0] == "type"],
    ids=lambda p: p.name[:60],
)
def test_with_a_catalogue_code_the_others_are_stored_but_reference_only_bodies(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    matricule: str,
    path: Path,
) -> None:
    content = fitted(path.read_bytes(), matricule=matricule, loinc="11488-4")
    metadata = metadata_of(content)

    if path.name in REFERENCE_BODIES:
        with pytest.raises(InvalidDocument, match=r"only references its file \(UD_sample.pdf\)"):
            _publish(session, store, clock, author, patient, metadata, content)
        return
    document = _publish(session, store, clock, author, patient, metadata, content)
    assert document.type_code == "11488-4"
    assert document.created_at == read_header(content).effective_time.at


@pytest.mark.parametrize(
    "path", [p for p in CDA_FILES if p.name in STORED], ids=lambda p: p.name[:60]
)
def test_as_received_each_is_refused_for_its_patient(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    author: Actor,
    patient: Patient,
    path: Path,
) -> None:
    content = path.read_bytes()

    with pytest.raises(InvalidDocument) as refused:
        _publish(session, store, clock, author, patient, metadata_of(content), content)

    assert refused.value.field == "subject"
    assert "no national identifier Carnet knows" in refused.value.message
    first = read_header(content).patient_ids[0]
    assert str(first) in refused.value.message
