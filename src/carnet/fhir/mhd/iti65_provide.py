"""ITI-65 Provide Document Bundle: ``POST /fhir`` with a transaction Bundle.

https://profiles.ihe.net/ITI/MHD/ITI-65.html — a SubmissionSet ``List``, one or more
``DocumentReference``s and their content (``Binary`` entries, or ``attachment.data`` inline).
All or nothing: the whole bundle is one transaction; one bad entry rejects it and nothing is
stored. A ``masterIdentifier`` already in the dossier is refused (409): Carnet does not answer a
repeated bundle idempotently, because a sender that re-sends must learn that its first attempt
succeeded. ``relatesTo.code = replaces`` supersedes the earlier document.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.catalogue import CLASS_SYSTEM
from carnet.clinical import extraction as clinical
from carnet.documents import formats, publication
from carnet.documents.metadata import DocumentMetadata, SubmissionSetMetadata
from carnet.documents.models import Confidentiality
from carnet.fhir.capability import ResourceSupport, SystemSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.ids import document_resource_id, parse_document_resource_id, parse_reference
from carnet.fhir.mapping.document_reference import version_id
from carnet.fhir.outcome import FhirResponse, outcome_response
from carnet.fhir.patient_reference import subject_patient
from carnet.fhir.validation import InvalidResource, read_json, validate
from carnet.storable import utc_instant
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (
    SystemSupport(interactions=("transaction",)),
    ResourceSupport(
        "DocumentReference",
        profiles=(
            "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.DocumentReference",
        ),
    ),
    ResourceSupport(
        "List",
        profiles=(
            "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.SubmissionSet",
        ),
    ),
)
_SUBMISSION_SET = "submissionset"
_SOURCE_ID = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId"
_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_MEDIA_TYPES = ("application/fhir+json", "application/json")


@router.post("", summary="ITI-65 Provide Document Bundle", tags=["MHD"])
async def provide_document_bundle(
    request: Request, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """Publish the bundle's documents in one transaction; answer a transaction-response."""
    if request.headers.get("content-type", "").split(";")[0].strip() not in _MEDIA_TYPES:
        return _unsupported_media_type()
    limit = platform.settings.max_document_bytes * 2
    body = await request.body()
    if len(body) > limit:
        raise InvalidResource(f"The bundle is over {limit} bytes.", field="Bundle")
    # Parsing and validating a bundle of several megabytes takes the worker tens of
    # milliseconds: off the event loop, with the publication, so other requests go on.
    response = await run_in_threadpool(_provide, platform, actor, body, base)
    return FhirResponse(response, status_code=200)


def _provide(platform: Any, actor: Actor, body: bytes, base: str) -> dict[str, Any]:
    data = read_json(body, root="Bundle")
    validate(data, expected="Bundle")
    return _publish(platform, actor, _read_bundle(data, base=base))


@dataclass
class _Document:
    index: int
    full_url: str
    resource: dict[str, Any]
    content: bytes


@dataclass
class _Bundle:
    submission_set: dict[str, Any]
    submission_set_index: int
    documents: list[_Document]
    subject: str


def _read_bundle(data: dict[str, Any], *, base: str) -> _Bundle:
    if data.get("type") != "transaction":
        raise InvalidResource("An ITI-65 bundle is a transaction.", field="Bundle.type")
    entries = data.get("entry") or []
    binaries: dict[str, bytes] = {}
    # MHD lets a FHIR document travel as a Bundle entry of its own, which the attachment names.
    embedded: dict[str, bytes] = {}
    lists: list[tuple[int, dict[str, Any]]] = []
    references: list[tuple[int, str, dict[str, Any]]] = []
    for index, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        full_url = entry.get("fullUrl") or ""
        if kind == "Binary":
            binaries[full_url] = _decode(
                resource.get("data"), f"Bundle.entry[{index}].resource.data"
            )
        elif kind == "List":
            lists.append((index, resource))
        elif kind == "DocumentReference":
            references.append((index, full_url, resource))
        elif kind == "Bundle" and full_url:
            embedded[full_url] = json.dumps(resource, ensure_ascii=False).encode()
    submission_sets = [(i, r) for i, r in lists if _is_submission_set(r)]
    if len(submission_sets) != 1:
        raise InvalidResource(
            "The bundle needs exactly one SubmissionSet List.", field="Bundle.entry"
        )
    if not references:
        raise InvalidResource("The bundle holds no DocumentReference.", field="Bundle.entry")
    set_index, submission_set = submission_sets[0]
    subjects = {_subject(r, f"Bundle.entry[{i}].resource", base) for i, _, r in references}
    subjects.add(_subject(submission_set, f"Bundle.entry[{set_index}].resource", base))
    if len(subjects) != 1:
        raise InvalidResource(
            "The SubmissionSet and all documents must be about the same patient.",
            field=f"Bundle.entry[{set_index}].resource.subject",
        )
    contents = {**embedded, **binaries}
    found = [
        _Document(i, url, resource, _content(resource, contents, i))
        for i, url, resource in references
    ]
    return _Bundle(submission_set, set_index, found, subjects.pop())


def _publish(platform: Any, actor: Actor, bundle: _Bundle) -> dict[str, Any]:
    with transaction(platform) as session:
        patient_id = _resolve_patient(session, bundle.subject)
        dossier = open_dossier(
            session, actor, patient_id, purposes.PUBLISH_DOCUMENTS, clock=platform.clock
        )
        submission, added = publication.submit(
            session,
            dossier,
            platform.store,
            submission_set=_submission_set(bundle),
            documents=[
                (_metadata(document, patient_id, platform.clock.now()), document.content)
                for document in bundle.documents
            ],
        )
        # A FHIR document's structured facts (issue 20), in the same transaction.
        clinical.record_facts(
            session, dossier, zip(added, (d.content for d in bundle.documents), strict=True)
        )
        entries = [{"response": {"status": "201 Created", "location": f"List/{submission.id}"}}]
        for document in added:
            resource_id = document_resource_id(patient_id, document.id)
            entries.append(
                {
                    "response": {
                        "status": "201 Created",
                        "location": (
                            f"DocumentReference/{resource_id}/_history/{version_id(document)}"
                        ),
                        "lastModified": document.updated_at.isoformat().replace("+00:00", "Z"),
                    }
                }
            )
            entries.append(
                {"response": {"status": "201 Created", "location": f"Binary/{resource_id}"}}
            )
    return {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}


def _resolve_patient(session: Session, subject: str) -> uuid.UUID:
    # ``subject`` is relative already (``_subject`` refused other servers' URLs).
    found = subject_patient(session, subject, base="", field="DocumentReference.subject")
    if found is None:
        raise AccessDenied("no patient with this identifier")
    return found


def _submission_set(bundle: _Bundle) -> SubmissionSetMetadata:
    resource = bundle.submission_set
    source_id = next(
        (
            extension.get("valueIdentifier", {}).get("value")
            for extension in resource.get("extension", [])
            if extension.get("url") == _SOURCE_ID
        ),
        None,
    )
    identifiers = resource.get("identifier") or []
    unique = next((i.get("value") for i in identifiers if i.get("use") == "usual"), None)
    return SubmissionSetMetadata(
        source_id=source_id or "urn:carnet:unknown-source",
        master_identifier=unique or next((i.get("value") for i in identifiers), None),
        title=resource.get("title"),
    )


def _metadata(document: _Document, patient_id: uuid.UUID, now: dt.datetime) -> DocumentMetadata:
    resource, path = document.resource, f"Bundle.entry[{document.index}].resource"
    status = resource.get("status")
    if status != "current":
        raise InvalidResource("A published document's status is current.", field=f"{path}.status")
    coding = _first_coding(resource.get("type"), f"{path}.type")
    attachment = resource["content"][0]["attachment"]
    # Refused here to name the attachment; the documents service refuses it for every way in.
    mismatch = formats.claimed_image_mismatch(attachment.get("contentType") or "", document.content)
    if mismatch is not None:
        raise InvalidResource(mismatch, field=f"{path}.content[0].attachment.contentType")
    expected_size = attachment.get("size")
    _check_hash(attachment.get("hash"), document.content, f"{path}.content[0].attachment.hash")
    if expected_size is not None and expected_size != len(document.content):
        raise InvalidResource(
            f"attachment.size says {expected_size} bytes; the content has {len(document.content)}.",
            field=f"{path}.content[0].attachment.size",
        )
    context = resource.get("context") or {}
    period = context.get("period") or {}
    return DocumentMetadata(
        type_system=coding.get("system", ""),
        type_code=coding.get("code", ""),
        title=attachment.get("title")
        or resource.get("description")
        or coding.get("display")
        or "Document",
        mime_type=attachment.get("contentType") or "",
        created_at=_instant(
            now,
            attachment.get("creation") or resource.get("date"),
            f"{path}.content[0].attachment.creation",
        ),
        master_identifier=(resource.get("masterIdentifier") or {}).get("value"),
        class_code=_class_code(resource, path),
        format_code=(resource["content"][0].get("format") or {}).get("code"),
        language=attachment.get("language"),
        service_start=_optional_instant(period.get("start"), f"{path}.context.period.start"),
        service_end=_optional_instant(period.get("end"), f"{path}.context.period.end"),
        author_professional_id=_author(resource, "Practitioner"),
        facility_type=_code(context.get("facilityType")),
        practice_setting=_code(context.get("practiceSetting")),
        confidentiality=_confidentiality(resource, path),
        source_system=None,
        expected_size=expected_size,
        replaces_id=_replaces(resource, path, patient_id),
    )


def _check_hash(declared: str | None, content: bytes, path: str) -> None:
    # FHIR R4 Attachment.hash is the base64 SHA-1 of the data (not a choice of ours).
    if declared and base64.b64decode(declared) != hashlib.sha1(content).digest():  # noqa: S324
        raise InvalidResource("attachment.hash does not match the content.", field=path)


def _content(resource: dict[str, Any], binaries: dict[str, bytes], index: int) -> bytes:
    path = f"Bundle.entry[{index}].resource.content[0].attachment"
    contents = resource.get("content") or []
    if not contents:
        raise InvalidResource(
            "A DocumentReference needs content.", field=f"Bundle.entry[{index}].resource.content"
        )
    attachment = contents[0].get("attachment") or {}
    if attachment.get("data"):
        return _decode(attachment["data"], f"{path}.data")
    url = attachment.get("url")
    if url in binaries:
        return binaries[url]
    raise InvalidResource(
        "attachment.url must name a Binary entry of the bundle (or give the data inline).",
        field=f"{path}.url",
    )


def _decode(data: Any, path: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise InvalidResource("The content is missing.", field=path)
    try:
        return base64.b64decode(data, validate=True)
    except ValueError as error:
        raise InvalidResource("The content is not valid base64.", field=path) from error


def _is_submission_set(resource: dict[str, Any]) -> bool:
    codings = (resource.get("code") or {}).get("coding") or []
    return any(coding.get("code") == _SUBMISSION_SET for coding in codings)


def _subject(resource: dict[str, Any], path: str, base: str) -> str:
    reference = (resource.get("subject") or {}).get("reference")
    if not reference:
        raise InvalidResource("The patient (subject) is missing.", field=f"{path}.subject")
    reference = str(reference)
    if reference.startswith(("http://", "https://")):
        # An absolute URL names a Patient of whichever server it points at: only Carnet's own
        # is one of its dossiers (another server's Patient/x is not Carnet's Patient/x).
        if not reference.startswith(f"{base}/Patient/"):
            raise InvalidResource(
                "The subject is a Patient of another server: reference a dossier of Carnet "
                "(Patient/<id> or Patient?identifier=system|value).",
                field=f"{path}.subject",
            )
        reference = reference.removeprefix(f"{base}/")
    return reference


def _first_coding(concept: Any, path: str) -> dict[str, Any]:
    codings = (concept or {}).get("coding") or []
    if not codings:
        raise InvalidResource("A coding is required.", field=path)
    return dict(codings[0])


def _class_code(resource: dict[str, Any], path: str) -> str | None:
    for category in resource.get("category") or []:
        for coding in category.get("coding") or []:
            if coding.get("system") == CLASS_SYSTEM:
                return str(coding.get("code"))
    return None


def _code(concept: Any) -> str | None:
    codings = (concept or {}).get("coding") or []
    return str(codings[0].get("code")) if codings else None


def _confidentiality(resource: dict[str, Any], path: str) -> Confidentiality:
    for label in resource.get("securityLabel") or []:
        for coding in label.get("coding") or []:
            if coding.get("system") == _CONFIDENTIALITY:
                try:
                    return Confidentiality(coding.get("code"))
                except ValueError as error:
                    raise InvalidResource(
                        "Confidentiality must be N, R or V.", field=f"{path}.securityLabel"
                    ) from error
    return Confidentiality.NORMAL


def _author(resource: dict[str, Any], kind: str) -> uuid.UUID | None:
    for author in resource.get("author") or []:
        reference = author.get("reference", "")
        if reference.startswith(f"{kind}/"):
            return parse_reference(reference, kind)
    return None


def _replaces(resource: dict[str, Any], path: str, patient_id: uuid.UUID) -> uuid.UUID | None:
    for index, relation in enumerate(resource.get("relatesTo") or []):
        if relation.get("code") != "replaces":
            continue
        reference = (relation.get("target") or {}).get("reference", "")
        ids = parse_document_resource_id(reference.rsplit("/", 1)[-1])
        if ids is None or ids[0] != patient_id:
            raise InvalidResource(
                "relatesTo.target must be a DocumentReference of this dossier.",
                field=f"{path}.relatesTo[{index}].target",
            )
        return ids[1]
    return None


def _instant(now: dt.datetime, value: Any, path: str) -> dt.datetime:
    # MHD Minimal makes the creation time optional; without one, the document dates from its
    # submission (XDS would have required it).
    parsed = _optional_instant(value, path)
    return parsed if parsed is not None else now


def _optional_instant(value: Any, path: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidResource(f"{value!r} is not a FHIR dateTime.", field=path) from error
    return utc_instant(parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC), field=path)


def _unsupported_media_type() -> JSONResponse:
    return outcome_response(415, "Send the bundle as application/fhir+json.", code="not-supported")
