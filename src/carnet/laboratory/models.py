"""Laboratory reports and their results, kept as structured data beside the report document.

Both tables lead their primary key with ``patient_id`` (the partition and shard key). A result
names the document it came with (``document_id``): the policy decides on that document — who
sees it, whether it is current — and its results follow, so a report masked, withdrawn or
superseded takes its values with it. Rows are never changed: a correction is a new document
with its own results; the earlier document is superseded.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Float, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id


class LabReport(Base):
    """One report (an OBR group) a feeding system published, by its order number.

    ``order_key`` is the laboratory's number for the order (``filler:…`` or ``placer:…``): a
    later message about the same order (a final after a preliminary, a correction, a
    cancellation) finds the report it changes by it.
    """

    __tablename__ = "lab_reports"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    document_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    feeding_system_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("feeding_systems.id"))
    order_key: Mapped[str] = mapped_column(String(160))
    service_code: Mapped[str] = mapped_column(String(100))
    service_system: Mapped[str] = mapped_column(String(100))
    service_text: Mapped[str] = mapped_column(String(300))
    # OBR-25: F final, P preliminary, C corrected, X cancelled…
    result_status: Mapped[str] = mapped_column(String(2))
    control_id: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "document_id"], ["documents.patient_id", "documents.id"]
        ),
        Index(None, "patient_id", "feeding_system_id", "order_key"),
    )


class LabResult(Base):
    """One result (an OBX) of a report: what, how much, in which unit, against which range.

    ``value`` is the result as the laboratory wrote it; ``numeric_value`` the same as a number
    when it is one (NM, or SN without comparator), for charting a patient's values over time.
    """

    __tablename__ = "lab_results"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column()
    sequence: Mapped[int] = mapped_column(Integer)
    code_system: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(100))
    display: Mapped[str] = mapped_column(String(300))
    value_type: Mapped[str] = mapped_column(String(3))
    value: Mapped[str] = mapped_column(Text)
    numeric_value: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(100))
    reference_range: Mapped[str] = mapped_column(String(200))
    # OBX-8, comma-separated (H, L, HH, LL, A, N…).
    abnormal_flags: Mapped[str] = mapped_column(String(60))
    # OBX-11: F final, P preliminary, C corrected…
    result_status: Mapped[str] = mapped_column(String(2))
    observed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "document_id"], ["documents.patient_id", "documents.id"]
        ),
        Index(None, "patient_id", "document_id"),
        # A patient's values of one test over time.
        Index(None, "patient_id", "code", "observed_at"),
    )
