"""ITI-41 Provide and Register Document Set-b: publish documents, folders and associations.

IHE ITI TF-2 3.41 (and TF-3 4.2 for the metadata): an ``xdsb:ProvideAndRegisterDocumentSetRequest``
holds an ``lcm:SubmitObjectsRequest`` and one ``xdsb:Document`` per DocumentEntry, its bytes in
an MTOM part or inline base64. Carnet is the Document Repository and the Document Registry at
once: the submission is checked whole (every DocumentEntry has its document and every document
its DocumentEntry, the declared SHA-1 and size, one patient throughout, the catalogue's codes),
then published through the same services, policy and audit as ITI-65, in the caller's single
transaction — all or nothing.

The identifiers follow the MHD ↔ XDS mapping (``carnet.xds.mapping``): a DocumentEntry's
``uniqueId`` becomes its ``masterIdentifier``; an entryUUID the sender chose is kept as the
document's id, a symbolic one is replaced. ``RPLC`` and ``XFRM_RPLC`` supersede their target
(``replaces_id``, which MHD shows as ``relatesTo``); every association is kept with its id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections import Counter
from dataclasses import replace

from lxml import etree
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.access.door import OpenedDossier
from carnet.clock import Clock
from carnet.documents.errors import DuplicateDocument
from carnet.documents.metadata import DocumentMetadata, check_metadata
from carnet.documents.models import AssociationKind
from carnet.errors import CarnetError
from carnet.storage import DocumentStore
from carnet.xds import dossiers, ebrim, mapping
from carnet.xds.errors import (
    DUPLICATE_UNIQUE_ID_IN_MESSAGE,
    LCM,
    MISSING_DOCUMENT,
    MISSING_DOCUMENT_METADATA,
    NON_IDENTICAL_HASH,
    REGISTRY_METADATA_ERROR,
    REPOSITORY_METADATA_ERROR,
    UNKNOWN_PATIENT_ID,
    UNRESOLVED_REFERENCE,
    XDSB,
    XdsRefusal,
    registry_error,
    registry_response,
)
from carnet.xds.soap import Envelope, resolve_xop

ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
RESPONSE_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse"
_REPLACING = frozenset({AssociationKind.REPLACES, AssociationKind.TRANSFORMS_AND_REPLACES})


def provide(
    session: Session, store: DocumentStore, actor: Actor, envelope: Envelope, *, clock: Clock
) -> etree._Element:
    """Publish the submission; answer a ``RegistryResponse`` Success.

    Raises ``XdsRefusal`` (a fault in the submission, with its IHE code and the offending id)
    and the documents and access domains' errors (the router words them); nothing is stored
    then, the caller's transaction being rolled back.
    """
    request = envelope.body
    if request.tag != f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest":
        raise XdsRefusal(
            REGISTRY_METADATA_ERROR, "The body is not a ProvideAndRegisterDocumentSetRequest."
        )
    submission_request = request.find(f"{{{LCM}}}SubmitObjectsRequest")
    if submission_request is None:
        raise XdsRefusal(REGISTRY_METADATA_ERROR, "The request holds no lcm:SubmitObjectsRequest.")
    submission = ebrim.read_submission(submission_request)
    contents = _contents(request, envelope, submission)
    patient_cx = submission.submission_set.patient_id or ""
    identifier = mapping.parse_patient_id(patient_cx)
    if identifier is None:
        raise XdsRefusal(
            UNKNOWN_PATIENT_ID,
            "The patientId's assigning authority is not one Carnet holds dossiers under "
            f"(INS {mapping.FR_NIR_OID}, matricule {mapping.LU_MATRICULE_OID}).",
            patient_cx,
        )
    try:
        patient_id = dossiers.find_patient(session, identifier.system, identifier.value)
    except CarnetError as error:
        raise XdsRefusal(UNKNOWN_PATIENT_ID, str(error), patient_cx) from None
    if patient_id is None:
        raise XdsRefusal(UNKNOWN_PATIENT_ID, "No dossier holds this patientId.", patient_cx)
    ids = _assigned_ids(submission)
    associations = [_association(a, ids) for a in submission.associations]
    replaced = _replacements(associations)
    now = clock.now()
    documents: list[tuple[DocumentMetadata, bytes]] = []
    for entry in submission.documents:
        metadata = ebrim.document_metadata(entry, replaces_id=replaced.get(ids[entry.entry_id]))
        metadata = replace(metadata, entry_id=ids[entry.entry_id])
        _check(entry, metadata, contents[entry.entry_id], now)
        documents.append((metadata, contents[entry.entry_id]))
    dossier = dossiers.open_to_publish(session, actor, patient_id, clock=clock)
    set_metadata = replace(
        ebrim.submission_set_metadata(submission.submission_set),
        entry_id=ids[submission.submission_set.entry_id],
    )
    try:
        record, _ = dossiers.publish(
            session, dossier, store, submission_set=set_metadata, documents=documents
        )
    except DuplicateDocument as error:
        raise _duplicate(session, dossier, error, documents) from None
    dossiers.file(
        session,
        dossier,
        submission_set=record,
        new_folders=[_folder(folder, ids) for folder in submission.folders],
        associations=associations,
        submitted=set(ids.values()),
    )
    return registry_response()


def _contents(
    request: etree._Element, envelope: Envelope, submission: ebrim.Submission
) -> dict[str, bytes]:
    """Each DocumentEntry's bytes, by entry id (ITI TF-2 3.41.4.1.3: one ``Document`` each)."""
    sent: dict[str, bytes] = {}
    for element in request.iterfind(f"{{{XDSB}}}Document"):
        document_id = (element.get("id") or "").strip()
        if document_id in sent:
            raise XdsRefusal(
                DUPLICATE_UNIQUE_ID_IN_MESSAGE, "Two documents carry the same id.", document_id
            )
        sent[document_id] = resolve_xop(element, envelope)
    entries = {entry.entry_id for entry in submission.documents}
    for document_id in sent:
        if document_id not in entries:
            raise XdsRefusal(
                MISSING_DOCUMENT_METADATA,
                f"The document {document_id} has no DocumentEntry.",
                document_id,
            )
    for entry_id in entries:
        if entry_id not in sent:
            raise XdsRefusal(
                MISSING_DOCUMENT, f"The DocumentEntry {entry_id} has no document.", entry_id
            )
    unique_ids = Counter(entry.unique_id for entry in submission.documents)
    for unique_id, count in unique_ids.items():
        if count > 1:
            raise XdsRefusal(
                DUPLICATE_UNIQUE_ID_IN_MESSAGE,
                "Two DocumentEntries carry the same uniqueId.",
                unique_id or "",
            )
    return sent


def _check(
    entry: ebrim.DocumentEntry, metadata: DocumentMetadata, content: bytes, now: dt.datetime
) -> None:
    """The entry's own checks, before anything is stored, naming the entry at fault."""
    declared = ebrim.declared_sha1(entry)
    if declared is not None and declared != hashlib.sha1(content).hexdigest():  # noqa: S324
        # ITI TF-3 4.2.3.2.10: the hash slot is SHA-1 (a choice of the profile, not ours).
        raise XdsRefusal(
            REPOSITORY_METADATA_ERROR,
            "The hash does not match the document's SHA-1.",
            entry.entry_id,
        )
    if metadata.expected_size is not None and metadata.expected_size != len(content):
        # Before the other checks: a size that does not match is the repository's error to
        # report (ITI TF-3 4.2.4.1), whatever else the metadata gets wrong.
        raise XdsRefusal(
            REPOSITORY_METADATA_ERROR,
            f"The size says {metadata.expected_size} bytes; the document has {len(content)}.",
            entry.entry_id,
        )
    try:
        # The content's own checks (its format, a CDA's header) run in the publication.
        # The author is the publishing actor, set by the publication service; checked here is
        # what the entry itself says.
        check_metadata(replace(metadata, authored_by_patient=True), now)
    except CarnetError as error:
        raise XdsRefusal.of(registry_error(error, entry.entry_id)) from None


def _assigned_ids(submission: ebrim.Submission) -> dict[str, uuid.UUID]:
    """The id of each submitted object: its own ``urn:uuid:``, or a new one for a symbolic id."""
    objects = [
        submission.submission_set.entry_id,
        *(entry.entry_id for entry in submission.documents),
        *(folder.entry_id for folder in submission.folders),
        *(association.entry_id for association in submission.associations),
    ]
    return {entry_id: mapping.parse_entry_uuid(entry_id) or uuid.uuid4() for entry_id in objects}


def _resolve(reference: str, ids: dict[str, uuid.UUID], association_id: str) -> uuid.UUID:
    if reference in ids:
        return ids[reference]
    found = mapping.parse_entry_uuid(reference)
    if found is None:
        raise XdsRefusal(
            UNRESOLVED_REFERENCE,
            f"{reference} is neither an object of this submission nor a urn:uuid.",
            association_id,
        )
    return found


def _association(
    entry: ebrim.AssociationEntry, ids: dict[str, uuid.UUID]
) -> dossiers.AssociationMetadata:
    return dossiers.AssociationMetadata(
        kind=AssociationKind(entry.kind),
        source_id=_resolve(entry.source, ids, entry.entry_id),
        target_id=_resolve(entry.target, ids, entry.entry_id),
        entry_id=ids[entry.entry_id],
        submission_set_status=entry.submission_set_status,
    )


def _replacements(
    associations: list[dossiers.AssociationMetadata],
) -> dict[uuid.UUID, uuid.UUID]:
    """For each new document that replaces another (RPLC, XFRM_RPLC), the replaced one."""
    replaced: dict[uuid.UUID, uuid.UUID] = {}
    for association in associations:
        if association.kind not in _REPLACING:
            continue
        if association.source_id in replaced:
            raise XdsRefusal(
                REGISTRY_METADATA_ERROR,
                "A document replaces one document only.",
                mapping.entry_uuid(association.source_id),
            )
        replaced[association.source_id] = association.target_id
    return replaced


def _folder(entry: ebrim.FolderEntry, ids: dict[str, uuid.UUID]) -> dossiers.FolderMetadata:
    return dossiers.FolderMetadata(
        unique_id=entry.unique_id or "",
        title=entry.title,
        comments=entry.comments,
        codes=[
            {"code": code.code, "scheme": code.scheme, "display": code.display}
            for code in entry.codes
        ],
        entry_id=ids[entry.entry_id],
    )


def _duplicate(
    session: Session,
    dossier: OpenedDossier,
    error: DuplicateDocument,
    documents: list[tuple[DocumentMetadata, bytes]],
) -> XdsRefusal:
    """``XDSNonIdenticalHash`` when the uniqueId holds other content, else the duplicate."""
    for metadata, content in documents:
        if metadata.master_identifier != error.master_identifier:
            continue
        stored = dossiers.stored_sha256(session, dossier, error.master_identifier)
        if stored is not None and stored != hashlib.sha256(content).hexdigest():
            return XdsRefusal(
                NON_IDENTICAL_HASH,
                "A document with this uniqueId is already registered with other content.",
                mapping.unique_id(error.master_identifier),
            )
    found = registry_error(error)
    return XdsRefusal(found.code, found.context, mapping.unique_id(error.master_identifier))
