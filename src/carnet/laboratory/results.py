"""Reading a report's structured results, through the door: the policy on the document decides.

A result has no access rule of its own: it is seen exactly when the report document it came
with is seen (``documents.guard.visible``), so masking, confidentiality, withdrawal and the
patient's blocks reach the values as they reach the report. For the CDA rendering of a report
and, later, charts of a patient's values over time.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.audit.models import AuditAction
from carnet.documents import guard
from carnet.laboratory.models import LabResult


@dataclass(frozen=True)
class Result:
    """One result of a report: what was measured, the value, unit, range, flags and time."""

    code_system: str
    code: str
    display: str
    value_type: str
    value: str
    numeric_value: float | None
    unit: str
    reference_range: str
    abnormal_flags: tuple[str, ...]
    status: str
    observed_at: dt.datetime | None


def report_results(
    session: Session, dossier: OpenedDossier, document_id: uuid.UUID
) -> list[Result]:
    """The results that came with report ``document_id``, in the laboratory's order.

    Serves a dossier opened to read documents (``READ_DOCUMENTS`` or ``RETRIEVE_DOCUMENTS``).
    Raises ``AccessDenied`` — audited, and the same as for a missing document — when the policy
    does not let the actor see the report; a document that is not a report has no results.
    The read is recorded on the dossier's trail.
    """
    dossier.require(purposes.READ_DOCUMENTS, purposes.RETRIEVE_DOCUMENTS)
    document = guard.visible(session, dossier, document_id, dossier.purpose.audit)
    rows = session.scalars(
        select(LabResult)
        .where(LabResult.patient_id == dossier.patient_id, LabResult.document_id == document.id)
        .order_by(LabResult.sequence)
    )
    results = [
        Result(
            code_system=row.code_system,
            code=row.code,
            display=row.display,
            value_type=row.value_type,
            value=row.value,
            numeric_value=row.numeric_value,
            unit=row.unit,
            reference_range=row.reference_range,
            abnormal_flags=tuple(flag for flag in row.abnormal_flags.split(",") if flag),
            status=row.result_status,
            observed_at=row.observed_at,
        )
        for row in rows
    ]
    dossier.record(
        session,
        AuditAction.READ,
        entity_ids=[document.id],
        details={"resource": "laboratory-results", "count": len(results)},
    )
    return results
