"""Storing Python string enums as checked strings, the same way on SQLite and PostgreSQL."""

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
