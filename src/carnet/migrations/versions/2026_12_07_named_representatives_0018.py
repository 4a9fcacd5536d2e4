"""named representatives: a patient names someone to act for them

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 18:00:00.000000

``named`` joins the kinds of representation the CHECK constraint accepts (``checked_enum``):
besides the agency's parents and guardians, a person the patient named themself.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CONSTRAINT = "ck_representations_representation_kind"


def _kind_check(kinds: Sequence[str]) -> str:
    return "kind IN ({})".format(", ".join(f"'{kind}'" for kind in kinds))


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("representations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_CONSTRAINT), type_="check")
        batch_op.create_check_constraint(
            op.f(_CONSTRAINT), _kind_check(("parent", "guardian", "named"))
        )


def downgrade() -> None:
    """Revert this revision (named representations must be removed first)."""
    with op.batch_alter_table("representations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(_CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(_CONSTRAINT), _kind_check(("parent", "guardian")))
