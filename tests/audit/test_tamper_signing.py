"""The audit trail's signed heads: signing, group commit, incremental checkpoints, old heads.

A head re-hashed by the database owner cannot be signed again without the key; heads written
before signing was switched on are found and sealed once (issue 15).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from carnet.audit import service as audit
from carnet.audit.checkpoints import (
    CheckpointSchedule,
    publish_due_checkpoint,
)
from carnet.audit.errors import AuditUnavailable
from carnet.audit.group_commit import append_batch
from carnet.audit.models import AuditAction
from carnet.audit.signing import AuditKey, KeyRing, head_message, load_public_key
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from factories.tampering import (
    History,
    _checkpoint,
    _db,
    _event_count,
    _found,
    _head,
    _more_events,
    _rewrite_last_event,
    _strip_head_signature,
    _tamper,
    _verify,
    sealed,
)


class TestSigning:
    def test_first_events_of_enrolled_dossiers_are_sealed(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock
    ) -> None:
        chains = [uuid.uuid4() for _ in range(3)]
        with unit_of_work(sealed(committing_engine, key)) as session:
            audit.start_chains(
                session,
                agent=audit.Agent(kind="operator", subject="operator:x"),
                action=AuditAction.LIFECYCLE,
                clock=clock,
                patient_ids=chains,
            )
        report = _verify(committing_engine, key, None)
        assert report.intact
        assert report.signed_heads == 3

    def test_heads_sealed_by_a_retired_key_are_extended(
        self, committing_engine: Engine, clock: FrozenClock
    ) -> None:
        old, new = AuditKey.generate(), AuditKey.generate()
        chain = uuid.uuid4()
        _more_events(committing_engine, old, chain, clock, 1)
        with pytest.raises(AuditUnavailable):
            _more_events(committing_engine, new, chain, clock, 1)
        rotated = replace(new, retired=KeyRing.of([old.public]))
        _more_events(committing_engine, rotated, chain, clock, 1)
        report = _verify(committing_engine, new, None)
        assert report.intact
        assert _head(committing_engine, chain)[3] == new.key_id

    def test_verify_needs_only_the_public_key(self, key: AuditKey) -> None:
        chain = uuid.uuid4()
        signature = key.seal_head(chain, 4, "ab" * 32)

        public = load_public_key(key.public.pem())
        assert public.key_id == key.key_id
        assert public.verifies(signature, head_message(chain, 4, "ab" * 32))
        assert not public.verifies(signature, head_message(chain, 5, "ab" * 32))


def test_group_commit_seals_the_heads_it_advances(
    committing_engine: Engine, key: AuditKey, clock: FrozenClock
) -> None:
    if committing_engine.dialect.name != "postgresql":
        pytest.skip("group commit is PostgreSQL's")

    chains = [uuid.uuid4(), uuid.uuid4()]
    pending = [
        audit.PendingEvent(
            agent=audit.Agent(kind="professional", subject="Practitioner/gc"),
            action=AuditAction.READ,
            patient_id=chain,
            recorded_at=clock.now(),
            entity_ids="[]",
            details="{}",
        )
        for chain in [*chains, chains[0]]
    ]
    with committing_engine.begin() as connection:
        append_batch(connection, pending, sealer=key)
    report = _verify(committing_engine, key, None)
    assert report.intact
    assert report.signed_heads == 2
    # A head moved by someone else is not extended by the writer either.
    _tamper(
        committing_engine,
        "UPDATE audit_chain_heads SET last_hash = :forged WHERE chain_id = :chain",
        forged="f" * 64,
        chain=_db(committing_engine, chains[1]),
    )
    with pytest.raises(AuditUnavailable), committing_engine.begin() as connection:
        append_batch(connection, pending[1:2], sealer=key)
    # Nor a head stripped of its signature.
    _strip_head_signature(committing_engine, chains[0])
    events = _event_count(committing_engine)
    with pytest.raises(AuditUnavailable), committing_engine.begin() as connection:
        append_batch(connection, pending[:1], sealer=key)
    assert _event_count(committing_engine) == events


class TestIncrementalCheckpoints:
    def test_lists_only_heads_changed_since_the_previous(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        first, second = uuid.uuid4(), uuid.uuid4()
        _more_events(committing_engine, key, first, clock, 1)
        _more_events(committing_engine, key, second, clock, 1)
        log = tmp_path / "checkpoints.jsonl"
        clock.advance(dt.timedelta(hours=1))
        _checkpoint(committing_engine, key, log, clock)
        clock.advance(dt.timedelta(hours=1))
        _more_events(committing_engine, key, first, clock, 1)
        clock.advance(dt.timedelta(hours=1))
        _checkpoint(committing_engine, key, log, clock)
        full, incremental = (json.loads(line) for line in log.read_text().splitlines())
        assert {head[0] for head in full["heads"]} == {str(first), str(second)}
        assert full["since"] is None
        assert [head[:2] for head in incremental["heads"]] == [[str(first), 2]]
        assert incremental["n"] == 2
        report = _verify(committing_engine, key, log)
        assert report.intact

    def test_scheduled_checkpoint_waits_for_its_interval(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        schedule = CheckpointSchedule(tmp_path / "log.jsonl", key, dt.timedelta(minutes=15))
        sessions = sealed(committing_engine, key)
        assert publish_due_checkpoint(sessions, schedule, clock=clock) is not None
        clock.advance(dt.timedelta(minutes=14))
        assert publish_due_checkpoint(sessions, schedule, clock=clock) is None
        clock.advance(dt.timedelta(minutes=2))
        assert publish_due_checkpoint(sessions, schedule, clock=clock) is not None
        assert len(schedule.path.read_text().splitlines()) == 2


# --- Heads from before signing began (revision 0009): refused until sealed, once, deliberately.


def _before_signing(engine: Engine, chain: uuid.UUID, clock: FrozenClock, n: int = 2) -> None:
    """Events appended as Carnet did before revision 0009: no key, an unsigned head."""
    for _ in range(n):
        clock.advance(dt.timedelta(minutes=1))
        with unit_of_work(session_factory(engine)) as session:
            audit.record(
                session,
                agent=audit.Agent(kind="job", subject="job:old"),
                action=AuditAction.LIFECYCLE,
                clock=clock,
                patient_id=chain,
            )


def _carnet(engine: Engine, key: AuditKey, tmp_path: Path, *args: str) -> Any:
    env = {
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "CARNET_AUDIT_SIGNING_KEY": key.pem(),
    }
    return CliRunner().invoke(app, list(args), env=env)


_REMINDER = "seal them once with `carnet audit seal-unsigned`"


class TestHeadsFromBeforeSigning:
    def test_refused_until_sealed_then_extended(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        engine = committing_engine
        upgraded = _carnet(engine, key, tmp_path, "db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert _REMINDER not in upgraded.output  # a fresh database has none
        chain = uuid.uuid4()
        _before_signing(engine, chain, clock)
        assert _found(_verify(engine, key, None)) == [("unsigned head", chain)]
        with pytest.raises(AuditUnavailable):
            _more_events(engine, key, chain, clock, 1)
        assert _head(engine, chain)[0] == 2
        upgraded = _carnet(engine, key, tmp_path, "db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert _REMINDER in upgraded.output

        sealed_now = _carnet(engine, key, tmp_path, "audit", "seal-unsigned")
        assert sealed_now.exit_code == 0, sealed_now.output
        assert "Sealed 1 unsigned chain heads; 0 left unsigned." in sealed_now.output
        again = _carnet(engine, key, tmp_path, "audit", "seal-unsigned")
        assert again.exit_code == 0, again.output
        assert "Sealed 0 unsigned chain heads; 0 left unsigned." in again.output
        report = _verify(engine, key, None)
        assert report.intact
        assert report.signed_heads == 1
        _more_events(engine, key, chain, clock, 1)
        assert _head(engine, chain)[0] == 3
        assert _verify(engine, key, None).intact
        assert _REMINDER not in _carnet(engine, key, tmp_path, "db", "upgrade").output

    def test_a_tampered_chain_is_not_sealed(
        self, committing_engine: Engine, key: AuditKey, clock: FrozenClock, tmp_path: Path
    ) -> None:
        engine = committing_engine
        intact, tampered = uuid.uuid4(), uuid.uuid4()
        _before_signing(engine, intact, clock)
        _before_signing(engine, tampered, clock, n=3)
        _tamper(
            engine,
            "UPDATE audit_events SET reason = 'nothing to see' WHERE chain_id = :chain AND seq = 2",
            chain=_db(engine, tampered),
        )
        refused = _carnet(engine, key, tmp_path, "audit", "seal-unsigned")
        assert refused.exit_code == 1, refused.output
        assert f"NOT SEALED chain {tampered}: chain {tampered}, event 2: content altered" in (
            refused.output
        )
        assert "Sealed 1 unsigned chain heads; 1 left unsigned." in refused.output
        assert _head(engine, tampered)[2] is None
        assert _head(engine, intact)[3] == key.key_id
        with pytest.raises(AuditUnavailable):
            _more_events(engine, key, tampered, clock, 1)

    def test_a_head_a_checkpoint_saw_signed_is_not_sealed(
        self, trail: tuple[Engine, History, Path], key: AuditKey, tmp_path: Path
    ) -> None:
        engine, history, log = trail
        # An edit after the checkpoint, re-hashed (the links hold), the signature removed.
        _rewrite_last_event(engine, history)
        _strip_head_signature(engine, history.patient)
        refused = _carnet(
            engine, key, tmp_path, "audit", "seal-unsigned", "--checkpoints", str(log)
        )
        assert refused.exit_code == 1, refused.output
        assert f"NOT SEALED chain {history.patient}: checkpoint 1 saw it signed" in refused.output
        assert _head(engine, history.patient)[2] is None
