"""Resource ids that carry their dossier.

A document's primary key is ``(patient_id, id)``: the patient is the shard key, so a FHIR id
must tell which dossier holds the resource. The id is the base32 form of both UUIDs (52 lower
case letters and digits, within FHIR's ``[A-Za-z0-9\\-\\.]{1,64}``): opaque to clients, and
routable without a global index.
"""

from __future__ import annotations

import base64
import binascii
import uuid

_LENGTH = 52


def document_resource_id(patient_id: uuid.UUID, document_id: uuid.UUID) -> str:
    """The FHIR id of a document (DocumentReference and Binary)."""
    raw = patient_id.bytes + document_id.bytes
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def parse_document_resource_id(resource_id: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """``(patient_id, document_id)`` from a FHIR id, or None if it is not one of ours."""
    if len(resource_id) != _LENGTH:
        return None
    try:
        raw = base64.b32decode(resource_id.upper() + "====")
    except (binascii.Error, ValueError):
        return None
    return uuid.UUID(bytes=raw[:16]), uuid.UUID(bytes=raw[16:])


def parse_reference(reference: str, resource_type: str) -> uuid.UUID | None:
    """The UUID in ``<Type>/<uuid>`` (or a bare uuid), or None if malformed."""
    prefix = f"{resource_type}/"
    value = reference[len(prefix) :] if reference.startswith(prefix) else reference
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
