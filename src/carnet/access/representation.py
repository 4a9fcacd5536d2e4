"""Who may act for a patient: a parent until the child's majority, a guardian.

Representations are recorded, and revoked, by the agency from the insurer's registry (an
operator), never by either person. Whether one person represents another now, as the access
snapshot reads it, is ``guard.represents``; ``represented_patients`` lists everyone a person
may act for.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.access.errors import AccessRuleNotFound, InvalidAccessRule
from carnet.access.models import Representation, RepresentationKind
from carnet.access.rules import keep_rule
from carnet.audit.models import AuditAction
from carnet.patients import service as patients

_AGE_OF_MAJORITY = 18


def represented_patients(  # patient-data: the sign-in's own list
    session: Session, representative_id: uuid.UUID, *, now: dt.datetime
) -> list[uuid.UUID]:
    """The patients this person may currently act for (not counting themself)."""
    return list(
        session.scalars(
            select(Representation.patient_id).where(
                Representation.representative_id == representative_id,
                Representation.revoked_at.is_(None),
                Representation.starts_at <= now,
                (Representation.ends_at.is_(None)) | (Representation.ends_at > now),
            )
        )
    )


def record_representation(
    session: Session,
    dossier: OpenedDossier,
    representative_id: uuid.UUID,
    *,
    kind: RepresentationKind,
    ends_at: dt.datetime | None = None,
) -> Representation:
    """Link a representative to a patient; a parent's link ends at the child's majority.

    Recorded by the agency from the insurer's registry (an operator, ``Action.REGISTER``), not
    by either person.
    """
    dossier.require(purposes.RECORD_REPRESENTATION)
    patient_id = dossier.patient_id
    if representative_id == patient_id:
        raise InvalidAccessRule("A patient cannot represent themself.", field="representative")
    patient = patients.get_patient(session, patient_id)
    patients.get_patient(session, representative_id)
    now = dossier.clock.now()
    if kind is RepresentationKind.PARENT:
        majority = _birthday(patient.birth_date, _AGE_OF_MAJORITY)
        if majority <= now.date():
            raise InvalidAccessRule(
                "The patient is of age: a parent no longer represents them.", field="kind"
            )
        majority_at = dt.datetime.combine(majority, dt.time(), tzinfo=dt.UTC)
        ends_at = min(ends_at, majority_at) if ends_at else majority_at
    representation = Representation(
        patient_id=patient_id,
        id=uuid.uuid4(),
        representative_id=representative_id,
        kind=kind,
        starts_at=now,
        ends_at=ends_at,
        recorded_by=dossier.actor.subject,
    )
    keep_rule(
        session,
        dossier,
        representation,
        action=AuditAction.REPRESENTATION,
        details={"representative": representative_id, "kind": kind.value, "ends_at": ends_at},
    )
    return representation


def revoke_representation(
    session: Session, dossier: OpenedDossier, representation_id: uuid.UUID
) -> Representation:
    """End a representation now (a guardianship lifted, a parent's authority withdrawn).

    Recorded by the agency (an operator), as the link itself was; the row stays, stamped with
    who ended it and when. Raises ``AccessRuleNotFound`` unless the link is live.
    """
    dossier.require(purposes.RECORD_REPRESENTATION)
    representation = session.get(Representation, (dossier.patient_id, representation_id))
    if representation is None or representation.revoked_at is not None:
        raise AccessRuleNotFound("live representation")
    representation.revoked_at = dossier.clock.now()
    representation.revoked_by = dossier.actor.subject
    session.flush()
    dossier.record(
        session,
        AuditAction.REPRESENTATION,
        entity_ids=[representation.id],
        details={"representative": representation.representative_id, "revoked": True},
    )
    return representation


def _birthday(born: dt.date, years: int) -> dt.date:
    try:
        return born.replace(year=born.year + years)
    except ValueError:  # born on 29 February
        return born.replace(year=born.year + years, day=28)
