"""The dossier's history of states, the activation codes of invitation letters, job runs.

A dossier's current state lives on ``patients.models.Dossier``; every change of it is also kept
here, with who and when, so the history stays readable after later changes. Nothing here is
deleted by Carnet except spent codes' secrets, which are never stored in the first place.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from carnet.db import Base, UTCDateTime, new_id
from carnet.enums import checked_enum
from carnet.patients.models import DossierState


class DossierTransition(Base):
    """One change of a dossier's state: from what, to what, when, by whom, why."""

    __tablename__ = "dossier_transitions"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    from_state: Mapped[DossierState] = mapped_column(
        checked_enum(DossierState, "transition_from_state")
    )
    to_state: Mapped[DossierState] = mapped_column(
        checked_enum(DossierState, "transition_to_state")
    )
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # As the audit trail names the agent: "Patient/<id>", "job:automatic-opening", ...
    by: Mapped[str] = mapped_column(String(200))
    on_behalf_of: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index(None, "patient_id", "at"),)


class ActivationCode(Base):
    """The one-time code of an invitation letter, kept only as a salted scrypt hash.

    A code opens the dossier (the patient's first sign-in path); it expires, allows a few wrong
    attempts, and is spent once used. Issuing a new letter revokes the codes before it.
    """

    __tablename__ = "activation_codes"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    # "scrypt$<n>$<r>$<p>$<salt hex>$<hash hex>": the cost travels with the hash.
    code_hash: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    issued_by: Mapped[str] = mapped_column(String(200))


class JobRun(Base):
    """The last run of each scheduled job: where the next run's period starts.

    No patient data: one row per job name. Its row is also the job's lock, so two nodes do not
    run the same periodic job over the same period.
    """

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_report: Mapped[str] = mapped_column(Text, default="{}")
