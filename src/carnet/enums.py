"""Storing Python string enums as checked strings, the same way on SQLite and PostgreSQL.

Also the document vocabulary that more than the documents domain judges by: the access policy
sits below ``carnet.documents`` and cannot import its models, yet decides on a document's status
and confidentiality (``carnet.documents.models`` re-exports both).
"""

from __future__ import annotations

import enum

from sqlalchemy import Enum


def checked_enum(python_enum: type[enum.StrEnum], name: str) -> Enum:
    """A VARCHAR column with a CHECK constraint listing the enum's values.

    Native PostgreSQL enums need a migration for every new value; a CHECK does not, and reads the
    same on SQLite.
    """
    return Enum(
        python_enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class DocumentStatus(enum.StrEnum):
    """FHIR DocumentReference.status."""

    CURRENT = "current"
    SUPERSEDED = "superseded"
    ENTERED_IN_ERROR = "entered-in-error"


class Confidentiality(enum.StrEnum):
    """HL7 v3 Confidentiality: normal, restricted, very restricted (secret)."""

    NORMAL = "N"
    RESTRICTED = "R"
    VERY_RESTRICTED = "V"
