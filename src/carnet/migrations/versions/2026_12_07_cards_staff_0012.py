"""cards and staff: card authorities' CRLs, staff delegations, the staff profession

Card authorities carry the CRLs their cards are checked against; staff (France's CPE card) act
for a professional who allowed them (``staff_delegations``), and the codes and refresh tokens
issued to them remember whom the staff member is (``staff_id``). ``staff`` joins the
professions the directory's CHECK constraint accepts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import carnet.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROFESSIONS = (
    "general-practitioner",
    "specialist",
    "dentist",
    "pharmacist",
    "nurse",
    "midwife",
    "physiotherapist",
    "emergency-physician",
    "biologist",
)


def _profession_check(professions: Sequence[str]) -> str:
    return "profession IN ({})".format(", ".join(f"'{value}'" for value in professions))


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("card_authorities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("crl_pem", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("crl_updated_at", carnet.db.UTCDateTime(timezone=True), nullable=True)
        )
    for table in ("authorization_codes", "refresh_tokens"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("staff_id", sa.Uuid(), nullable=True))
    op.create_table(
        "staff_delegations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("professional_id", sa.Uuid(), nullable=False),
        sa.Column("granted_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["professional_id"],
            ["professionals.id"],
            name=op.f("fk_staff_delegations_professional_id_professionals"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["professionals.id"],
            name=op.f("fk_staff_delegations_staff_id_professionals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_delegations")),
    )
    with op.batch_alter_table("staff_delegations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_staff_delegations_professional_id"), ["professional_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_staff_delegations_staff_id_professional_id"),
            ["staff_id", "professional_id"],
            unique=False,
        )
    # The CHECK lists the professions (``checked_enum``): replaced to accept ``staff``.
    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_professionals_profession"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_professionals_profession"), _profession_check((*_PROFESSIONS, "staff"))
        )


def downgrade() -> None:
    """Revert this revision (staff directory entries must be removed first)."""
    with op.batch_alter_table("professionals", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_professionals_profession"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_professionals_profession"), _profession_check(_PROFESSIONS)
        )
    with op.batch_alter_table("staff_delegations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_delegations_staff_id_professional_id"))
        batch_op.drop_index(batch_op.f("ix_staff_delegations_professional_id"))
    op.drop_table("staff_delegations")
    for table in ("refresh_tokens", "authorization_codes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("staff_id")
    with op.batch_alter_table("card_authorities", schema=None) as batch_op:
        batch_op.drop_column("crl_updated_at")
        batch_op.drop_column("crl_pem")
