"""directory search name: professionals' names folded for accent- and order-insensitive search

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 08:00:00.000000

``professionals.search_name`` holds the given and family names without accents or case, each
word after a space (`` benoit meyer ``): the patient's directory search matches every word typed
at a word's start, in any order. Filled here for the professionals already registered; the
model keeps it in step on every insert and update.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _folded(text: str) -> str:
    # As carnet.directory.models.folded did at this revision (a migration keeps its own copy).
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w]+", " ", plain).split())


def searchable_name(given: str, family: str) -> str:
    """The search form of a name at this revision."""
    return f" {_folded(given)} {_folded(family)} "


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("professionals") as batch:
        batch.add_column(
            sa.Column("search_name", sa.String(length=420), server_default="", nullable=False)
        )
    professionals = sa.table(
        "professionals",
        sa.column("id", sa.Uuid()),
        sa.column("given", sa.String()),
        sa.column("family", sa.String()),
        sa.column("search_name", sa.String()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(professionals.c.id, professionals.c.given, professionals.c.family)
    )
    for professional_id, given, family in rows.all():
        bind.execute(
            professionals.update()
            .where(professionals.c.id == professional_id)
            .values(search_name=searchable_name(given, family))
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("professionals") as batch:
        batch.drop_column("search_name")
