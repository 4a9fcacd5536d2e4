"""Checkpoints of the audit chain heads, published outside the database.

A signed head proves Carnet wrote it, not that it is the newest Carnet wrote: whoever can write
the tables can delete a dossier's chain with its head, or cut a chain back to an earlier head and
restore that head's (genuine) signature. What they cannot do is reach a log kept elsewhere. A
checkpoint appends, to an append-only JSON-lines file away from the database (``file://``; give
it an append-only or WORM medium), one record per ``MAX_HEADS`` heads::

    {"v": 1, "n": 7, "at": "...", "since": "...", "prev": "<sha256 of line 6>",
     "heads": [["<chain id>", 12, "<last hash>", true], ...], "key_id": "a…", "signature": "…"}

``heads`` are ``(chain_id, last_seq, last_hash, signed)`` of every chain whose head changed since
the previous checkpoint (found by ``audit_chain_heads.updated_at``, indexed), or of every chain
for the first checkpoint (``since`` null) or ``--full``. Each record names the previous line's
hash, so the log is itself a chain: a deleted, inserted or edited line breaks it; and each is
signed with the audit key, so the database owner cannot forge one. ``carnet audit verify
--checkpoints`` checks the trail against the last position each chain was checkpointed at.

The incremental window reaches back ``OVERLAP`` before the previous checkpoint: a head is stamped
with the time its event was recorded, and its transaction may commit a little later; a head
re-listed costs a few bytes, a head missed would be unpinned until its chain moves again.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import unquote, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carnet.audit.models import AuditChainHead
from carnet.audit.service import GENESIS
from carnet.audit.signing import AuditKey, KeyRing, checkpoint_message
from carnet.clock import Clock
from carnet.db import unit_of_work

VERSION: Final = 1
# Heads per record: a line stays a few MB however many dossiers changed.
MAX_HEADS: Final = 10_000
# How far before the previous checkpoint the next one looks (longer than any transaction).
OVERLAP: Final = dt.timedelta(minutes=10)


class CheckpointLogError(ValueError):
    """The checkpoint log cannot be used (bad location, unreadable, not a checkpoint log)."""


def log_path(location: str) -> Path:
    """The file a ``file://`` URL (or a plain path) names; other schemes are refused."""
    if "://" not in location:
        return Path(location)
    parts = urlsplit(location)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise CheckpointLogError(
            f"checkpoints can be published to a file:// path only, not {parts.scheme}://"
        )
    return Path(unquote(parts.path))


@dataclass(frozen=True)
class Pin:
    """Where a checkpoint saw a chain: its last number and hash, and whether the head was signed."""

    seq: int
    last_hash: str
    signed: bool
    record: int


@dataclass
class CheckpointLog:
    """What a verified checkpoint log says: every chain's pins, and what is wrong with the log.

    A chain's pins are in log order; all are checked, not only the latest: a rewrite between
    two checkpoints that the second one saw is still given away by the first.
    """

    records: int = 0
    last_at: dt.datetime | None = None
    pins: dict[uuid.UUID, list[Pin]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CheckpointTaken:
    """What one checkpoint appended."""

    first_record: int
    records: int
    heads: int
    since: dt.datetime | None

    def summary(self, path: Path) -> str:
        """One line for the operator and the log."""
        scope = f"changed since {self.since.isoformat()}" if self.since else "all (a full one)"
        return (
            f"Checkpoint {self.first_record} appended to {path}: {self.heads} chain heads, "
            f"{scope}, in {self.records} signed records."
        )


@dataclass(frozen=True)
class CheckpointSchedule:
    """Where and how often the scheduled jobs publish checkpoints (``CARNET_AUDIT_CHECKPOINTS``)."""

    path: Path
    key: AuditKey = field(repr=False)
    every: dt.timedelta


def publish_due_checkpoint(
    sessions: sessionmaker[Session], schedule: CheckpointSchedule, *, clock: Clock
) -> CheckpointTaken | None:
    """The scheduled job: a checkpoint if the last one is older than the schedule's interval.

    Every worker of a host runs it; the log's lock makes the first one due take it and the
    others find it recent. Several hosts need a log each (or a shared one on a filesystem whose
    locks they honour): each log is a chain of its own, and verify reads any of them.
    """
    with unit_of_work(sessions) as session:
        return checkpoint_if_due(
            session, schedule.path, key=schedule.key, clock=clock, every=schedule.every
        )


def take_checkpoint(
    session: Session, path: Path, *, key: AuditKey, clock: Clock, full: bool = False
) -> CheckpointTaken:
    """Append the heads changed since the last checkpoint in ``path`` (all, if ``full``).

    The file is locked while the heads are read and written, so workers or commands running
    together append whole, consecutive records. Raises ``CheckpointLogError`` when the file
    cannot be written or its last line is not a checkpoint record.
    """
    with _locked(path) as file:
        previous = _last_record(file)
        taken = _append(session, file, previous, key=key, clock=clock, full=full)
    return taken


def checkpoint_if_due(
    session: Session, path: Path, *, key: AuditKey, clock: Clock, every: dt.timedelta
) -> CheckpointTaken | None:
    """Take a checkpoint if the last one in ``path`` is older than ``every``; what it took."""
    with _locked(path) as file:
        previous = _last_record(file)
        if previous is not None and clock.now() - _time(previous[0]["at"]) < every:
            return None
        return _append(session, file, previous, key=key, clock=clock, full=False)


def read_log(path: Path, ring: KeyRing) -> CheckpointLog:
    """Read and check the checkpoint log at ``path``: its chain of lines and their signatures.

    Problems (a line that is not a record, a broken link to the previous line — a line deleted,
    inserted or edited —, a signature that does not verify) are listed by line; the pins of a
    record whose signature fails are not used. Raises ``CheckpointLogError`` if unreadable.
    """
    log = CheckpointLog()
    previous_hash, expected = GENESIS, 1
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise CheckpointLogError(f"cannot read the checkpoint log {path}: {error}") from error
    for number, line in enumerate(lines, start=1):
        log.records += 1
        try:
            record = json.loads(line)
            n, prev, signature, key_id = (
                int(record["n"]),
                record["prev"],
                record["signature"],
                record["key_id"],
            )
            at = _time(record["at"])
            heads = [(uuid.UUID(c), int(s), str(h), bool(g)) for c, s, h, g in record["heads"]]
        except (ValueError, KeyError, TypeError) as error:
            log.problems.append(f"line {number}: not a checkpoint record ({error})")
            previous_hash, expected = hashlib.sha256(line).hexdigest(), expected + 1
            continue
        if prev != previous_hash:
            log.problems.append(
                f"line {number}: does not follow the line before it "
                "(a checkpoint line was deleted, inserted or edited)"
            )
        if n != expected:
            log.problems.append(f"line {number}: checkpoint {n} where {expected} was expected")
        signed = {k: v for k, v in record.items() if k != "signature"}
        if not ring.verifies(key_id, signature, checkpoint_message(_canonical(signed))):
            log.problems.append(
                f"line {number}: signature does not verify with key {key_id} "
                "(edited, or signed by a key not given)"
            )
        else:
            log.last_at = at
            for chain_id, seq, last_hash, head_signed in heads:
                log.pins.setdefault(chain_id, []).append(Pin(seq, last_hash, head_signed, n))
        previous_hash, expected = hashlib.sha256(line).hexdigest(), n + 1
    return log


def _append(
    session: Session,
    file: IO[bytes],
    previous: tuple[dict[str, Any], bytes] | None,
    *,
    key: AuditKey,
    clock: Clock,
    full: bool,
) -> CheckpointTaken:
    now = clock.now()
    since, number, prev = None, 1, GENESIS
    if previous is not None:
        record, line = previous
        since = None if full else _time(record["at"]) - OVERLAP
        number, prev = int(record["n"]) + 1, hashlib.sha256(line).hexdigest()
    first, heads, records = number, 0, 0
    for chunk in _changed_heads(session, since):
        line = _signed_line(
            key,
            {
                "v": VERSION,
                "n": number,
                "at": now.isoformat(timespec="microseconds"),
                "since": since.isoformat(timespec="microseconds") if since else None,
                "prev": prev,
                "heads": chunk,
            },
        )
        _write(file, line)
        prev, number = hashlib.sha256(line).hexdigest(), number + 1
        heads, records = heads + len(chunk), records + 1
    return CheckpointTaken(first_record=first, records=records, heads=heads, since=since)


def _changed_heads(session: Session, since: dt.datetime | None) -> Iterator[list[list[Any]]]:
    """The heads changed since ``since`` (all when None), in chunks; one empty chunk if none.

    An empty record still says "nothing changed up to this time", signed.
    """
    query = select(
        AuditChainHead.chain_id,
        AuditChainHead.last_seq,
        AuditChainHead.last_hash,
        AuditChainHead.signature,
    )
    if since is not None:
        query = query.where(AuditChainHead.updated_at >= since)
    chunk: list[list[Any]] = []
    sent = False
    for chain_id, seq, last_hash, signature in session.execute(query).yield_per(MAX_HEADS):
        chunk.append([str(chain_id), int(seq), last_hash, signature is not None])
        if len(chunk) == MAX_HEADS:
            yield chunk
            chunk, sent = [], True
    if chunk or not sent:
        yield chunk


def _signed_line(key: AuditKey, record: dict[str, Any]) -> bytes:
    record = record | {"key_id": key.key_id}
    signature = key.sign(checkpoint_message(_canonical(record)))
    return _canonical(record | {"signature": signature})


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


def _time(value: object) -> dt.datetime:
    moment = dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        raise ValueError("checkpoint time without a zone")
    return moment


def _write(file: IO[bytes], line: bytes) -> None:
    file.write(line + b"\n")
    file.flush()
    # A checkpoint that a power cut can take back is no checkpoint.
    os.fsync(file.fileno())


class _locked:  # noqa: N801 — reads as the context manager it is
    """The log opened for appending, under an exclusive lock (workers of one host)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> IO[bytes]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self.path.open("a+b")
        except OSError as error:
            raise CheckpointLogError(
                f"cannot open the checkpoint log {self.path}: {error}"
            ) from error
        fcntl.flock(self.file.fileno(), fcntl.LOCK_EX)
        return self.file

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self.file.fileno(), fcntl.LOCK_UN)
        self.file.close()


def _last_record(file: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """The last line of the log, parsed and as written; None for an empty log."""
    end = file.seek(0, os.SEEK_END)
    if end == 0:
        return None
    position, tail = end, b""
    while position > 0 and tail.rstrip(b"\n").count(b"\n") == 0:
        step = min(65536, position)
        position -= step
        file.seek(position)
        tail = file.read(step) + tail
    line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or "n" not in record or "at" not in record:
            raise ValueError("no checkpoint number or time")
        _time(record["at"])
    except ValueError as error:
        raise CheckpointLogError(
            f"the last line of {file.name!r} is not a checkpoint record: "
            "verify the log before appending to it"
        ) from error
    return record, line
