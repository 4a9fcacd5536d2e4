"""xds folders and associations: XDS.b Folders and Associations, lookups by XDS identifier

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 07:00:00.000000

``folders`` and ``document_associations`` are a dossier's tables: their keys lead with
``patient_id`` and they are partitioned with the others. The indexes on ``unique_id`` (or
``master_identifier``) and ``id`` find the dossier holding a document, submission set or folder
named by its XDS uniqueId (ITI-43) or entryUUID (ITI-18), which XDS sends without the patient;
on a partitioned table each partition gets its own index.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import carnet.db
from carnet.migrations.partitioning import partition_by

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = ("HasMember", "RPLC", "APND", "XFRM", "XFRM_RPLC", "signs")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "folders",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unique_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("comments", sa.String(length=1000), nullable=True),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("submission_set_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id", "submission_set_id"],
            ["submission_sets.patient_id", "submission_sets.id"],
            name=op.f("fk_folders_patient_id_submission_sets"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_folders_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("patient_id", "id", name=op.f("pk_folders")),
        **partition_by("patient_id"),
    )
    with op.batch_alter_table("folders", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_folders_patient_id_unique_id"), ["patient_id", "unique_id"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_folders_unique_id"), ["unique_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_folders_id"), ["id"], unique=False)
    op.create_table(
        "document_associations",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                *_KINDS,
                name="association_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("submission_set_id", sa.Uuid(), nullable=False),
        sa.Column("submission_set_status", sa.String(length=16), nullable=True),
        sa.Column("created_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id", "submission_set_id"],
            ["submission_sets.patient_id", "submission_sets.id"],
            name=op.f("fk_document_associations_patient_id_submission_sets"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_document_associations_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("patient_id", "id", name=op.f("pk_document_associations")),
        **partition_by("patient_id"),
    )
    with op.batch_alter_table("document_associations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_document_associations_patient_id_source_id"),
            ["patient_id", "source_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_document_associations_patient_id_target_id"),
            ["patient_id", "target_id"],
            unique=False,
        )
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_documents_master_identifier"), ["master_identifier"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_documents_id"), ["id"], unique=False)
    with op.batch_alter_table("submission_sets", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_submission_sets_master_identifier"), ["master_identifier"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_submission_sets_id"), ["id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("submission_sets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submission_sets_id"))
        batch_op.drop_index(batch_op.f("ix_submission_sets_master_identifier"))
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_documents_id"))
        batch_op.drop_index(batch_op.f("ix_documents_master_identifier"))
    op.drop_table("document_associations")
    op.drop_table("folders")
