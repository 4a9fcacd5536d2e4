"""Staff acting for a professional: France's CPE card ("carte de personnel d'établissement").

A medical secretary signs in as themselves (password and one-time code, their CPE card, or a
federated provider) and then acts for one professional who allowed them. The resulting
principal is that professional's, so the policy decides exactly as for the professional (same
profession, organisation and grants: never more), and carries the staff member as ``staff_id``:
tokens name them in the ``act`` claim (RFC 8693 section 4.1), the audit trail as the agent. What
staff may still not do as the professional (break the glass, attest a care contact) is refused
by the policy (``access.policy``), which names the rule.

Allowances are the professional's to give: ``carnet staff allow`` records them for the agency.
"""

from __future__ import annotations

import dataclasses
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.auth.errors import InvalidRequest, StaffNotAllowed, UnknownSubject
from carnet.auth.models import StaffDelegation
from carnet.auth.tokens import Principal
from carnet.clock import Clock
from carnet.directory.models import Profession, Professional
from carnet.directory.service import get_professional


def allow(
    session: Session,
    *,
    staff_id: uuid.UUID,
    professional_id: uuid.UUID,
    granted_by: str,
    clock: Clock,
) -> StaffDelegation:
    """Let the staff member ``staff_id`` act for ``professional_id``; idempotent.

    Raises ``InvalidRequest`` unless ``staff_id`` is an active staff entry of the directory and
    ``professional_id`` an active professional who is not staff.
    """
    staff = get_professional(session, staff_id)
    professional = get_professional(session, professional_id)
    if staff.profession is not Profession.STAFF or not staff.active:
        raise InvalidRequest("Only an active staff entry of the directory acts for a professional.")
    if professional.profession is Profession.STAFF or not professional.active:
        raise InvalidRequest("Staff act for an active health professional, not for other staff.")
    current = _active(session, staff_id, professional_id)
    if current is not None:
        return current
    delegation = StaffDelegation(
        staff_id=staff_id,
        professional_id=professional_id,
        granted_by=granted_by,
        created_at=clock.now(),
    )
    session.add(delegation)
    session.flush()
    return delegation


def revoke(
    session: Session, *, staff_id: uuid.UUID, professional_id: uuid.UUID, clock: Clock
) -> None:
    """End the allowance; tokens already issued stop at their next refresh.

    Raises ``StaffNotAllowed`` if there is none.
    """
    current = _active(session, staff_id, professional_id)
    if current is None:
        raise StaffNotAllowed("This staff member is not allowed to act for this professional.")
    current.revoked_at = clock.now()
    session.flush()


def professionals_for(session: Session, staff_id: uuid.UUID) -> list[Professional]:
    """The active professionals the staff member may act for, by name."""
    return list(
        session.scalars(
            select(Professional)
            .join(StaffDelegation, StaffDelegation.professional_id == Professional.id)
            .where(
                StaffDelegation.staff_id == staff_id,
                StaffDelegation.revoked_at.is_(None),
                Professional.active.is_(True),
            )
            .order_by(Professional.family, Professional.given, Professional.id)
        )
    )


def find(session: Session, identifier: str) -> Professional:
    """The directory entry with this identifier value (RPPS, CPE number, code médecin).

    Raises ``UnknownSubject`` if there is none, or if several systems share the value.
    """
    found = list(
        session.scalars(
            select(Professional).where(Professional.identifier_value == identifier.strip()).limit(2)
        )
    )
    if len(found) != 1:
        raise UnknownSubject(f"No single directory entry has the identifier {identifier!r}.")
    return found[0]


def is_staff(principal: Principal) -> bool:
    """Whether ``principal`` signed in as a staff member, not yet acting for anyone."""
    return (
        principal.kind is ActorKind.PROFESSIONAL
        and principal.profession == Profession.STAFF.value
        and principal.staff_id is None
    )


def act_for(session: Session, staff: Principal, professional_id: uuid.UUID) -> Principal:
    """The principal of the professional ``professional_id``, acted for by ``staff``.

    Keeps how the staff member authenticated (assurance, methods, time): the professional did
    not sign in. Raises ``StaffNotAllowed`` without an active allowance.
    """
    if not is_staff(staff) or staff.professional_id is None:
        raise StaffNotAllowed("Only staff act for a professional.")
    check_allowed(session, staff.professional_id, professional_id)
    professional = get_professional(session, professional_id)
    return dataclasses.replace(
        staff,
        subject=str(professional.id),
        professional_id=professional.id,
        organisation_id=professional.organisation_id,
        profession=professional.profession.value,
        staff_id=staff.professional_id,
    )


def check_allowed(session: Session, staff_id: uuid.UUID, professional_id: uuid.UUID) -> None:
    """Raise ``StaffNotAllowed`` unless the allowance stands and both are active."""
    staff = session.get(Professional, staff_id)
    professional = session.get(Professional, professional_id)
    if (
        staff is None
        or professional is None
        or not staff.active
        or not professional.active
        or _active(session, staff_id, professional_id) is None
    ):
        raise StaffNotAllowed("This staff member may not act for this professional.")


def _active(
    session: Session, staff_id: uuid.UUID, professional_id: uuid.UUID
) -> StaffDelegation | None:
    return session.scalar(
        select(StaffDelegation)
        .where(
            StaffDelegation.staff_id == staff_id,
            StaffDelegation.professional_id == professional_id,
            StaffDelegation.revoked_at.is_(None),
        )
        .limit(1)
    )
