"""authentication: signing keys, OAuth clients, accounts, codes, refresh tokens

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 15:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision (filled in with the auth package's tables)."""


def downgrade() -> None:
    """Revert this revision."""
