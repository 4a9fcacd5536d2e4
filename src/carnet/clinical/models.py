"""Structured clinical facts, each kept with the document it was taken from.

One table for every kind of fact (``clinical_facts``), not one per kind, because what is asked
of them is the same whatever the kind: a patient's facts of a kind, by code, category and date,
filtered by the policy on their source document, paged and sorted; the medication list, the
vaccination record and the patient summary read several kinds at once. The columns searched are
common to every kind (code, category, status, the start and end of what it tells); the rest of
the fact is the FHIR resource as the source said it (``resource``, the elements Carnet keeps of
it), since each kind's details differ and are only ever shown, never searched.

The key leads with ``patient_id`` (the partition and shard key). ``document_id`` is a foreign
key to the document the fact came with: the policy decides on that document and the fact
follows, so a document masked, made secret, withdrawn or replaced takes its facts with it.
Rows are never changed: a new version of a document brings its own facts.

Laboratory results that arrive over HL7 v2 are not copied here: ``carnet.laboratory`` keeps them
(``lab_results``) and ``carnet.clinical.facts`` reads them as observations.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum


class FactKind(enum.StrEnum):
    """The kinds of fact, named by the FHIR resource each is exchanged as."""

    OBSERVATION = "Observation"
    IMMUNIZATION = "Immunization"
    ALLERGY = "AllergyIntolerance"
    CONDITION = "Condition"
    MEDICATION_STATEMENT = "MedicationStatement"
    MEDICATION_REQUEST = "MedicationRequest"
    MEDICATION_DISPENSE = "MedicationDispense"


class ClinicalFact(Base):
    """One fact of a document: what (``code``), of which sort (``category``), when, and the rest.

    ``started_at`` is when what the fact tells began or happened (an observation's effective
    time, a vaccination's date, a treatment's start, a condition's onset); ``ended_at`` when it
    stopped, if known. ``entry`` is where the fact sat in its document (``Bundle.entry[3]``).
    """

    __tablename__ = "clinical_facts"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    document_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[FactKind] = mapped_column(checked_enum(FactKind, "clinical_fact_kind"))
    entry: Mapped[int] = mapped_column(Integer)
    code_system: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(100))
    display: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    recorded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resource: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (
        ForeignKeyConstraint(
            ["patient_id", "document_id"], ["documents.patient_id", "documents.id"]
        ),
        Index(None, "patient_id", "document_id"),
        # A patient's facts of a kind by code over time (searches, the medication list).
        Index(None, "patient_id", "kind", "code", "started_at"),
        Index(None, "patient_id", "kind", "started_at"),
    )
