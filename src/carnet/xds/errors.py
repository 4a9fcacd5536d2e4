"""Refusals in XDS words: domain errors translated once into IHE error codes.

IHE ITI TF-3 4.2.4 (Success and error reporting): every answer is a ``RegistryResponse`` whose
status is ``Success``, ``PartialSuccess`` or ``Failure`` and whose ``RegistryErrorList`` names,
for each error, an IHE code (table 4.2.4.1-2), a human text (``codeContext``) and where it is
(``location``: the offending identifier). The SOAP way in never answers a 5xx or a stack trace
for what a caller sent or may not do: those are all ``Failure`` responses here.

Refusals of the policy are worded like absence, as on the FHIR paths: a patient the caller may
not publish for is ``XDSUnknownPatientId``, a document they may not see ``XDSMissingDocument``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from carnet.access.errors import AccessDenied, InsufficientScope, StrongerAuthenticationRequired
from carnet.directory.errors import DirectoryError
from carnet.documents.errors import (
    DocumentNotCurrent,
    DocumentNotFound,
    DocumentTooLarge,
    DossierNotActive,
    DuplicateDocument,
    InvalidDocument,
    UnresolvedReference,
)
from carnet.errors import CarnetError, InvalidInput
from carnet.patients.errors import InvalidIdentifier

RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
_ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"

# The codes of ITI TF-3 table 4.2.4.1-2 that Carnet answers.
MISSING_DOCUMENT = "XDSMissingDocument"
MISSING_DOCUMENT_METADATA = "XDSMissingDocumentMetadata"
PATIENT_ID_DOES_NOT_MATCH = "XDSPatientIdDoesNotMatch"
UNKNOWN_PATIENT_ID = "XDSUnknownPatientId"
REGISTRY_METADATA_ERROR = "XDSRegistryMetadataError"
REPOSITORY_METADATA_ERROR = "XDSRepositoryMetadataError"
NON_IDENTICAL_HASH = "XDSNonIdenticalHash"
DUPLICATE_UNIQUE_ID = "XDSDuplicateUniqueIdInRegistry"
DUPLICATE_UNIQUE_ID_IN_MESSAGE = "XDSRegistryDuplicateUniqueIdInMessage"
UNKNOWN_REPOSITORY_ID = "XDSUnknownRepositoryId"
REGISTRY_ERROR = "XDSRegistryError"
DEPRECATED_DOCUMENT = "XDSRegistryDeprecatedDocumentError"
REPOSITORY_ERROR = "XDSRepositoryError"
UNRESOLVED_REFERENCE = "XDSUnresolvedReferenceException"


@dataclass(frozen=True)
class RegistryError:
    """One entry of a ``RegistryErrorList``."""

    code: str
    context: str
    location: str = ""


class XdsRefusal(Exception):
    """A request refused in XDS terms: answered as a ``RegistryResponse`` Failure."""

    def __init__(self, code: str, context: str, location: str = "") -> None:
        super().__init__(context)
        self.errors: tuple[RegistryError, ...] = (RegistryError(code, context, location),)

    @classmethod
    def of(cls, error: RegistryError) -> XdsRefusal:
        """The refusal reporting ``error``."""
        return cls(error.code, error.context, error.location)


# Fields whose fault is the repository's to report: the content does not match its metadata
# (ITI TF-3 4.2.4.1: size and hash are checked by the Document Repository).
_REPOSITORY_FIELDS = frozenset({"size", "hash", "content", "mime_type"})


# Domain errors by the IHE code they are reported as (the first that matches).
_CODES: tuple[tuple[tuple[type[Exception], ...], str], ...] = (
    ((UnresolvedReference,), UNRESOLVED_REFERENCE),
    # Worded as absence: whoever may not publish for a dossier may not learn it exists.
    ((AccessDenied, DocumentNotFound, DossierNotActive, InvalidIdentifier), UNKNOWN_PATIENT_ID),
    ((DocumentTooLarge,), REPOSITORY_ERROR),
    ((InsufficientScope, StrongerAuthenticationRequired), REGISTRY_ERROR),
    # An association to (or a replacement of) a document no longer current.
    ((DocumentNotCurrent,), DEPRECATED_DOCUMENT),
    # A value the registry cannot take, an author the directory lacks.
    ((InvalidInput, DirectoryError), REGISTRY_METADATA_ERROR),
    ((CarnetError,), REGISTRY_ERROR),
)


def registry_error(error: Exception, location: str = "") -> RegistryError:
    """The IHE error for a domain error met while serving an XDS transaction."""
    if isinstance(error, XdsRefusal):
        return error.errors[0]
    if isinstance(error, DuplicateDocument):
        return RegistryError(DUPLICATE_UNIQUE_ID, str(error), error.master_identifier)
    if isinstance(error, InvalidDocument) and error.field in _REPOSITORY_FIELDS:
        return RegistryError(REPOSITORY_METADATA_ERROR, f"{error} ({error.field})", location)
    if isinstance(error, AccessDenied):
        return RegistryError(
            UNKNOWN_PATIENT_ID, "No such patient known to this registry.", location
        )
    for kinds, code in _CODES:
        if isinstance(error, kinds):
            field = getattr(error, "field", None)
            return RegistryError(code, f"{error} ({field})" if field else str(error), location)
    raise error


def registry_response(
    errors: Sequence[RegistryError] = (),
    *,
    partial: bool = False,
    tag: str = f"{{{RS}}}RegistryResponse",
) -> etree._Element:
    """A ``rs:RegistryResponse`` (or an element of that type named ``tag``)."""
    status = PARTIAL_SUCCESS if partial and errors else FAILURE if errors else SUCCESS
    response = etree.Element(tag, nsmap={"rs": RS})
    response.set("status", status)
    if errors:
        append_errors(response, errors)
    return response


def append_errors(parent: etree._Element, errors: Sequence[RegistryError]) -> None:
    """Add a ``rs:RegistryErrorList`` holding ``errors`` to ``parent``."""
    listing = etree.SubElement(parent, f"{{{RS}}}RegistryErrorList")
    listing.set("highestSeverity", _ERROR)
    for error in errors:
        item = etree.SubElement(listing, f"{{{RS}}}RegistryError")
        item.set("errorCode", error.code)
        item.set("codeContext", error.context)
        item.set("severity", _ERROR)
        item.set("location", error.location)
