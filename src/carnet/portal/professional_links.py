"""Where the professional portal's pages are, and the ids their paths carry.

Ids come as text, not as FastAPI-typed UUIDs: a malformed one must end on the portal's own
"not found" page, not on a JSON validation error.
"""

from __future__ import annotations

import uuid

HOME = "/portal/professional"


def patient_url(patient_id: uuid.UUID) -> str:
    """The patient page: essential data and latest documents."""
    return f"{HOME}/patients/{patient_id}"


def document_url(patient_id: uuid.UUID, document_id: uuid.UUID) -> str:
    """The viewer of one document."""
    return f"{patient_url(patient_id)}/documents/{document_id}"


def emergency_url(patient_id: uuid.UUID) -> str:
    """The break-the-glass form."""
    return f"{patient_url(patient_id)}/emergency"


def care_contact_url(patient_id: uuid.UUID) -> str:
    """Where a professional records a care contact with the patient present."""
    return f"{patient_url(patient_id)}/care-contact"


def upload_url(patient_id: uuid.UUID) -> str:
    """The form adding a document to the dossier."""
    return f"{patient_url(patient_id)}/upload"
