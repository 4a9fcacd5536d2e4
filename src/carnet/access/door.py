"""The one door to a dossier: opened once per request, for a named purpose.

``open_dossier`` goes through, in this order, everything ``access.guard`` offers: the token's
scope for the purpose, the sign-in strength (refused before anything is read, so the answer
tells nothing of the dossier), the one-statement access snapshot, the policy's decision, and
the audited refusal. What it returns, an ``OpenedDossier``, is the capability every service
that reads or writes patient data takes instead of ``(actor, patient_id)``: the patient id, the
snapshot it was decided on, the purpose it was opened for (a service ``require``s its own), the
clock, and the ``record`` of what was done through it. Only ``open_dossier`` builds one, so a
service holding one knows the door was gone through.

Per document, ``documents.guard`` adds ``sees`` and ``require_manage`` over an opened dossier.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor
from carnet.access.errors import AccessDenied, InsufficientScope
from carnet.access.policy import Action, DossierAccess, decide_dossier, scope_allows
from carnet.access.scopes import Interaction
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.audit.service import Refusal
from carnet.clock import Clock
from carnet.patients.errors import DossierNotActive, PatientNotFound
from carnet.patients.models import DossierState

# What is recorded as a consultation (with its basis, and the patient's first-look notice)
# rather than as an action.
_CONSULTATIONS = frozenset({AuditAction.SEARCH, AuditAction.READ, AuditAction.RETRIEVE})


@dataclass(frozen=True)
class Purpose:
    """Why a dossier is opened: the policy's action, and what the door checks and records.

    ``resource`` (with ``interaction``) is the SMART scope the token must carry, if any;
    ``alternative`` a second resource whose scope suffices as well (content is read under
    ``Binary`` or ``DocumentReference``). ``tells_state``: a publishing purpose says that the
    dossier does not exist (``PatientNotFound``) or is not active (``DossierNotActive``) before
    the policy is asked — a feeding system must hear why its document was refused, where every
    other refusal looks like "not found".
    """

    name: str
    action: Action
    audit: AuditAction
    resource: str | None = None
    interaction: Interaction | None = None
    alternative: str | None = None
    tells_state: bool = False

    def __str__(self) -> str:
        return self.name


class WrongPurpose(RuntimeError):
    """A service was handed a dossier opened for another purpose: a bug in the way in."""


# Only ``open_dossier`` holds it: an ``OpenedDossier`` built anywhere else refuses to exist.
_DOOR = object()


@dataclass(frozen=True)
class OpenedDossier:
    """A dossier opened through the door: what the actor may do there, and its record."""

    actor: Actor
    patient_id: uuid.UUID
    access: DossierAccess
    purpose: Purpose
    clock: Clock
    key: object = field(repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.key is not _DOOR:
            raise TypeError("only carnet.access.door.open_dossier opens a dossier")

    def require(self, *purposes: Purpose) -> None:
        """Refuse (``WrongPurpose``) a dossier opened for none of ``purposes``."""
        if self.purpose not in purposes:
            wanted = ", ".join(str(purpose) for purpose in purposes)
            raise WrongPurpose(f"opened to {self.purpose}, needed to {wanted}")

    def refuse(
        self,
        reason: str,
        entity_ids: Iterable[uuid.UUID] = (),
        *,
        audit: AuditAction | None = None,
    ) -> AccessDenied:
        """An ``AccessDenied`` on this dossier carrying its audit record (as the purpose's)."""
        return access_guard.refuse(
            self.actor,
            audit or self.purpose.audit,
            reason,
            self.patient_id,
            tuple(entity_ids),
        )

    def record(
        self,
        session: Session,
        action: AuditAction,
        *,
        entity_ids: Iterable[uuid.UUID] = (),
        details: dict[str, object] | None = None,
    ) -> None:
        """Record what was allowed on the dossier's trail.

        A search, read or retrieval is a consultation: it names the basis it was allowed on and
        tells the patient of a professional's first (``access.guard.record_consultation``).
        """
        if action in _CONSULTATIONS:
            access_guard.record_consultation(
                session,
                self.actor,
                self.access,
                self.patient_id,
                action=action,
                clock=self.clock,
                entity_ids=entity_ids,
                details=details,
            )
            return
        audit_trail.record(
            session,
            agent=self.actor.agent,
            action=action,
            clock=self.clock,
            patient_id=self.patient_id,
            entity_ids=list(entity_ids),
            details=details,
        )


def open_dossier(
    session: Session, actor: Actor, patient_id: uuid.UUID, purpose: Purpose, *, clock: Clock
) -> OpenedDossier:
    """Open the dossier for ``purpose``, or refuse with what the audit trail must record.

    Raises ``InsufficientScope`` (the token's scopes), ``StrongerAuthenticationRequired`` (a
    human below the strong level, before anything is read) and ``AccessDenied`` (no such
    dossier, or the policy says no), each carrying its refusal for the way in to record in a
    transaction of its own; for a purpose that ``tells_state``, ``PatientNotFound`` and
    ``DossierNotActive`` before the policy is asked.
    """
    _check_scope(actor, patient_id, purpose)
    access_guard.require_strong(actor, patient_id=patient_id, audit=purpose.audit)
    try:
        # Looked up on the guard module when called: the benchmark's policy-off server
        # replaces the snapshot there.
        access = access_guard.dossier_access(session, actor, patient_id, now=clock.now())
    except PatientNotFound as error:
        if purpose.tells_state:
            raise
        raise access_guard.refuse(actor, purpose.audit, "no such dossier", patient_id) from error
    if purpose.tells_state and access.dossier_state is not DossierState.ACTIVE:
        raise DossierNotActive(access.dossier_state.value)
    decision = decide_dossier(actor, access, purpose.action)
    if not decision:
        raise access_guard.refuse(actor, purpose.audit, decision.reason, patient_id)
    return OpenedDossier(actor, patient_id, access, purpose, clock, key=_DOOR)


def _check_scope(actor: Actor, patient_id: uuid.UUID, purpose: Purpose) -> None:
    if purpose.resource is None or purpose.interaction is None:
        return
    resources = (purpose.resource, *([purpose.alternative] if purpose.alternative else []))
    if any(
        scope_allows(actor, resource, purpose.interaction, patient_id) for resource in resources
    ):
        return
    needed = f"{purpose.interaction.name.lower()} on {purpose.resource}"
    raise InsufficientScope(needed).for_audit(
        Refusal(actor.agent, purpose.audit, "scope", patient_id)
    )
