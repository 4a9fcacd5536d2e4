"""What a running Carnet holds: engine, sessions, store, key wrapper, clock — built from settings.

Built by the ways in (``create_app``, the CLI), never at import time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from carnet.audit.checkpoints import CheckpointSchedule, log_path
from carnet.audit.group_commit import GroupCommit
from carnet.audit.signing import (
    SEALER,
    AuditKey,
    KeyRing,
    load_private_key,
    load_public_key,
    read_or_create_key_file,
)
from carnet.clock import Clock, SystemClock
from carnet.db import make_engine, session_factory
from carnet.lifecycle.jobs import JobsReport, SweepSchedule, run_jobs
from carnet.settings import Settings
from carnet.storage import DocumentStore, KeyWrapper, MasterKeyWrapper, open_store
from carnet.storage.crypto import generate_master_key, load_master_key

log = logging.getLogger(__name__)


@dataclass
class Platform:
    """The shared parts every way in needs."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: DocumentStore
    clock: Clock
    # Seals what Carnet keeps secret in the database (token signing keys, TOTP secrets, demo
    # cards). Optional only so that platforms built by hand for tests that never touch
    # authentication stay short; build_platform always sets it.
    key_wrapper: KeyWrapper | None = field(default=None, repr=False)
    # The worker's audit writer (PostgreSQL): see ``carnet.audit.group_commit``.
    audit_group_commit: GroupCommit | None = field(default=None, repr=False)
    # Seals the audit chain heads (also in every session's info, ``signing.SEALER``) and signs
    # the checkpoints. Optional for the same reason as key_wrapper; build_platform sets it.
    audit_key: AuditKey | None = field(default=None, repr=False)
    # Where the scheduled jobs publish audit checkpoints (``CARNET_AUDIT_CHECKPOINTS``), if set.
    audit_checkpoints: CheckpointSchedule | None = field(default=None, repr=False)

    def run_jobs(self) -> JobsReport:
        """Run each due scheduled job once, as this platform's settings configure them.

        The server's schedule and ``carnet jobs run`` both come here, so a job run by hand is
        the one the server runs.
        """
        return run_jobs(
            self.sessions,
            self.store,
            clock=self.clock,
            retention_years=self.settings.retention_years,
            sweep=SweepSchedule.from_settings(self.settings),
            audit_checkpoints=self.audit_checkpoints,
        )

    def close(self) -> None:
        """Write the audit events handed over, then release the database connections."""
        if self.audit_group_commit is not None:
            self.audit_group_commit.close()
        self.engine.dispose()


def build_platform(settings: Settings, *, clock: Clock | None = None) -> Platform:
    """Open the database and the document store named by ``settings``."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    pool = {} if url.startswith("sqlite") else {"pool_size": settings.database_pool_size}
    engine = make_engine(url, **pool)
    key_id, key = master_key(settings)
    wrapper = MasterKeyWrapper(key, key_id)
    store = open_store(settings.effective_store_url, wrapper, max_bytes=settings.max_document_bytes)
    sessions = session_factory(engine)
    sealer = audit_key(settings)
    # The audit key rides in every session's info (``carnet.audit.signing`` says why: it is how
    # the session writes the trail, not a choice of the forty services that record).
    sessions.configure(info={SEALER: sealer})
    group_commit = None
    if settings.audit_group_commit and engine.dialect.name == "postgresql":
        group_commit = GroupCommit(engine, sealer=sealer)
        group_commit.serve(sessions)
    return Platform(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=store,
        clock=clock or SystemClock(),
        key_wrapper=wrapper,
        audit_group_commit=group_commit,
        audit_key=sealer,
        audit_checkpoints=CheckpointSchedule(
            log_path(settings.audit_checkpoints),
            sealer,
            dt.timedelta(minutes=settings.audit_checkpoint_minutes),
        )
        if settings.audit_checkpoints
        else None,
    )


def master_key(settings: Settings) -> tuple[str, bytes]:
    """The master key and its id, from ``CARNET_MASTER_KEY``, else from the key file.

    When neither exists, a key file is created (mode 0600) — the embedded default — and a warning
    says to back it up: without it, no stored document can be read.
    """
    if settings.master_key is not None:
        key = load_master_key(settings.master_key.get_secret_value())
    else:
        path = settings.effective_master_key_file
        if not path.exists():
            _create_key_file(path)
            log.warning("Created a new master key at %s: back it up, documents need it.", path)
        key = load_master_key(path.read_text().strip())
    # The id is a fingerprint, so the same key read from the file or the environment is the same
    # key to the store; 48 bits of a SHA-256 reveal nothing useful about a 256-bit key.
    return "k" + hashlib.sha256(key).hexdigest()[:12], key


def audit_key(settings: Settings) -> AuditKey:
    """The audit key, from ``CARNET_AUDIT_SIGNING_KEY``, else from its key file.

    When neither exists, a key file is created (mode 0600) and a warning says to keep it apart
    from the database and to give auditors its public half (``carnet audit key``). Raises
    ``AuditKeyError`` (a ``ValueError``) when the key cannot be read.
    """
    retired = KeyRing.of(load_public_key(text) for text in settings.audit_retired_public_keys)
    if settings.audit_signing_key is not None:
        key = load_private_key(settings.audit_signing_key.get_secret_value())
        return replace(key, retired=retired)
    path = settings.effective_audit_signing_key_file
    key, created = read_or_create_key_file(path)
    if created:
        log.warning(
            "Created a new audit signing key %s at %s: keep it away from the database's hosts "
            "and give auditors its public key (`carnet audit key`).",
            key.key_id,
            path,
        )
    return replace(key, retired=retired)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two processes starting together must not each write a different key.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(descriptor, "w") as file:
        file.write(generate_master_key() + "\n")
        file.flush()
        os.fsync(file.fileno())
