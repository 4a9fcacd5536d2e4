"""The policy decision point: one pure function per question, over plain facts.

Every way in and every job reaches patient data through the services, and the services ask
these functions before they read or write. They take what the rules say at this instant
(``DossierAccess``, loaded by ``access.guard.dossier_access``) and what a document is
(``DocumentFacts``), and return a ``Decision`` with its reason — the reason is for the audit
trail, never for the client: a denied request looks like a missing one.

Carnet combines the strongest rule of each national system:
confidentiality per document N/R/V (Switzerland), masking (France), care-contact windows
(Austria, Germany), patient grants and blocks (Luxembourg, Switzerland), an access matrix per
profession (France), break-the-glass with a reason, bounded in time, which the patient may oppose.
"""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass

from carnet.access.actors import Actor, ActorKind
from carnet.access.matrix import AccessMatrix
from carnet.access.models import GrantLevel
from carnet.access.scopes import Interaction, allows
from carnet.enums import Confidentiality, DocumentStatus
from carnet.patients.models import DossierState

# Staff acting as themselves (profession ``directory.models.Profession.STAFF``), before they
# chose a professional to act for: the policy never lets them reach a patient.
_STAFF = "staff"


class Action(enum.StrEnum):
    """What an actor asks to do with a dossier."""

    READ_DOCUMENTS = "read-documents"  # search, read metadata, retrieve content
    PUBLISH = "publish"
    MANAGE_DOCUMENT = "manage-document"  # replace, mark entered-in-error, disclose
    SET_VISIBILITY = "set-visibility"  # confidentiality and masking
    MANAGE_ACCESS = "manage-access"  # grants, blocks, designations, preferences
    READ_ACCESS = "read-access"  # who has access, until when
    BREAK_GLASS = "break-glass"
    RECORD_CARE_CONTACT = "record-care-contact"
    READ_DEMOGRAPHICS = "read-demographics"
    # Know that a patient exists, with name, birth date, sex and identifiers only: what a
    # professional needs to start a care relationship, a feeding system to address a document.
    IDENTIFY_PATIENT = "identify-patient"
    MANAGE_DOSSIER = "manage-dossier"  # activate, object, close, reopen
    EXPORT = "export"  # the whole dossier and its files, for portability
    # The agency's acts from the registries (who represents whom, a new invitation letter):
    # an operator's, who reads nothing of the dossier's content.
    REGISTER = "register"


class Basis(enum.StrEnum):
    """Why a professional may see a dossier at all."""

    TREATING_DOCTOR = "treating-doctor"
    GRANT_EXTENDED = "grant-extended"
    GRANT_NORMAL = "grant-normal"
    CARE_CONTACT = "care-contact"
    EMERGENCY = "emergency"
    EMERGENCY_WIDENED = "emergency-widened"


@dataclass(frozen=True)
class Decision:
    """The answer, with the rule that decided it."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True)
class DossierAccess:
    """What the patient's rules say about this actor on this dossier, at this instant."""

    patient_id: uuid.UUID
    dossier_state: DossierState
    is_patient: bool = False
    is_representative: bool = False
    blocked: bool = False
    treating_doctor: bool = False
    grant_level: GrantLevel | None = None
    care_contact_open: bool = False
    emergency_open: bool = False
    emergency_opposed: bool = False
    emergency_widened: bool = False
    masked_document_ids: frozenset[uuid.UUID] = frozenset()
    # Whether the audit trail already holds an allowed event of this professional on the
    # dossier: the patient is told of a first consultation, and only of that one.
    consulted_before: bool = False

    @property
    def acts_as_patient(self) -> bool:
        """The patient themself or their representative."""
        return self.is_patient or self.is_representative

    # Computed once per request (the snapshot is frozen), not once per document of a find.
    @functools.cached_property
    def bases(self) -> tuple[Basis, ...]:
        """Every live reason a professional may see this dossier, strongest first."""
        found = []
        if self.treating_doctor:
            found.append(Basis.TREATING_DOCTOR)
        if self.grant_level is GrantLevel.EXTENDED:
            found.append(Basis.GRANT_EXTENDED)
        if self.grant_level is GrantLevel.NORMAL:
            found.append(Basis.GRANT_NORMAL)
        if self.care_contact_open:
            found.append(Basis.CARE_CONTACT)
        if self.emergency_open and not self.emergency_opposed:
            found.append(Basis.EMERGENCY_WIDENED if self.emergency_widened else Basis.EMERGENCY)
        return tuple(found)

    @functools.cached_property
    def sees_restricted(self) -> bool:
        """Whether some basis reaches restricted (R) documents."""
        return bool(
            {Basis.TREATING_DOCTOR, Basis.GRANT_EXTENDED, Basis.EMERGENCY_WIDENED} & set(self.bases)
        )


@dataclass(frozen=True)
class DocumentFacts:
    """What the policy needs to know of a document."""

    document_id: uuid.UUID
    type_key: str
    status: DocumentStatus
    confidentiality: Confidentiality
    masked_from_professionals: bool
    hidden_from_patient: bool
    author_professional_id: uuid.UUID | None
    author_organisation_id: uuid.UUID | None
    authored_by_patient: bool


_ALLOW_CLINICAL_KINDS = (ActorKind.PATIENT, ActorKind.PROFESSIONAL, ActorKind.FEEDING_SYSTEM)

# A dossier its patient reads and exports: not yet activated, or active.
_OPEN = frozenset({DossierState.INVITED, DossierState.ACTIVE})


def _deny(reason: str) -> Decision:
    return Decision(False, reason)


def _allow(reason: str) -> Decision:
    return Decision(True, reason)


def scope_allows(
    actor: Actor, resource: str, interaction: Interaction, patient_id: uuid.UUID
) -> Decision:
    """Whether the token's SMART scopes permit this interaction (they only ever narrow).

    ``user/`` and ``system/`` scopes reach every dossier the actor may reach; ``patient/``
    scopes only the launch patient's (a patient's own token: their own dossier, or the one they
    launched as a representative). A token launched for someone the patient represents reaches
    that person's dossier and nothing else, whatever its scopes: the representative chose whose
    dossier the app gets (SMART App Launch, "launch/patient").
    """
    if actor.represents_someone_else and actor.launch_patient not in (None, patient_id):
        return _deny("the token was launched for another patient")
    if allows(actor.scopes, resource, interaction, context="user") or allows(
        actor.scopes, resource, interaction, context="system"
    ):
        return _allow("scope")
    launch = actor.launch_patient or (actor.acting_for if actor.kind is ActorKind.PATIENT else None)
    if launch == patient_id and allows(actor.scopes, resource, interaction, context="patient"):
        return _allow("patient scope")
    return _deny(f"no scope grants {interaction.value} on {resource}")


def decide_dossier(actor: Actor, access: DossierAccess, action: Action) -> Decision:
    """May ``actor`` perform ``action`` on this dossier (before any particular document)?"""
    if action is Action.REGISTER:
        if actor.kind is ActorKind.OPERATOR:
            return _allow("the agency, from the registries")
        return _deny("only the agency")
    if actor.kind not in _ALLOW_CLINICAL_KINDS:
        return _deny(f"a {actor.kind.value} never reaches patient data")
    if actor.kind is not ActorKind.FEEDING_SYSTEM and not actor.is_strong:
        return _deny("authentication too weak for patient data")
    if actor.kind is ActorKind.PATIENT:
        return _patient_dossier(access, action)
    if actor.kind is ActorKind.FEEDING_SYSTEM:
        return _feeding_system_dossier(actor, access, action)
    return _professional_dossier(actor, access, action)


def _patient_dossier(access: DossierAccess, action: Action) -> Decision:
    if not access.acts_as_patient:
        return _deny("not this patient nor their representative")
    who = "patient" if access.is_patient else "representative"
    if action is Action.MANAGE_DOSSIER:
        # Whatever its state, only the patient (or their representative) decides what becomes
        # of the dossier: an opposed or closed one is reopened at their request alone.
        return _allow(who)
    if action is Action.EXPORT and access.dossier_state not in _OPEN:
        # A closed dossier is out of everyone's reach but its authors': export comes before.
        return _deny(f"the dossier is {access.dossier_state}: nothing to export")
    if access.dossier_state is DossierState.OPPOSED:
        return _deny("the patient opposed the dossier: there is none")
    if access.dossier_state is DossierState.CLOSED and action is not Action.READ_ACCESS:
        return _deny("the dossier is closed")
    if action in (Action.PUBLISH, Action.SET_VISIBILITY, Action.MANAGE_DOCUMENT) and (
        access.dossier_state is not DossierState.ACTIVE
    ):
        return _deny("the dossier is not active")
    if action in (Action.BREAK_GLASS, Action.RECORD_CARE_CONTACT):
        return _deny(f"a {who} does not {action.value}")
    return _allow(who)


def _feeding_system_dossier(actor: Actor, access: DossierAccess, action: Action) -> Decision:
    if action in (Action.PUBLISH, Action.MANAGE_DOCUMENT):
        if access.dossier_state is not DossierState.ACTIVE:
            return _deny("the dossier is not active")
        return _allow("feeding system publishes to an active dossier")
    if action is Action.IDENTIFY_PATIENT and access.dossier_state is DossierState.ACTIVE:
        return _allow("feeding system identifies the patient it publishes for")
    if (
        action in (Action.READ_DOCUMENTS, Action.READ_DEMOGRAPHICS)
        and actor.professional_id is not None
    ):
        return _professional_dossier(actor, access, action)
    return _deny("a feeding system reads nothing on its own")


# What any professional (not blocked) may do on an active dossier, with the rule's reason.
_PROFESSIONAL_ON_ACTIVE_DOSSIER = {
    Action.PUBLISH: "professional publishes to an active dossier",
    Action.MANAGE_DOCUMENT: "professional manages documents they wrote",
    Action.RECORD_CARE_CONTACT: "care contact with the patient present",
    Action.IDENTIFY_PATIENT: "identifies a patient to start their care",
}


# What staff (France's CPE card) may not do even for the professional they act for: declaring
# an emergency and attesting that the patient is present are the professional's own acts and
# widen who sees the dossier (code de la santé publique, art. R. 1111-46: break-the-glass is the
# professional's, "sous sa responsabilité"; the CPE holder acts under the responsibility of a
# professional and with no more access than theirs, décret n° 2016-994).
_NOT_FOR_STAFF = {
    Action.BREAK_GLASS: "staff never break the glass, even for their professional",
    Action.RECORD_CARE_CONTACT: "staff never attest a care contact for their professional",
}


def _professional_dossier(actor: Actor, access: DossierAccess, action: Action) -> Decision:
    if actor.profession == _STAFF:
        return _deny("staff reach dossiers only for a professional who allowed them")
    if actor.staff_id is not None and action in _NOT_FOR_STAFF:
        return _deny(_NOT_FOR_STAFF[action])
    if access.blocked:
        return _deny("the patient blocked this professional")
    if access.dossier_state is not DossierState.ACTIVE:
        # Authors keep their own documents when a dossier closes: decided per document.
        if action is Action.READ_DOCUMENTS and access.dossier_state is DossierState.CLOSED:
            return _allow("closed dossier: own documents only")
        return _deny(f"the dossier is {access.dossier_state}")
    if action in _PROFESSIONAL_ON_ACTIVE_DOSSIER:
        return _allow(_PROFESSIONAL_ON_ACTIVE_DOSSIER[action])
    if action is Action.BREAK_GLASS:
        if actor.profession != "emergency-physician":
            return _deny("only emergency physicians may break the glass")
        if access.emergency_opposed:
            return _deny("the patient opposed emergency access")
        return _allow("emergency access")
    if action in (Action.READ_DOCUMENTS, Action.READ_DEMOGRAPHICS):
        bases = access.bases
        if bases:
            return _allow(bases[0].value)
        # Without a basis, a professional still sees what they wrote (decided per document),
        # but not who the patient is: demographics are patient data.
        if action is Action.READ_DEMOGRAPHICS:
            return _deny("no grant, care contact, designation or emergency access")
        return _allow("own documents only")
    return _deny(f"a professional does not {action.value}")


class PatientSearch(enum.StrEnum):
    """How closely a patient search names the person sought."""

    IDENTIFIER = "identifier"  # one national identifier, exactly
    IDENTITY = "identity"  # family name, given name and birth date, all three exactly
    BROWSE = "browse"  # anything looser: a list of people


def decide_patient_search(actor: Actor, search: PatientSearch) -> Decision:
    """May ``actor`` search patients this way at all? Each result is then decided on its own.

    A patient searches among themself and the people they represent. A professional identifies
    a patient by national identifier, or by family name, given name and birth date together —
    enough to start a care relationship, never enough to browse the population; a looser search
    reaches only the patients they already have a basis for. A feeding system addresses a
    document by the patient's identifier only. Operators and security officers find nobody.
    """
    if actor.kind is ActorKind.PATIENT:
        return _allow("own and represented dossiers")
    if actor.profession == _STAFF:
        return _deny("staff find patients only for a professional who allowed them")
    if actor.kind is ActorKind.PROFESSIONAL or (
        actor.kind is ActorKind.FEEDING_SYSTEM and actor.professional_id is not None
    ):
        if search is PatientSearch.BROWSE:
            return _allow("patients under a live basis only")
        return _allow("identifies a patient to start their care")
    if actor.kind is ActorKind.FEEDING_SYSTEM:
        if search is PatientSearch.IDENTIFIER:
            return _allow("feeding system addresses a document by identifier")
        return _deny("a feeding system finds patients by identifier only")
    return _deny(f"a {actor.kind.value} never reaches patient data")


def decide_document(
    actor: Actor, access: DossierAccess, document: DocumentFacts, matrix: AccessMatrix
) -> Decision:
    """May ``actor`` see this document (metadata and content)?

    Assumes ``decide_dossier(..., READ_DOCUMENTS)`` allowed; repeats nothing of it but blocks.
    """
    if actor.kind is ActorKind.PATIENT:
        return _patient_document(access, document)
    if actor.kind is ActorKind.PROFESSIONAL or (
        actor.kind is ActorKind.FEEDING_SYSTEM and actor.professional_id is not None
    ):
        return _professional_document(actor, access, document, matrix)
    return _deny(f"a {actor.kind.value} reads no document")


def _patient_document(access: DossierAccess, document: DocumentFacts) -> Decision:
    if not access.acts_as_patient or access.dossier_state not in _OPEN:
        return _deny("not the patient's open dossier")
    if document.status is DocumentStatus.ENTERED_IN_ERROR:
        return _deny("entered in error")
    if document.hidden_from_patient and not document.authored_by_patient:
        return _deny("hidden from the patient until disclosed by its author")
    return _allow("the patient's own document")


def _professional_document(
    actor: Actor, access: DossierAccess, document: DocumentFacts, matrix: AccessMatrix
) -> Decision:
    if access.blocked:
        return _deny("the patient blocked this professional")
    if (
        actor.professional_id is not None
        and document.author_professional_id == actor.professional_id
    ):
        return _allow("author")
    if access.dossier_state is not DossierState.ACTIVE:
        return _deny(f"the dossier is {access.dossier_state}: authors only")
    if not access.bases:
        return _deny("no grant, care contact, designation or emergency access")
    if document.status is DocumentStatus.ENTERED_IN_ERROR:
        return _deny("entered in error")
    if document.confidentiality is Confidentiality.VERY_RESTRICTED:
        return _deny("secret: the patient, their representatives and the author only")
    if document.confidentiality is Confidentiality.RESTRICTED and not access.sees_restricted:
        return _deny("restricted: needs extended access")
    if document.masked_from_professionals:
        return _deny("masked by the patient from all professionals")
    if document.document_id in access.masked_document_ids:
        return _deny("masked by the patient from this professional")
    if not matrix.permits(actor.profession, document.type_key):
        return _deny(f"a {actor.profession} may not see {document.type_key}")
    return _allow(access.bases[0].value)


def decide_manage(actor: Actor, access: DossierAccess, document: DocumentFacts) -> Decision:
    """May ``actor`` replace this document or mark it entered-in-error? Only its author may."""
    if actor.kind is ActorKind.PATIENT:
        if access.acts_as_patient and document.authored_by_patient:
            return _allow("the patient's own upload")
        return _deny("a patient manages only what they uploaded")
    if actor.kind is ActorKind.PROFESSIONAL:
        if access.blocked:
            return _deny("the patient blocked this professional")
        if actor.professional_id is not None and (
            document.author_professional_id == actor.professional_id
        ):
            return _allow("author")
        return _deny("only the author manages a document")
    if actor.kind is ActorKind.FEEDING_SYSTEM and actor.organisation_id is not None:
        if document.author_organisation_id == actor.organisation_id:
            return _allow("the authoring organisation's system")
        return _deny("a system manages only its organisation's documents")
    return _deny(f"a {actor.kind.value} manages no document")
