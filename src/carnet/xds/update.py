"""ITI-57 Update Document Set: a document's status and confidentiality changed after publication.

IHE ITI TF-2b 3.57 (XDS Metadata Update). The two operations national systems use — the French
DMP masks and unmasks documents with them — are served:

* **status**: an ``UpdateAvailabilityStatus`` association from the submission set to a document,
  ``OriginalStatus`` Approved, ``NewStatus`` Deprecated: the author withdraws the document
  (``documents.visibility.mark_entered_in_error``; it stays in the dossier, Deprecated);
* **a new version of a DocumentEntry** (``lid`` naming the document, the submission set's
  ``HasMember`` to it): its confidentiality codes are applied — the HL7 level (N, R, V) and the
  DMP's ``MASQUE_PS`` (masked from professionals: the patient's choice) and
  ``INVISIBLE_PATIENT`` (held back from the patient until disclosed: only removed, by its
  author) — through ``documents.visibility`` and so the policy. Carnet keeps one version of a
  document's metadata: the entry is updated in place and keeps its entryUUID.

Anything else a metadata update could change is refused naming the attribute
(``XDSMetadataUpdateOperationError``) rather than silently dropped. Every change goes through
the door for its purpose and is audited by the service; everything is checked before anything
changes, and the router's transaction makes it all or nothing. Refusals by the policy are raised
(``AccessError``) for the router to record in a transaction of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from lxml import etree
from sqlalchemy.orm import Session

from carnet.access import door, purposes
from carnet.access.actors import Actor
from carnet.clock import Clock
from carnet.documents import reading, visibility
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.xds import mapping
from carnet.xds import registry_reads as reads
from carnet.xds import vocabulary as v
from carnet.xds.errors import (
    PATIENT_ID_DOES_NOT_MATCH,
    UNRESOLVED_REFERENCE,
    XdsRefusal,
    registry_response,
)
from carnet.xds.query_parameters import QueryRefused

UPDATE_OPERATION_ERROR = "XDSMetadataUpdateOperationError"
UPDATE_ERROR = "XDSMetadataUpdateError"
_LEVELS = {level.value: level for level in Confidentiality}


@dataclass(frozen=True)
class _Change:
    """What one request changes on one document."""

    document_id: uuid.UUID
    deprecate: bool = False
    confidentiality: Confidentiality | None = None
    masked: bool | None = None
    hidden: bool | None = None


def handle(
    session: Session, actor: Actor, request: etree._Element, *, clock: Clock
) -> etree._Element:
    """Apply a metadata update; answer a ``RegistryResponse`` Success.

    Raises ``XdsRefusal`` for a request Carnet cannot apply (with its IHE code and the object
    at fault), and the access and documents domains' errors for the router to word.
    """
    if request.tag != f"{{{v.LCM}}}SubmitObjectsRequest":
        raise XdsRefusal(UPDATE_ERROR, "The body must be an lcm:SubmitObjectsRequest.")
    listing = request.find(v.rim("RegistryObjectList"))
    if listing is None:
        raise XdsRefusal(UPDATE_ERROR, "The request holds no rim:RegistryObjectList.")
    submission_sets = [
        p for p in listing.iterfind(v.rim("RegistryPackage")) if _is_submission_set(p)
    ]
    if len(submission_sets) != 1:
        raise XdsRefusal(UPDATE_ERROR, "A metadata update holds exactly one SubmissionSet.")
    submission_set = submission_sets[0]
    changes = _status_changes(listing, submission_set) + _entry_changes(listing, submission_set)
    if not changes:
        raise XdsRefusal(UPDATE_ERROR, "The request changes nothing Carnet can update.")
    try:
        patient_id = reads.located(session, entry_ids=[c.document_id for c in changes])
    except QueryRefused as refused:
        raise XdsRefusal(refused.code, refused.context, refused.location) from None
    if patient_id is None:
        raise XdsRefusal(
            UNRESOLVED_REFERENCE, "No such document.", f"urn:uuid:{changes[0].document_id}"
        )
    _check_patient(session, submission_set, patient_id)
    for change in changes:
        _apply(session, actor, patient_id, change, clock)
    return registry_response()


def _status_changes(listing: etree._Element, submission_set: etree._Element) -> list[_Change]:
    changes = []
    for association in listing.iterfind(v.rim("Association")):
        if association.get("associationType") != v.UPDATE_AVAILABILITY_STATUS:
            continue
        where = association.get("id", "")
        if association.get("sourceObject") != submission_set.get("id"):
            raise XdsRefusal(
                UPDATE_ERROR, "A status update is sourced at the SubmissionSet.", where
            )
        slots = _slots(association)
        original, new = slots.get("OriginalStatus", [""])[0], slots.get("NewStatus", [""])[0]
        if (original, new) != (v.APPROVED, v.DEPRECATED):
            raise XdsRefusal(
                UPDATE_OPERATION_ERROR,
                "Carnet changes a document's status only from Approved to Deprecated.",
                where,
            )
        changes.append(_Change(_uuid(association.get("targetObject"), where), deprecate=True))
    return changes


def _entry_changes(listing: etree._Element, submission_set: etree._Element) -> list[_Change]:
    members = {
        a.get("targetObject")
        for a in listing.iterfind(v.rim("Association"))
        if a.get("associationType") == v.HAS_MEMBER
        and a.get("sourceObject") == submission_set.get("id")
    }
    changes = []
    for entry in listing.iterfind(v.rim("ExtrinsicObject")):
        where = entry.get("id", "")
        if where not in members:
            raise XdsRefusal(
                UPDATE_ERROR,
                "A DocumentEntry of an update is a member of its SubmissionSet.",
                where,
            )
        if not entry.get("lid") or entry.get("lid") == where:
            # A new entry with its own logical id is a new document: that is ITI-41's to publish.
            raise XdsRefusal(
                UPDATE_OPERATION_ERROR, "An updated DocumentEntry names its document by lid.", where
            )
        codes = [
            (c.get("nodeRepresentation", ""), _slots(c).get("codingScheme", [""])[0])
            for c in entry.iterfind(v.rim("Classification"))
            if c.get("classificationScheme") == v.DOCUMENT_CONFIDENTIALITY_CODE
        ]
        levels = [
            _LEVELS[code]
            for code, scheme in codes
            if scheme == v.CONFIDENTIALITY_SCHEME and code in _LEVELS
        ]
        masks = {code for code, scheme in codes if scheme == v.DMP_CONFIDENTIALITY_SCHEME}
        unknown = [
            code
            for code, scheme in codes
            if not (scheme == v.CONFIDENTIALITY_SCHEME and code in _LEVELS)
            and not (
                scheme == v.DMP_CONFIDENTIALITY_SCHEME
                and code in (v.MASKED_FROM_PROFESSIONALS, v.HIDDEN_FROM_PATIENT)
            )
        ]
        if unknown or len(levels) != 1:
            raise XdsRefusal(
                UPDATE_OPERATION_ERROR,
                "A DocumentEntry has one HL7 confidentiality (N, R, V) and may carry MASQUE_PS "
                f"or INVISIBLE_PATIENT{f'; not {unknown[0]}' if unknown else ''}.",
                where,
            )
        changes.append(
            _Change(
                _uuid(entry.get("lid"), where),
                confidentiality=levels[0],
                masked=v.MASKED_FROM_PROFESSIONALS in masks,
                hidden=v.HIDDEN_FROM_PATIENT in masks,
            )
        )
    return changes


def _apply(
    session: Session, actor: Actor, patient_id: uuid.UUID, change: _Change, clock: Clock
) -> None:
    """One change through the door and the documents' services (the only calls they get here)."""
    if change.deprecate:
        dossier = door.open_dossier(
            session, actor, patient_id, purposes.MANAGE_DOCUMENT, clock=clock
        )
        visibility.mark_entered_in_error(session, dossier, change.document_id)
        return
    current = _current(session, actor, patient_id, change.document_id, clock)
    if current.status is not DocumentStatus.CURRENT:
        raise XdsRefusal(
            UPDATE_OPERATION_ERROR,
            "Only an Approved document's metadata is updated.",
            f"urn:uuid:{change.document_id}",
        )
    if change.hidden and not current.hidden_from_patient:
        raise XdsRefusal(
            UPDATE_OPERATION_ERROR,
            "A document shown to the patient is not hidden from them again (INVISIBLE_PATIENT).",
            f"urn:uuid:{change.document_id}",
        )
    confidentiality = (
        change.confidentiality if change.confidentiality is not current.confidentiality else None
    )
    masked = change.masked if change.masked != current.masked_from_professionals else None
    if confidentiality is not None or masked is not None:
        dossier = door.open_dossier(
            session, actor, patient_id, purposes.visibility_for(actor), clock=clock
        )
        visibility.set_visibility(
            session,
            dossier,
            change.document_id,
            confidentiality=confidentiality,
            masked_from_professionals=masked,
        )
    if current.hidden_from_patient and not change.hidden:
        dossier = door.open_dossier(
            session, actor, patient_id, purposes.CHANGE_DOCUMENT_VISIBILITY, clock=clock
        )
        visibility.disclose_to_patient(session, dossier, change.document_id)


def _current(
    session: Session, actor: Actor, patient_id: uuid.UUID, document_id: uuid.UUID, clock: Clock
) -> Document:
    """The document as the actor sees it now (a refusal looks like absence, and is audited)."""
    dossier = door.open_dossier(session, actor, patient_id, purposes.READ_DOCUMENTS, clock=clock)
    return reading.get_document(session, dossier, document_id)


def _check_patient(session: Session, submission_set: etree._Element, patient_id: uuid.UUID) -> None:
    for identifier in submission_set.iterfind(v.rim("ExternalIdentifier")):
        if identifier.get("identificationScheme") != v.SUBMISSION_SET_PATIENT_ID:
            continue
        named = mapping.parse_patient_id(identifier.get("value", ""))
        if named is None or reads.find_patient(session, named.system, named.value) != patient_id:
            raise XdsRefusal(
                PATIENT_ID_DOES_NOT_MATCH,
                "The SubmissionSet's patient is not the updated document's.",
                identifier.get("value", ""),
            )


def _is_submission_set(package: etree._Element) -> bool:
    return any(
        c.get("classificationNode") == v.SUBMISSION_SET_CLASSIFICATION
        for c in package.iterfind(v.rim("Classification"))
    )


def _slots(element: etree._Element) -> dict[str, list[str]]:
    return {
        slot.get("name", ""): [value.text or "" for value in slot.iter(v.rim("Value"))]
        for slot in element.iterfind(v.rim("Slot"))
    }


def _uuid(reference: str | None, where: str) -> uuid.UUID:
    found = mapping.parse_entry_uuid((reference or "").strip())
    if found is None:
        raise XdsRefusal(
            UNRESOLVED_REFERENCE, f"{reference!r} names no document of the registry.", where
        )
    return found
