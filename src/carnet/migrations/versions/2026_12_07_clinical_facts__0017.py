"""clinical facts: structured data taken from the documents (FHIR document Bundles)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 09:00:00.000000

``clinical_facts`` is a dossier's table: its key leads with ``patient_id``, it is partitioned
with the others, and each row names the document it came with (a foreign key), so the policy on
that document decides who sees the fact.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import carnet.db
from carnet.migrations.partitioning import partition_by

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "clinical_facts",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "Observation",
                "Immunization",
                "AllergyIntolerance",
                "Condition",
                "MedicationStatement",
                "MedicationRequest",
                "MedicationDispense",
                name="clinical_fact_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("code_system", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("display", sa.String(length=500), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("started_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id", "document_id"],
            ["documents.patient_id", "documents.id"],
            name=op.f("fk_clinical_facts_patient_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_clinical_facts_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("patient_id", "id", name=op.f("pk_clinical_facts")),
        **partition_by("patient_id"),
    )
    with op.batch_alter_table("clinical_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_clinical_facts_patient_id_document_id"),
            ["patient_id", "document_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_clinical_facts_patient_id_kind_code_started_at"),
            ["patient_id", "kind", "code", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_clinical_facts_patient_id_kind_started_at"),
            ["patient_id", "kind", "started_at"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("clinical_facts")
