"""Who may act for a patient: a parent until the child's majority, a guardian, a person named.

Parents and guardians are recorded, and revoked, by the agency from the insurer's registry (an
operator), never by either person. An adult patient may also name someone themself (a trusted
person, a grown-up child, a carer: ``name_representative``) and end that link whenever they
wish; a representative cannot name another. Whether one person represents another now, as the
access snapshot reads it, is ``guard.represents``; ``represented_patients`` lists everyone a
person may act for, ``representatives`` everyone who acts for the patient.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import OpenedDossier
from carnet.access.errors import AccessRuleNotFound, InvalidAccessRule
from carnet.access.models import Representation, RepresentationKind
from carnet.access.rules import keep_rule
from carnet.audit.models import AuditAction
from carnet.patients import service as patients
from carnet.patients.models import Patient

_AGE_OF_MAJORITY = 18
# One message whether the identifier is unknown or the birth date differs: naming someone
# must not tell the patient who is insured.
_NOBODY = "No insured person has this identifier and birth date."


@dataclass(frozen=True)
class Representative:
    """Someone who acts for the patient now, as the patient sees them on their access page."""

    id: uuid.UUID
    kind: RepresentationKind
    given: str
    family: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None

    @property
    def ended_by_patient(self) -> bool:
        """Whether the patient may end the link (only one they named themself)."""
        return self.kind is RepresentationKind.NAMED


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


def representatives(session: Session, dossier: OpenedDossier) -> list[Representative]:
    """Everyone who may act for the patient now, longest-standing first.

    Read with the patient's access rules (``rules.access_overview`` records the reading).
    """
    dossier.require(purposes.READ_ACCESS_RULES)
    now = dossier.clock.now()
    rows = session.execute(
        select(Representation, Patient.given, Patient.family)
        .join(Patient, Patient.id == Representation.representative_id)
        .where(
            Representation.patient_id == dossier.patient_id,
            Representation.revoked_at.is_(None),
            Representation.starts_at <= now,
            (Representation.ends_at.is_(None)) | (Representation.ends_at > now),
        )
        .order_by(Representation.starts_at, Representation.id)
    )
    return [
        Representative(row.id, row.kind, given, family, row.starts_at, row.ends_at)
        for row, given, family in rows
    ]


def name_representative(
    session: Session,
    dossier: OpenedDossier,
    *,
    system: str,
    value: str,
    birth_date: dt.date,
    ends_at: dt.datetime | None = None,
) -> Representation:
    """The patient names an adult, by national identifier and birth date, to act for them.

    The person then reaches the dossier as the patient's representative (same policy, every act
    on the trail under their own name), until ``ends_at`` or until the patient ends it. Naming
    someone who already acts for the patient changes the end of their link rather than adding
    a second one; a parent or guardian recorded by the agency is left as it is. Only the
    patient in person names: a representative acting for them is refused.
    """
    dossier.require(purposes.NAME_REPRESENTATIVE)
    if not dossier.access.is_patient:
        raise dossier.refuse("only the patient names a representative")
    now = dossier.clock.now()
    if ends_at is not None and ends_at <= now:
        raise InvalidAccessRule("The end date must be in the future.", field="ends")
    # A malformed identifier says so (``InvalidIdentifier``): that tells nobody's secret.
    representative_id = patients.find_patient_id(session, system, value)
    representative = (
        None if representative_id is None else patients.get_patient(session, representative_id)
    )
    if representative is None or representative.birth_date != birth_date:
        raise InvalidAccessRule(_NOBODY, field="identifier")
    if representative.id == dossier.patient_id:
        raise InvalidAccessRule("You cannot name yourself.", field="identifier")
    if _birthday(representative.birth_date, _AGE_OF_MAJORITY) > now.date():
        raise InvalidAccessRule("A representative must be of age.", field="birth_date")
    live = session.scalar(
        select(Representation).where(
            Representation.patient_id == dossier.patient_id,
            Representation.representative_id == representative.id,
            Representation.revoked_at.is_(None),
            (Representation.ends_at.is_(None)) | (Representation.ends_at > now),
        )
    )
    if live is not None and live.kind is not RepresentationKind.NAMED:
        raise InvalidAccessRule("This person already acts for you.", field="identifier")
    if live is None:
        live = Representation(
            patient_id=dossier.patient_id,
            id=uuid.uuid4(),
            representative_id=representative.id,
            kind=RepresentationKind.NAMED,
            starts_at=now,
            recorded_by=dossier.actor.subject,
        )
    live.ends_at = ends_at
    keep_rule(
        session,
        dossier,
        live,
        action=AuditAction.REPRESENTATION,
        details={
            "representative": representative.id,
            "kind": RepresentationKind.NAMED.value,
            "ends_at": ends_at,
        },
    )
    return live


def end_named_representative(
    session: Session, dossier: OpenedDossier, representation_id: uuid.UUID
) -> Representation:
    """The patient ends, now, a link they made; the row stays, stamped with who ended it.

    Raises ``AccessRuleNotFound`` unless a live link of this dossier, and
    ``InvalidAccessRule`` for a parent or guardian (the agency's to end, from the registry).
    """
    dossier.require(purposes.NAME_REPRESENTATIVE)
    if not dossier.access.is_patient:
        raise dossier.refuse("only the patient ends a representation they made")
    representation = session.get(Representation, (dossier.patient_id, representation_id))
    now = dossier.clock.now()
    if (
        representation is None
        or representation.revoked_at is not None
        or (representation.ends_at is not None and representation.ends_at <= now)
    ):
        raise AccessRuleNotFound("live representation")
    if representation.kind is not RepresentationKind.NAMED:
        raise InvalidAccessRule(
            "A parent or guardian is recorded from the insurer's registry: "
            "the agency ends it, not the portal.",
            field="representation",
        )
    representation.revoked_at = now
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
