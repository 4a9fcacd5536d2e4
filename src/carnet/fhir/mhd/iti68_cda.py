"""ITI-68 as CDA R2: a document retrieved with ``Accept: application/hl7-cda+xml``.

A document received as CDA is answered as it was received. A laboratory report received as
HL7 v2 (ORU^R01: a PDF beside its structured results) is answered as a CDA R2 laboratory report
(LOINC 11502-2) written from those results (``cda.writing``). Both are reads of the same dossier,
opened for ``RETRIEVE_DOCUMENTS`` at the door: the document's RETRIEVE is on the trail (and the
results' READ, for a report written here). Anything else is not available as CDA (``None``).
"""

from __future__ import annotations

import uuid
from typing import Final

from sqlalchemy.orm import Session

from carnet.access.door import OpenedDossier
from carnet.catalogue import LOINC_SYSTEM
from carnet.cda.parsing import claims_cda
from carnet.cda.writing import (
    LaboratoryReport,
    ReportedPatient,
    ReportedResult,
    write_lab_report,
)
from carnet.directory import service as directory
from carnet.documents.models import Document
from carnet.laboratory import results as laboratory
from carnet.patients import identifiers
from carnet.patients import service as patients
from carnet.patients.models import Sex

CDA_MEDIA_TYPE: Final = "application/hl7-cda+xml"
_GENDER: Final = {Sex.FEMALE: "F", Sex.MALE: "M"}
# The CDA rendition of a stored document keeps one id however often it is written.
_RENDITION: Final = uuid.UUID("5d3c1f8e-7c4b-4f61-9a2e-0c7b9d6e4a10")


def wants_cda(accept: str) -> bool:
    """Whether an Accept header asks for CDA R2."""
    return CDA_MEDIA_TYPE in accept.lower()


def as_cda(
    session: Session, dossier: OpenedDossier, document: Document, content: bytes
) -> bytes | None:
    """The document as CDA R2, or None when it is neither a CDA document nor a laboratory report
    with structured results. The document was read through ``reading.read_content`` already."""
    if claims_cda(document.mime_type, content):
        return content
    if (document.type_system, document.type_code) != (LOINC_SYSTEM, "11502-2"):
        return None
    found = laboratory.report_results(session, dossier, document.id)
    if not found:
        return None
    patient = patients.get_patient(session, dossier.patient_id)
    national = next(
        (
            identifiers.NationalIdentifier(i.system, i.value)
            for i in patient.identifiers
            if i.system in (identifiers.LU_MATRICULE, identifiers.FR_NIR)
        ),
        None,
    )
    if national is None:
        return None
    laboratory_name = directory.author_name(
        session, professional_id=None, organisation_id=document.author_organisation_id
    )
    rendition_id = uuid.uuid5(_RENDITION, str(document.id))
    return write_lab_report(
        LaboratoryReport(
            document_id=rendition_id,
            title=document.title,
            created_at=document.created_at,
            patient=ReportedPatient(
                identifier=national,
                family=patient.family,
                given=patient.given,
                birth_date=patient.birth_date,
                sex=_GENDER.get(patient.sex, "UN"),
            ),
            laboratory=laboratory_name or "Laboratory",
            laboratory_id=document.author_organisation_id,
            language=document.language or "fr",
            confidentiality=document.confidentiality.value,
            results=tuple(
                ReportedResult(
                    code_system=result.code_system,
                    code=result.code,
                    display=result.display,
                    value=result.value,
                    numeric_value=result.numeric_value,
                    unit=result.unit,
                    reference_range=result.reference_range,
                    abnormal_flags=result.abnormal_flags,
                    status=result.status,
                    observed_at=result.observed_at,
                )
                for result in found
            ),
        )
    )
