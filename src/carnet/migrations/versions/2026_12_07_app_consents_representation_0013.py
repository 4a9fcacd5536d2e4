"""app consents and representation: approvals of third-party apps, first-party clients, the
launch patient a representative chose

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 05:00:00.000000

``app_approvals`` is keyed by the person (kind and id), as codes and refresh tokens are: an
approval says what a user let an app ask for and holds no health data, so it is authentication
data, not a dossier's table, and is not partitioned by patient.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import carnet.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTOR_KINDS = ("patient", "professional", "feeding-system", "operator", "security-officer")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "app_approvals",
        sa.Column(
            "subject_kind",
            sa.Enum(
                *_ACTOR_KINDS,
                name="approval_subject_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("approved_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_app_approvals_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subject_kind", "subject_id", "client_id", name=op.f("pk_app_approvals")
        ),
    )
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_party", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    for table in ("authorization_codes", "refresh_tokens"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("launch_patient_id", sa.Uuid(), nullable=True))
    # The portal registered before this revision is Carnet's own app.
    op.execute(
        sa.text(
            "UPDATE oauth_clients SET first_party = :yes WHERE client_id = 'carnet-portal'"
        ).bindparams(yes=True)
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in ("refresh_tokens", "authorization_codes"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("launch_patient_id")
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("first_party")
    op.drop_table("app_approvals")
