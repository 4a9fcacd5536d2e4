"""The schema: migrations match the models, run both ways, patient data leads with patient_id."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from carnet import schema
from carnet.db import make_engine
from conftest import throwaway_postgres

# Tables that hold no patient data: the directory is public to professionals.
# The global lookups XDS.b needs: ITI-43 names a document by its uniqueId only, ITI-18's Get*
# queries by entryUUID, and neither carries the patient. Under sharding these become a global
# locator table (uniqueId/entryUUID → patient id); until then, plain indexes.
XDS_LOOKUPS = {
    "documents": (["master_identifier"], ["id"]),
    "submission_sets": (["master_identifier"], ["id"]),
    "folders": (["unique_id"], ["id"]),
}

NOT_PATIENT_DATA = {
    "organisations",
    "professionals",
    "alembic_version",
    # Authentication data: keys, clients, professionals' sign-ins; codes, refresh tokens and
    # revocations name a subject but hold no health data, and are purged when they expire.
    "signing_keys",
    "card_authorities",
    "oauth_clients",
    "professional_accounts",
    "operator_accounts",
    "authorization_codes",
    "refresh_tokens",
    "revoked_tokens",
    # Passkeys' public keys: unique across every account (looked up before knowing whose).
    "passkey_credentials",
    # A person's approvals of third-party apps: what they let an app ask for, no health data.
    "app_approvals",
    # The agency's one-time invitations of professionals (onboarding): a directory entry's.
    "professional_invitations",
    # The scheduled jobs' bookkeeping: one row per job name and the end of its last period.
    "job_runs",
    # Which professional a staff member (CPE card) may act for: two directory entries.
    "staff_delegations",
    # HL7 v2 senders (an organisation's systems), the identifier authorities they use, and the
    # control ids of the messages they sent with the ids of the documents those brought.
    "feeding_systems",
    "feed_identifier_authorities",
    "feed_messages",
}


def test_models_and_migrations_do_not_drift(engine: Engine) -> None:
    schema.check(engine)


def test_database_is_at_head(engine: Engine) -> None:
    assert schema.current_revision(engine) == schema.head_revision(engine)


def test_every_patient_table_leads_with_patient_id(engine: Engine) -> None:
    inspector = inspect(engine)
    patient_tables = set(inspector.get_table_names()) - NOT_PATIENT_DATA
    assert patient_tables >= {
        "patients",
        "dossiers",
        "patient_identifiers",
        "documents",
        "submission_sets",
    }
    for table in patient_tables:
        key = inspector.get_pk_constraint(table)["constrained_columns"]
        # The audit trail is chained per dossier: its chain id is the patient's id (or, for
        # events on no dossier, the actor's chain).
        leading = {"patients": "id"}.get(
            table, "chain_id" if table.startswith("audit_") else "patient_id"
        )
        assert key[0] == leading, f"{table}'s primary key starts with {key[0]}, not {leading}"
        for index in inspector.get_indexes(table):
            columns = index["column_names"]
            if table == "patient_identifiers" and columns == ["system", "value"]:
                continue  # the one global lookup, documented on the model
            if table == "representations" and columns == ["representative_id", "patient_id"]:
                continue  # led by the representative's own patient id: "whom do I represent?"
            if table == "dossiers" and columns in (["state"], ["state", "opening_deadline"]):
                continue  # statistics and the opening job's queue: states and dates only
            if table == "patients":
                continue  # the patients table is keyed by its own id
            if table == "audit_events" and columns == ["recorded_at", "action"]:
                continue  # the agency's counts by day: dates and actions, no patient data
            if table.startswith("audit_") and columns[0] == "chain_id":
                continue
            if table == "audit_chain_heads" and columns == ["updated_at"]:
                continue  # checkpoints read the heads changed since the last: times only
            if table == "notifications" and columns == ["email_status", "created_at"]:
                continue  # the outbox's queue, documented on the model: a status and a time
            if table in XDS_LOOKUPS and columns in XDS_LOOKUPS[table]:
                continue  # XDS names objects without their patient (documents/locating.py)
            assert columns[0] == "patient_id", (
                f"index {index['name']} on {table} leads with {columns[0]}"
            )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_downgrade_to_nothing_and_back(kind: str, tmp_path: Path) -> None:
    if kind == "sqlite":
        _round_trip(make_engine(f"sqlite:///{tmp_path / 'round.db'}"))
        return
    with throwaway_postgres() as url:
        _round_trip(make_engine(url))


def _round_trip(engine: Engine) -> None:
    try:
        schema.upgrade(engine)
        schema.downgrade(engine, "base")
        assert schema.current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        schema.upgrade(engine)
        assert schema.current_revision(engine) == schema.head_revision(engine)
    finally:
        engine.dispose()
