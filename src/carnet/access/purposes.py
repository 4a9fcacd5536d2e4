"""The purposes a dossier is opened for, by name: what a way in asks at the door.

Each names the policy's action, the SMART scope the token must carry (if any) and the audit
action a refusal at the door is recorded as. A service ``require``s the purposes it serves, so
a dossier opened to read one document cannot be used to publish, nor one opened to search
metadata to fetch content under a narrower scope.
"""

from __future__ import annotations

from carnet.access.actors import Actor, ActorKind
from carnet.access.door import Purpose
from carnet.access.policy import Action
from carnet.access.scopes import Interaction
from carnet.audit.models import AuditAction

# Documents (MHD ITI-65/66/67/68, XDS.b ITI-41/18/43, the portals).
READ_DOCUMENTS = Purpose(
    "read a document's metadata",
    Action.READ_DOCUMENTS,
    AuditAction.READ,
    "DocumentReference",
    Interaction.READ,
)
FIND_DOCUMENTS = Purpose(
    "find documents",
    Action.READ_DOCUMENTS,
    AuditAction.SEARCH,
    "DocumentReference",
    Interaction.SEARCH,
)
FIND_SUBMISSION_SETS = Purpose(
    "find submission sets",
    Action.READ_DOCUMENTS,
    AuditAction.SEARCH,
    "List",
    Interaction.SEARCH,
)
RETRIEVE_DOCUMENTS = Purpose(
    "retrieve document content",
    Action.READ_DOCUMENTS,
    AuditAction.RETRIEVE,
    "Binary",
    Interaction.READ,
    alternative="DocumentReference",
)
PUBLISH_DOCUMENTS = Purpose(
    "publish documents",
    Action.PUBLISH,
    AuditAction.PUBLISH,
    "DocumentReference",
    Interaction.CREATE,
    tells_state=True,
)
REPLACE_DOCUMENT = Purpose(
    "replace a document",
    Action.PUBLISH,
    AuditAction.REPLACE,
    "DocumentReference",
    Interaction.CREATE,
    tells_state=True,
)
# Withdrawing a document as entered-in-error, or its author's change of its confidentiality
# or disclosure to the patient: its author's act.
MANAGE_DOCUMENT = Purpose(
    "withdraw a document",
    Action.MANAGE_DOCUMENT,
    AuditAction.STATUS_CHANGE,
    "DocumentReference",
    Interaction.UPDATE,
)
CHANGE_DOCUMENT_VISIBILITY = Purpose(
    "change who sees a document (its author)",
    Action.MANAGE_DOCUMENT,
    AuditAction.VISIBILITY_CHANGE,
    "DocumentReference",
    Interaction.UPDATE,
)
# The patient's (or representative's) choice of who sees any document they can see.
SET_DOCUMENT_VISIBILITY = Purpose(
    "set who sees a document (the patient)",
    Action.SET_VISIBILITY,
    AuditAction.VISIBILITY_CHANGE,
    "DocumentReference",
    Interaction.UPDATE,
)


def visibility_for(actor: Actor) -> Purpose:
    """The purpose an actor changes a document's visibility under: the patient (or their
    representative) as the dossier's owner, anyone else as the document's author."""
    if actor.kind is ActorKind.PATIENT:
        return SET_DOCUMENT_VISIBILITY
    return CHANGE_DOCUMENT_VISIBILITY


# Essential data (the emergency summary): each category's own SMART scope is checked by the
# service, on the FHIR resource the category is exchanged as.
READ_ESSENTIALS = Purpose("read essential data", Action.READ_DOCUMENTS, AuditAction.READ)
RECORD_ESSENTIALS = Purpose("record essential data", Action.PUBLISH, AuditAction.PUBLISH)
WITHDRAW_ESSENTIALS = Purpose("withdraw essential data", Action.PUBLISH, AuditAction.STATUS_CHANGE)

# Structured clinical facts (issue 20): each kind's own SMART scope (Observation,
# Immunization…) is checked by the service, as the essential data's are; each fact is then seen
# exactly when its source document is.
READ_CLINICAL_FACTS = Purpose("read clinical facts", Action.READ_DOCUMENTS, AuditAction.READ)
FIND_CLINICAL_FACTS = Purpose("find clinical facts", Action.READ_DOCUMENTS, AuditAction.SEARCH)

# The whole dossier for portability: the patient or their representative; its documents are
# then read and retrieved each under its own purpose (and scope).
EXPORT_DOSSIER = Purpose("export the dossier", Action.EXPORT, AuditAction.EXPORT)

# The patient's rules (the patient or their representative: ``Action.MANAGE_ACCESS``), each
# refusal recorded as the act it refused.
READ_ACCESS_RULES = Purpose("read who has access", Action.READ_ACCESS, AuditAction.ACCESS_OVERVIEW)
GRANT_ACCESS = Purpose("grant access", Action.MANAGE_ACCESS, AuditAction.GRANT)
REVOKE_ACCESS = Purpose("revoke a grant", Action.MANAGE_ACCESS, AuditAction.REVOKE)
BLOCK_PROFESSIONAL = Purpose("block a professional", Action.MANAGE_ACCESS, AuditAction.BLOCK)
LIFT_BLOCK = Purpose("lift a block", Action.MANAGE_ACCESS, AuditAction.UNBLOCK)
DESIGNATE_TREATING_DOCTOR = Purpose(
    "designate or end the treating doctor", Action.MANAGE_ACCESS, AuditAction.DESIGNATE
)
SET_ACCESS_PREFERENCES = Purpose(
    "set the standing access choices", Action.MANAGE_ACCESS, AuditAction.PREFERENCES
)
MASK_DOCUMENT = Purpose(
    "mask a document from one professional", Action.SET_VISIBILITY, AuditAction.MASK
)
ISSUE_CARE_CONTACT_CODE = Purpose(
    "issue a care-contact code", Action.MANAGE_ACCESS, AuditAction.CARE_CONTACT_CODE
)
ADJUST_CARE_CONTACT = Purpose(
    "adjust a care-contact window", Action.MANAGE_ACCESS, AuditAction.CARE_CONTACT
)
# The patient in person (never a representative: ``access.representation`` refuses them).
NAME_REPRESENTATIVE = Purpose(
    "name or end a representative", Action.MANAGE_ACCESS, AuditAction.REPRESENTATION
)

# Access that comes from care: the professional has no basis before the act, and needs none.
# The policy decides these actions on their own terms (the patient present, an emergency
# physician the patient did not oppose), never on an existing grant or contact.
RECORD_CARE_CONTACT = Purpose(
    "record a care contact", Action.RECORD_CARE_CONTACT, AuditAction.CARE_CONTACT
)
BREAK_GLASS = Purpose("break the glass", Action.BREAK_GLASS, AuditAction.BREAK_GLASS)

# The dossier's lifecycle at the patient's (or representative's) request, and its history.
MANAGE_DOSSIER = Purpose(
    "activate, oppose or close the dossier", Action.MANAGE_DOSSIER, AuditAction.LIFECYCLE
)

# The agency's acts from the registries (an operator): nothing of the dossier's content is read.
RECORD_REPRESENTATION = Purpose(
    "record or revoke a representation", Action.REGISTER, AuditAction.REPRESENTATION
)
ISSUE_INVITATION = Purpose("issue an invitation letter", Action.REGISTER, AuditAction.LIFECYCLE)

# The dossier's audit trail as its patient (or their representative) reads it.
READ_AUDIT_TRAIL = Purpose(
    "read the dossier's audit trail", Action.READ_ACCESS, AuditAction.AUDIT_SEARCH
)

# The patient's own notices (``access.notices``): reading them is reading about one's access.
READ_NOTICES = Purpose("read one's notices", Action.READ_ACCESS, AuditAction.READ)
SET_NOTICE_PREFERENCES = Purpose(
    "choose how notices come", Action.MANAGE_ACCESS, AuditAction.PREFERENCES
)
