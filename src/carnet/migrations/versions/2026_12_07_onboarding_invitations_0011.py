"""onboarding invitations: the agency's one-time invitations of professionals (issue 14)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import carnet.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "professional_invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("issued_by", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_professional_invitations_professional_id_professionals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_professional_invitations")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_professional_invitations_code_hash")),
    )
    op.create_index(
        op.f("ix_professional_invitations_professional_id"),
        "professional_invitations",
        ["professional_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(
        op.f("ix_professional_invitations_professional_id"),
        table_name="professional_invitations",
    )
    op.drop_table("professional_invitations")
