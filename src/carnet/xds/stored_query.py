"""ITI-18 Registry Stored Query: a patient's documents, submission sets, folders, associations.

IHE ITI TF-2a 3.18. ``handle`` reads an ``AdhocQueryRequest`` and answers an
``AdhocQueryResponse`` holding only what the caller may see, through the same door, policy and
audit trail as MHD's ITI-67: each query opens the patient's dossier (``access.door``) and lists
through ``documents.reading``, which decides document by document and records the consultation.

As on the FHIR paths, a refused query looks like an empty one — a dossier the caller may not
open, an unknown patient and a patient without documents all answer ``Success`` with nothing —
and the refusal is recorded. When the policy keeps some matching documents from a professional
with a basis of access, a warning says so without saying which (ITI-67's ``suppressed``).
Malformed requests answer ``Failure`` with the IHE code and the parameter at fault.

Carnet keeps no event codes, reference ids or submission-set content types it could match: a
query constraining them finds nothing, as it would in a registry where nothing carries them.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections.abc import Iterable

from lxml import etree
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.access.errors import AccessDenied, AccessError
from carnet.audit import service as audit_trail
from carnet.clock import Clock
from carnet.documents import reading
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.errors import CarnetError
from carnet.xds import mapping
from carnet.xds import registry_objects as objects
from carnet.xds import registry_reads as reads
from carnet.xds import vocabulary as v
from carnet.xds.query_parameters import (
    REGISTRY_ERROR,
    TOO_MANY_RESULTS,
    Code,
    QueryRefused,
    Request,
    StoredQuery,
    parse_request,
)
from carnet.xds.registry_reads import Found

UNKNOWN_PATIENT = "XDSUnknownPatientId"
WITHHELD = "Some documents of this dossier are not shown to you."
_STATUSES = {
    v.APPROVED: (DocumentStatus.CURRENT,),
    v.DEPRECATED: (DocumentStatus.SUPERSEDED, DocumentStatus.ENTERED_IN_ERROR),
}
_HL7_CONFIDENTIALITY = frozenset(level.value for level in Confidentiality)
# An id no document has: a constraint nothing can meet still goes through the door and the
# audit trail, as ITI-67 does for an ``_id`` that names nothing.
_NOTHING = (uuid.UUID(int=0),)


def handle(
    session: Session, actor: Actor, request: etree._Element, *, clock: Clock
) -> etree._Element:
    """Answer one stored query as ``actor`` sees the registry.

    Never raises for what the caller sent or may not see: a malformed request is a ``Failure``
    naming its parameter; a refusal by the policy an empty ``Success`` whose refusal is recorded
    on the audit trail in ``session`` (a query writes nothing before the policy decides, so the
    caller's transaction may commit it); a scope or sign-in too weak a ``Failure``.
    """
    try:
        parsed = parse_request(request)
        found = _run(session, actor, parsed, clock)
        if len(found.documents) > reads.MAX_DOCUMENTS:
            raise QueryRefused(
                TOO_MANY_RESULTS,
                f"More than {reads.MAX_DOCUMENTS} documents match: narrow the query.",
            )
    except QueryRefused as refused:
        return _failure(refused.code, refused.context, refused.location)
    except AccessError as refused:
        if refused.refusal is not None:
            audit_trail.record_refusal(session, refused.refusal, clock=clock)
        if isinstance(refused, AccessDenied):
            return _answer(session, Found(), leaf_class=True)
        return _failure(REGISTRY_ERROR, str(refused))
    except CarnetError as error:
        return _failure(REGISTRY_ERROR, str(error))
    return _answer(session, found, leaf_class=parsed.leaf_class)


# --- the queries -----------------------------------------------------------------------------


def _run(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    query = request.query
    if query is StoredQuery.FIND_DOCUMENTS:
        return _find_documents(session, actor, request, clock)
    if query is StoredQuery.FIND_SUBMISSION_SETS:
        return _find_submission_sets(session, actor, request, clock)
    if query is StoredQuery.FIND_FOLDERS:
        return _find_folders(session, actor, request, clock)
    if query is StoredQuery.GET_ALL:
        return _get_all(session, actor, request, clock)
    if query is StoredQuery.GET_DOCUMENTS:
        return _get_documents(session, actor, request, clock)
    return _from_graph(session, actor, request, clock)


def _find_documents(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    patient_id = _patient(session, request.single("$XDSDocumentEntryPatientId"))
    if patient_id is None:
        return Found()
    dossier = reads.open_to_find(session, actor, patient_id, clock=clock)
    page = reads.list_documents(session, dossier, _document_filter(request))
    documents = [d for d in page.documents if _document_matches(session, d, request)]
    return Found(patient_id, documents=documents, withheld=page.withheld)


def _find_submission_sets(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    patient_id = _patient(session, request.single("$XDSSubmissionSetPatientId"))
    if patient_id is None:
        return Found()
    sets = reads.list_submission_sets(session, actor, patient_id, clock=clock)
    if v.APPROVED not in request.statuses("$XDSSubmissionSetStatus"):
        sets = []
    sources = set(request.strings("$XDSSubmissionSetSourceId"))
    start = request.time("$XDSSubmissionSetSubmissionTimeFrom")
    end = request.time("$XDSSubmissionSetSubmissionTimeTo")
    authors = request.strings("$XDSSubmissionSetAuthorPerson")
    names = objects.Directory(session)
    sets = [
        s
        for s in sets
        if (not sources or s.source_id in sources)
        and (start is None or s.submitted_at >= start)
        and (end is None or s.submitted_at < end)
        and (not authors or _author_matches(names, s.author_professional_id, authors))
        # Carnet records no content type: a query naming one finds nothing.
        and "$XDSSubmissionSetContentType" not in request.values
    ]
    return Found(patient_id, submission_sets=sets)


def _find_folders(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    patient_id = _patient(session, request.single("$XDSFolderPatientId"))
    if patient_id is None:
        return Found()
    snapshot = reads.snapshot(session, actor, patient_id, clock=clock)
    start = request.time("$XDSFolderLastUpdateTimeFrom")
    end = request.time("$XDSFolderLastUpdateTimeTo")
    wanted = request.statuses("$XDSFolderStatus")
    codes = request.codes("$XDSFolderCodeList")
    folders = [
        f
        for f in snapshot.folders
        if f.status in wanted
        and (start is None or f.last_update_time >= start)
        and (end is None or f.last_update_time < end)
        and all(any(_same(c, code) for c in f.codes for code in group) for group in codes)
    ]
    return Found(patient_id, folders=folders, withheld=snapshot.withheld)


def _get_all(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    patient_id = _patient(session, request.single("$patientId"))
    if patient_id is None:
        return Found()
    snapshot = reads.snapshot(
        session,
        actor,
        patient_id,
        clock=clock,
        statuses=_document_statuses(request, "$XDSDocumentEntryStatus"),
    )
    snapshot.documents = [d for d in snapshot.documents if _document_matches(session, d, request)]
    if v.APPROVED not in request.statuses("$XDSSubmissionSetStatus"):
        snapshot.submission_sets = []
    folder_statuses = request.statuses("$XDSFolderStatus")
    snapshot.folders = [f for f in snapshot.folders if f.status in folder_statuses]
    snapshot.associations = _among(snapshot)
    return snapshot


def _get_documents(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    ids, unique_ids = _document_names(request)
    patient_id = reads.located(session, entry_ids=ids, document_identifiers=unique_ids)
    if patient_id is None:
        return Found()
    filters = reading.DocumentFilter(
        statuses=(), ids=ids, master_identifiers=unique_ids, limit=reads.MAX_DOCUMENTS
    )
    dossier = reads.open_to_find(session, actor, patient_id, clock=clock)
    page = reads.list_documents(session, dossier, filters)
    return Found(patient_id, documents=page.documents, withheld=page.withheld)


def _from_graph(session: Session, actor: Actor, request: Request, clock: Clock) -> Found:
    """The queries that follow associations: they read the dossier's whole graph of objects."""
    query = request.query
    ids, unique_ids = _document_names(request)
    set_ids = _uuids(request, "$XDSSubmissionSetEntryUUID")
    set_unique_ids = [
        mapping.master_identifier(u) for u in request.strings("$XDSSubmissionSetUniqueId")
    ]
    named = _uuids(request, "$uuid")
    folder_ids = _uuids(request, "$XDSFolderEntryUUID")
    folder_unique_ids = request.strings("$XDSFolderUniqueId")
    patient_id = reads.located(
        session,
        entry_ids=[*ids, *named, *set_ids, *folder_ids],
        document_identifiers=unique_ids,
        unique_ids=[*set_unique_ids, *folder_unique_ids],
    )
    if patient_id is None:
        return Found()
    graph = reads.snapshot(session, actor, patient_id, clock=clock)
    graph.associations = _among(graph)
    found = Found(patient_id, withheld=graph.withheld)
    documents = [d for d in graph.documents if d.id in ids or d.master_identifier in unique_ids]
    if query is StoredQuery.GET_DOCUMENTS_AND_ASSOCIATIONS:
        found.documents = documents
        touching = {d.id for d in documents}
        found.associations = [
            a for a in graph.associations if a.source in touching or a.target in touching
        ]
    elif query is StoredQuery.GET_ASSOCIATIONS:
        wanted = set(named)
        found.associations = [
            a for a in graph.associations if a.source in wanted or a.target in wanted
        ]
    elif query is StoredQuery.GET_SUBMISSION_SETS:
        wanted = set(named)
        sets = {s.id: s for s in graph.submission_sets}
        found.associations = [
            a
            for a in graph.associations
            if a.type == v.HAS_MEMBER and a.source in sets and a.target in wanted
        ]
        found.submission_sets = [
            sets[i] for i in dict.fromkeys(a.source for a in found.associations)
        ]
    elif query is StoredQuery.GET_SUBMISSION_SET_AND_CONTENTS:
        _submission_set_and_contents(
            graph, found, request, session, named=(set_ids, set_unique_ids)
        )
    elif query is StoredQuery.GET_FOLDER_AND_CONTENTS:
        _folder_and_contents(graph, found, request, session)
    elif query is StoredQuery.GET_FOLDERS:
        found.folders = _named_folders(graph, request)
    elif query is StoredQuery.GET_FOLDERS_FOR_DOCUMENT:
        targets = {d.id for d in documents}
        holders = {
            a.source for a in graph.associations if a.type == v.HAS_MEMBER and a.target in targets
        }
        found.folders = [f for f in graph.folders if f.id in holders]
    else:
        _related_documents(graph, found, request, documents)
    return found


def _submission_set_and_contents(
    graph: Found,
    found: Found,
    request: Request,
    session: Session,
    *,
    named: tuple[list[uuid.UUID], list[str]],
) -> None:
    set_ids, set_unique_ids = named
    found.submission_sets = [
        s for s in graph.submission_sets if s.id in set_ids or s.master_identifier in set_unique_ids
    ]
    if not found.submission_sets:
        return
    submission = found.submission_sets[0].id
    members = {
        a.target: a for a in graph.associations if a.source == submission and a.type == v.HAS_MEMBER
    }
    found.documents = [
        d for d in graph.documents if d.id in members and _document_matches(session, d, request)
    ]
    found.folders = [f for f in graph.folders if f.id in members]
    inside = {d.id for d in found.documents} | {f.id for f in found.folders}
    # The folder memberships this submission made, with the folders and documents they join.
    joined = [
        a
        for a in graph.associations
        if a.id in members and a.source in inside and a.target in inside
    ]
    inside |= {a.id for a in joined}
    found.associations = joined + [a for a in members.values() if a.target in inside]


def _folder_and_contents(graph: Found, found: Found, request: Request, session: Session) -> None:
    found.folders = _named_folders(graph, request)[:1]
    if not found.folders:
        return
    folder = found.folders[0].id
    members = {
        a.target: a for a in graph.associations if a.source == folder and a.type == v.HAS_MEMBER
    }
    found.documents = [
        d for d in graph.documents if d.id in members and _document_matches(session, d, request)
    ]
    found.associations = [members[d.id] for d in found.documents]


def _related_documents(
    graph: Found, found: Found, request: Request, documents: list[Document]
) -> None:
    if not documents:
        return
    if "$XDSDocumentEntryType" in request.values and v.STABLE_DOCUMENT not in request.strings(
        "$XDSDocumentEntryType"
    ):
        return
    origin = documents[0].id
    kinds = set(request.strings("$AssociationTypes"))
    by_id = {d.id: d for d in graph.documents}
    related = [
        a
        for a in graph.associations
        if a.type in kinds
        and origin in (a.source, a.target)
        and a.source in by_id
        and a.target in by_id
    ]
    if not related:
        return
    found.associations = related
    ids = dict.fromkeys([origin, *(a.source for a in related), *(a.target for a in related)])
    found.documents = [by_id[i] for i in ids]


# --- parameters ------------------------------------------------------------------------------


def _patient(session: Session, cx: str | None) -> uuid.UUID | None:
    """The patient a query's patient id names, or None (answered as an empty dossier)."""
    if cx is None or "^^^" not in cx or not cx.partition("^^^")[0].strip():
        raise QueryRefused(
            REGISTRY_ERROR, "The patient id must be a CX: id^^^&OID&ISO.", "patientId"
        )
    identifier = mapping.parse_patient_id(cx)
    if identifier is None:
        raise QueryRefused(
            UNKNOWN_PATIENT, "Carnet holds no dossiers under this assigning authority.", cx
        )
    return reads.find_patient(session, identifier.system, identifier.value)


def _document_names(request: Request) -> tuple[list[uuid.UUID], list[str]]:
    ids = _uuids(request, "$XDSDocumentEntryEntryUUID")
    unique_ids = [
        mapping.master_identifier(u) for u in request.strings("$XDSDocumentEntryUniqueId")
    ]
    return ids, unique_ids


def _uuids(request: Request, name: str) -> list[uuid.UUID]:
    found = []
    for text in request.strings(name):
        value = mapping.parse_entry_uuid(text.strip())
        if value is None:
            raise QueryRefused(REGISTRY_ERROR, f"{name}: {text!r} is not a urn:uuid.", name)
        found.append(value)
    return found


def _document_statuses(request: Request, name: str) -> tuple[DocumentStatus, ...]:
    return tuple(s for status in request.statuses(name) for s in _STATUSES.get(status, ()))


def _document_filter(request: Request) -> reading.DocumentFilter:
    statuses = _document_statuses(request, "$XDSDocumentEntryStatus")
    groups = request.codes("$XDSDocumentEntryConfidentialityCode")
    confidentialities: list[Confidentiality] = []
    if len(groups) == 1 and all(c.code in _HL7_CONFIDENTIALITY for c in groups[0]):
        confidentialities = [Confidentiality(c.code) for c in groups[0]]
    impossible = (
        not statuses
        # Carnet records no event codes (TF-3 4.2.3.2.8): no document carries the ones asked.
        or "$XDSDocumentEntryEventCodeList" in request.values
    )
    return reading.DocumentFilter(
        statuses=statuses or (DocumentStatus.CURRENT,),
        class_codes=_codes(request, "$XDSDocumentEntryClassCode"),
        type_codes=_codes(request, "$XDSDocumentEntryTypeCode"),
        practice_settings=_codes(request, "$XDSDocumentEntryPracticeSettingCode"),
        facility_types=_codes(request, "$XDSDocumentEntryHealthcareFacilityTypeCode"),
        format_codes=_codes(request, "$XDSDocumentEntryFormatCode"),
        confidentialities=confidentialities,
        created_from=request.time("$XDSDocumentEntryCreationTimeFrom"),
        created_to=request.time("$XDSDocumentEntryCreationTimeTo"),
        service_start_from=request.time("$XDSDocumentEntryServiceStartTimeFrom"),
        service_start_to=request.time("$XDSDocumentEntryServiceStartTimeTo"),
        service_end_from=request.time("$XDSDocumentEntryServiceStopTimeFrom"),
        service_end_to=request.time("$XDSDocumentEntryServiceStopTimeTo"),
        ids=_NOTHING if impossible else (),
        limit=reads.MAX_DOCUMENTS,
    )


def _codes(request: Request, name: str) -> list[str]:
    # Carnet keeps one coding scheme per attribute and stores the code alone: codes match by
    # their code (the scheme was checked to be given when the request was read).
    return [code.code for code in request.any_codes(name)]


def _document_matches(session: Session, document: Document, request: Request) -> bool:
    """The constraints the database query cannot express: AND-ed code groups, authors, type."""
    if "$XDSDocumentEntryType" in request.values and v.STABLE_DOCUMENT not in request.strings(
        "$XDSDocumentEntryType"
    ):
        return False
    carried = objects.confidentiality_codes(document)
    for group in request.codes("$XDSDocumentEntryConfidentialityCode"):
        if not any(_same(c, code) for c in carried for code in group):
            return False
    formats = _codes(request, "$XDSDocumentEntryFormatCode")
    if formats and document.format_code not in formats:
        return False
    authors = request.strings("$XDSDocumentEntryAuthorPerson")
    return not authors or _author_matches(
        objects.Directory(session), document.author_professional_id, authors
    )


def _same(carried: objects.Code, asked: Code) -> bool:
    return carried.code == asked.code


def _author_matches(
    names: objects.Directory, professional_id: uuid.UUID | None, patterns: Iterable[str]
) -> bool:
    # authorPerson is matched as SQL LIKE (% any run, _ one character) on the author's XCN.
    person = names.person(professional_id) if professional_id else None
    if person is None:
        return False
    xcn = person[0].lower()
    return any(
        fnmatch.fnmatchcase(xcn, pattern.lower().replace("%", "*").replace("_", "?"))
        for pattern in patterns
    )


def _named_folders(graph: Found, request: Request) -> list[objects.FolderEntry]:
    ids = _uuids(request, "$XDSFolderEntryUUID")
    unique_ids = set(request.strings("$XDSFolderUniqueId"))
    return [f for f in graph.folders if f.id in ids or f.unique_id in unique_ids]


def _among(found: Found) -> list[objects.AssociationEntry]:
    """The associations whose both ends are in ``found`` (an association may be an end too)."""
    present: set[uuid.UUID] = {d.id for d in found.documents}
    present |= {s.id for s in found.submission_sets} | {f.id for f in found.folders}
    kept: list[objects.AssociationEntry] = []
    pending = list(found.associations)
    # A submission set's HasMember to a folder membership needs that membership kept first.
    while True:
        ready = [a for a in pending if a.source in present and a.target in present]
        if not ready:
            return kept
        kept += ready
        present |= {a.id for a in ready}
        pending = [a for a in pending if a not in ready]


# --- the answer ------------------------------------------------------------------------------


def _answer(session: Session, found: Found, *, leaf_class: bool) -> etree._Element:
    response = etree.Element(
        f"{{{v.QUERY}}}AdhocQueryResponse",
        nsmap={"query": v.QUERY, "rim": v.RIM, "rs": v.RS},
    )
    response.set("status", v.SUCCESS)
    if found.withheld:
        _errors(response, [(REGISTRY_ERROR, WITHHELD, "")], severity=v.WARNING_SEVERITY)
    listing = etree.SubElement(response, v.rim("RegistryObjectList"))
    if not leaf_class:
        ids: list[uuid.UUID] = [
            *(d.id for d in found.documents),
            *(s.id for s in found.submission_sets),
            *(f.id for f in found.folders),
            *(a.id for a in found.associations),
        ]
        listing.extend(objects.object_ref(i) for i in ids)
        return response
    if found.patient_id is None:
        return response
    patient_cx = reads.patient_cx(session, found.patient_id)
    names = objects.Directory(session)
    listing.extend(objects.document_entry(d, patient_cx, names) for d in found.documents)
    listing.extend(
        objects.submission_set_package(s, patient_cx, names) for s in found.submission_sets
    )
    listing.extend(objects.folder_package(f, patient_cx) for f in found.folders)
    listing.extend(objects.association(a) for a in found.associations)
    return response


def _failure(code: str, context: str, location: str = "") -> etree._Element:
    response = etree.Element(
        f"{{{v.QUERY}}}AdhocQueryResponse", nsmap={"query": v.QUERY, "rim": v.RIM, "rs": v.RS}
    )
    response.set("status", v.FAILURE)
    _errors(response, [(code, context, location)], severity=v.ERROR_SEVERITY)
    etree.SubElement(response, v.rim("RegistryObjectList"))
    return response


def _errors(parent: etree._Element, errors: list[tuple[str, str, str]], *, severity: str) -> None:
    listing = etree.SubElement(parent, f"{{{v.RS}}}RegistryErrorList")
    listing.set("highestSeverity", severity)
    for code, context, location in errors:
        item = etree.SubElement(listing, f"{{{v.RS}}}RegistryError")
        item.set("errorCode", code)
        item.set("codeContext", context)
        item.set("severity", severity)
        item.set("location", location)


__all__ = ["handle"]
