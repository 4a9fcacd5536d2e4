"""Audit tests: the signing key and a checkpointed trail."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine

from carnet.audit.signing import AuditKey
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore
from factories.tampering import History, _checkpoint, _head, _more_events, _record_history


@pytest.fixture(scope="module")
def key() -> AuditKey:
    """Carnet's audit key for the module (the database never sees it)."""
    return AuditKey.generate()


@pytest.fixture
def trail(
    committing_engine: Engine,
    key: AuditKey,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    tmp_path: Path,
) -> tuple[Engine, History, Path]:
    """Real events, a checkpoint, then two more events on the dossier's chain."""
    history = _record_history(committing_engine, key, store, clock)
    log = tmp_path / "checkpoints.jsonl"
    clock.advance(dt.timedelta(minutes=1))
    _checkpoint(committing_engine, key, log, clock)
    _more_events(committing_engine, key, history.patient, clock, 2)
    history.heads.append(_head(committing_engine, history.patient))
    return committing_engine, history, log
