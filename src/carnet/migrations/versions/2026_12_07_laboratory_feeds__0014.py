"""laboratory feeds: feeding systems (HL7 v2 senders), their messages, laboratory reports and
their structured results

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 06:00:00.000000

``feeding_systems``, ``feed_identifier_authorities`` and ``feed_messages`` hold no health data
(a sender, the authorities it uses, the control ids it sent and the documents they brought): they
are not partitioned. ``lab_reports`` and ``lab_results`` are a dossier's tables: their keys lead
with ``patient_id`` and they are partitioned with the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import carnet.db
from carnet.migrations.partitioning import partition_by

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "feeding_systems",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("sending_facility", sa.String(length=200), nullable=False),
        sa.Column("sending_application", sa.String(length=200), nullable=False),
        sa.Column("certificate_sha256", sa.String(length=64), nullable=True),
        sa.Column("registered_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_feeding_systems_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feeding_systems")),
    )
    with op.batch_alter_table("feeding_systems", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_feeding_systems_sending_facility_sending_application"),
            ["sending_facility", "sending_application"],
            unique=True,
        )
    op.create_table(
        "feed_identifier_authorities",
        sa.Column("feeding_system_id", sa.Uuid(), nullable=False),
        sa.Column("authority", sa.String(length=200), nullable=False),
        sa.Column("system", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["feeding_system_id"],
            ["feeding_systems.id"],
            name=op.f("fk_feed_identifier_authorities_feeding_system_id_feeding_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "feeding_system_id", "authority", name=op.f("pk_feed_identifier_authorities")
        ),
    )
    op.create_table(
        "feed_messages",
        sa.Column("feeding_system_id", sa.Uuid(), nullable=False),
        sa.Column("control_id", sa.String(length=200), nullable=False),
        sa.Column("message_type", sa.String(length=20), nullable=False),
        sa.Column("received_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ack_code", sa.String(length=2), nullable=False),
        sa.Column("ack_text", sa.String(length=200), nullable=False),
        sa.Column("document_ids", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feeding_system_id"],
            ["feeding_systems.id"],
            name=op.f("fk_feed_messages_feeding_system_id_feeding_systems"),
        ),
        sa.PrimaryKeyConstraint("feeding_system_id", "control_id", name=op.f("pk_feed_messages")),
    )
    op.create_table(
        "lab_reports",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("feeding_system_id", sa.Uuid(), nullable=False),
        sa.Column("order_key", sa.String(length=160), nullable=False),
        sa.Column("service_code", sa.String(length=100), nullable=False),
        sa.Column("service_system", sa.String(length=100), nullable=False),
        sa.Column("service_text", sa.String(length=300), nullable=False),
        sa.Column("result_status", sa.String(length=2), nullable=False),
        sa.Column("control_id", sa.String(length=200), nullable=False),
        sa.Column("received_at", carnet.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["feeding_system_id"],
            ["feeding_systems.id"],
            name=op.f("fk_lab_reports_feeding_system_id_feeding_systems"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id", "document_id"],
            ["documents.patient_id", "documents.id"],
            name=op.f("fk_lab_reports_patient_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_lab_reports_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("patient_id", "document_id", name=op.f("pk_lab_reports")),
        **partition_by("patient_id"),
    )
    with op.batch_alter_table("lab_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lab_reports_patient_id_feeding_system_id_order_key"),
            ["patient_id", "feeding_system_id", "order_key"],
            unique=False,
        )
    op.create_table(
        "lab_results",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("code_system", sa.String(length=100), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("display", sa.String(length=300), nullable=False),
        sa.Column("value_type", sa.String(length=3), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("numeric_value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=100), nullable=False),
        sa.Column("reference_range", sa.String(length=200), nullable=False),
        sa.Column("abnormal_flags", sa.String(length=60), nullable=False),
        sa.Column("result_status", sa.String(length=2), nullable=False),
        sa.Column("observed_at", carnet.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id", "document_id"],
            ["documents.patient_id", "documents.id"],
            name=op.f("fk_lab_results_patient_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_lab_results_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("patient_id", "id", name=op.f("pk_lab_results")),
        **partition_by("patient_id"),
    )
    with op.batch_alter_table("lab_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lab_results_patient_id_code_observed_at"),
            ["patient_id", "code", "observed_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_lab_results_patient_id_document_id"),
            ["patient_id", "document_id"],
            unique=False,
        )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("lab_results")
    op.drop_table("lab_reports")
    op.drop_table("feed_messages")
    op.drop_table("feed_identifier_authorities")
    op.drop_table("feeding_systems")
