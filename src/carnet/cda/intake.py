"""A CDA document received for a dossier: read, checked against its dossier and its metadata.

``check_received`` is what publication calls for every document (``documents.metadata``), by
whichever way it came in (ITI-65, ITI-41, the portals, an HL7 v2 MDM): content that presents
itself as a CDA document (an XML type, a ``ClinicalDocument`` root) is parsed safely, its header
read and its structure checked, its body's embedded file decoded, its patient matched to the
dossier's, and its header compared with the metadata sent with it. The first rule broken is
refused with a ``CdaRefused`` naming it; a refusal of disagreement names both values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, NoReturn

from carnet.catalogue import DocumentType, UnknownDocumentType, load_catalogue
from carnet.cda.body import EmbeddedFile, embedded_file
from carnet.cda.errors import CdaRefused
from carnet.cda.header import CdaHeader, InstanceId, header_of
from carnet.cda.parsing import claims_cda, parse
from carnet.cda.patient import check_patient
from carnet.patients.identifiers import NationalIdentifier

_UUID: Final = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
# HL7 Confidentiality from the least to the most restricted.
_RESTRICTION: Final = {"N": 0, "R": 1, "V": 2}


@dataclass(frozen=True)
class Declared:
    """What the metadata sent with the document says of it (DocumentReference, DocumentEntry)."""

    type_system: str
    type_code: str
    confidentiality: str
    created_at: dt.datetime
    language: str | None = None


@dataclass(frozen=True)
class ReceivedCda:
    """A CDA document that passed: its header, and the file its nonXMLBody embeds (if any)."""

    header: CdaHeader
    embedded: EmbeddedFile | None


def check_received(
    mime_type: str,
    content: bytes,
    *,
    declared: Declared,
    patient: Collection[NationalIdentifier],
) -> ReceivedCda | None:
    """Check a document that presents itself as CDA; None for any other content.

    ``patient`` is the dossier patient's national identifiers. Raises ``CdaRefused``: the
    document cannot be read (``not-xml``, ``dtd``, ``too-large``, ``namespace``), breaks the
    CDA R2 structure (``structure``), only references its file (``body``), is about another
    patient (``patient``) or says otherwise than its metadata (``disagreement``).
    """
    if not claims_cda(mime_type, content):
        return None
    root = parse(content)
    header = header_of(root)
    embedded = embedded_file(root)
    check_patient(header, patient)
    check_agreement(header, declared)
    return ReceivedCda(header=header, embedded=embedded)


def check_agreement(header: CdaHeader, declared: Declared) -> None:
    """Refuse metadata that says otherwise than the header (``CdaRefused``, reason
    ``disagreement``), naming the field and both values.

    The type must be the header's code; the creation time must fall within the header's
    effectiveTime at its precision; a declared language must be the header's languageCode (or
    its primary language). The declared confidentiality may be stricter than the header's, never
    looser: a publisher may share a document more restrictively than its author marked it (XDS
    lets the registry entry restrict), but a document its author marked R or V is never shared
    as less.
    """
    header_type = f"{header.code.system_uri}|{header.code.code}"
    declared_type = f"{declared.type_system}|{declared.type_code}"
    if header_type != declared_type:
        _disagree("type", f"The type {declared_type} is not the CDA header's code {header_type}.")
    if _RESTRICTION.get(declared.confidentiality, -1) < _RESTRICTION[header.confidentiality]:
        _disagree(
            "confidentiality",
            f"The confidentiality {declared.confidentiality} is less restricted than the CDA "
            f"header's confidentialityCode {header.confidentiality}.",
        )
    if not header.effective_time.covers(declared.created_at):
        _disagree(
            "created_at",
            f"The creation time {declared.created_at.isoformat()} is not the CDA header's "
            f"effectiveTime {header.effective_time.text}.",
        )
    if (
        declared.language is not None
        and header.language is not None
        and not _same_language(declared.language, header.language)
    ):
        _disagree(
            "language",
            f"The language {declared.language} is not the CDA header's languageCode "
            f"{header.language}.",
        )


def catalogue_type(header: CdaHeader) -> DocumentType:
    """The catalogue's document type for the header's code (a LOINC document code).

    Raises ``CdaRefused`` (reason ``type``, field ``type``) for a code Carnet's catalogue does
    not hold.
    """
    try:
        return load_catalogue().by_code(header.code.system_uri, header.code.code)
    except UnknownDocumentType as error:
        raise CdaRefused(
            f"The CDA header's code {header.code.system_uri}|{header.code.code} "
            f"({header.code.display or 'no display name'}) is no document type of Carnet's "
            "catalogue.",
            reason="type",
            field="type",
        ) from error


def master_identifiers(identifier: InstanceId) -> tuple[str, ...]:
    """The forms a document id takes as an XDS uniqueId or FHIR masterIdentifier: ``root^extension``
    (IHE ITI TF-3 4.2.3.2.26 for CDA documents), or a root alone as itself, ``urn:oid:`` or
    ``urn:uuid:`` (RFC 3986 identifiers, as MHD senders write them)."""
    if not identifier.root:
        return ()
    if identifier.extension:
        return (f"{identifier.root}^{identifier.extension}",)
    root = identifier.root
    if _UUID.match(root):
        return (root, root.lower(), f"urn:uuid:{root.lower()}", f"urn:uuid:{root.upper()}")
    return (root, f"urn:oid:{root}")


def _same_language(declared: str, header: str) -> bool:
    """``fr`` and ``fr-LU`` agree (one names a region the other leaves open); ``fr`` and ``de``
    do not."""
    first, second = declared.strip().lower(), header.strip().lower()
    return first == second or first.startswith(f"{second}-") or second.startswith(f"{first}-")


def _disagree(field: str, message: str) -> NoReturn:
    raise CdaRefused(message, reason="disagreement", field=field)
