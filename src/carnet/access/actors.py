"""Actors: who is acting, for whom, how strongly authenticated, and with which token scopes.

An ``Actor`` is built by a way in from a verified token (or by a job or the CLI for its own
system identity) and handed to every service that touches patient data. Services never trust
anything about the caller that is not in it.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field

from carnet.access.scopes import Scope
from carnet.audit.service import Agent


class ActorKind(enum.StrEnum):
    """The kinds of actor the policy knows."""

    PATIENT = "patient"
    PROFESSIONAL = "professional"
    FEEDING_SYSTEM = "feeding-system"
    OPERATOR = "operator"
    SECURITY_OFFICER = "security-officer"


class Assurance(enum.IntEnum):
    """How strongly the actor authenticated (eIDAS levels of assurance).

    Password alone is ``LOW``; password and one-time code is ``SUBSTANTIAL``; a professional card
    (or a citizen eID card) is ``HIGH``. Clinical content needs at least ``SUBSTANTIAL``.
    """

    LOW = 1
    SUBSTANTIAL = 2
    HIGH = 3

    @property
    def acr(self) -> str:
        """The ``acr`` claim value for this level."""
        return f"urn:carnet:loa:{self.name.lower()}"

    @classmethod
    def from_acr(cls, acr: str | None) -> Assurance:
        """Parse an ``acr`` claim; anything unknown counts as ``LOW``."""
        for level in cls:
            if acr == level.acr:
                return level
        return cls.LOW


STRONG = Assurance.SUBSTANTIAL


@dataclass(frozen=True)
class Actor:
    """Someone (or some system) acting on Carnet.

    - a patient: ``person_id`` is their own patient id; ``acting_for`` is the patient whose
      dossier they act on — themselves, or someone they represent (a minor, a protected adult);
    - a professional: ``professional_id``, ``profession`` and the ``organisation_id`` they act for;
    - a feeding system: ``organisation_id`` it publishes for, ``client_id`` its OAuth client, and
      ``professional_id`` when it acts for an identified professional;
    - an operator or security officer: ``subject`` only.
    """

    kind: ActorKind
    subject: str
    assurance: Assurance
    scopes: frozenset[Scope] = field(default_factory=frozenset)
    person_id: uuid.UUID | None = None
    acting_for: uuid.UUID | None = None
    professional_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    profession: str | None = None
    client_id: str | None = None
    token_id: str | None = None
    # The SMART launch context: ``patient/`` scopes apply to this patient only.
    launch_patient: uuid.UUID | None = None
    # Where the request came from, for the audit trail (set by the way in).
    network_address: str | None = None
    # A staff member (France's CPE card) acting for the professional ``professional_id``: the
    # policy decides as for the professional, minus what staff may never do; the audit trail
    # names the staff member as the agent.
    staff_id: uuid.UUID | None = None

    @property
    def is_strong(self) -> bool:
        """Whether the authentication is strong enough for clinical content."""
        return self.assurance >= STRONG

    @property
    def agent(self) -> Agent:
        """How the audit trail names this actor."""
        on_behalf_of = None
        if self.represents_someone_else:
            on_behalf_of = self.acting_for
        # People are named as FHIR references, whatever their token's ``sub`` looks like.
        subject = self.subject
        if self.kind is ActorKind.PATIENT and self.person_id is not None:
            subject = f"Patient/{self.person_id}"
        elif self.kind is ActorKind.PROFESSIONAL and self.staff_id is not None:
            # The staff member acted; ``professional_id`` (whose access it was) names for whom.
            subject = f"Practitioner/{self.staff_id}"
        elif self.kind is ActorKind.PROFESSIONAL and self.professional_id is not None:
            subject = f"Practitioner/{self.professional_id}"
        return Agent(
            kind=self.kind.value,
            subject=subject,
            professional_id=self.professional_id,
            organisation_id=self.organisation_id,
            profession=self.profession,
            on_behalf_of=on_behalf_of,
            client_id=self.client_id,
            network_address=self.network_address,
        )

    @property
    def represents_someone_else(self) -> bool:
        """A patient-kind actor acting on a dossier that is not their own."""
        return (
            self.kind is ActorKind.PATIENT
            and self.acting_for is not None
            and self.acting_for != self.person_id
        )
