"""Verifying the audit trail against Carnet's public key and the checkpoint log.

``service.verify`` proves each chain is internally consistent — which anyone who can write the
tables can arrange again after an edit, the hash algorithm being public. This adds what they
cannot arrange without Carnet's key or the checkpoint log:

- every head's signature verifies with a public audit key, over the head's ``(chain, seq,
  hash)``: an event edited after the last checkpoint and its chain re-hashed leaves a head Carnet
  never signed, or an unsigned one (``unsigned head``, also what heads from before signing began
  are until ``carnet audit seal-unsigned`` seals them);
- for every chain a checkpoint names, at its latest checkpointed ``(seq, hash)``: the chain still
  exists (a deleted chain with its head), its event ``seq`` still has that hash (an edit re-hashed
  from before the checkpoint), and its head is at or beyond ``seq`` (a truncated tail, a head
  moved back);
- the checkpoint log itself is an unbroken chain of signed lines (``checkpoints.read_log``).

Only public keys are needed: an auditor runs it with ``carnet audit key``'s output and the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from carnet.audit.checkpoints import CheckpointLog, Pin
from carnet.audit.models import AuditChainHead, AuditEvent
from carnet.audit.service import Verification, verify
from carnet.audit.signing import KeyRing, head_message

_BATCH: Final = 1000
UNSIGNED_HEAD: Final = "unsigned head"


@dataclass(frozen=True)
class Finding:
    """Something the trail should not show: what, and on which chain (None: the log itself)."""

    kind: str
    detail: str
    chain_id: uuid.UUID | None = None

    def __str__(self) -> str:
        where = f"chain {self.chain_id}: " if self.chain_id else "checkpoint log: "
        return f"{self.kind}: {where}{self.detail}"


@dataclass
class TrailReport:
    """What ``verify_trail`` found: the chains' own links, the heads, the checkpoints."""

    links: Verification
    findings: list[Finding] = field(default_factory=list)
    signed_heads: int = 0
    checkpointed_chains: int = 0
    checkpoint_records: int = 0

    @property
    def intact(self) -> bool:
        """Whether nothing at all was found."""
        return self.links.intact and not self.findings


def verify_trail(
    session: Session,
    ring: KeyRing,
    *,
    checkpoints: CheckpointLog | None = None,
    chain_ids: Sequence[uuid.UUID] | None = None,
) -> TrailReport:
    """Check every chain's links, every head's signature, and every checkpointed position."""
    report = TrailReport(links=verify(session, chain_ids=chain_ids))
    pins = checkpoints.pins if checkpoints is not None else {}
    if checkpoints is not None:
        report.checkpoint_records = checkpoints.records
        report.checkpointed_chains = len(pins)
        report.findings += [Finding("bad checkpoint log", p) for p in checkpoints.problems]
    query = select(AuditChainHead)
    if chain_ids is not None:
        query = query.where(AuditChainHead.chain_id.in_(chain_ids))
    heads: dict[uuid.UUID, tuple[int, str]] = {}
    for head in session.scalars(query).yield_per(_BATCH):
        heads[head.chain_id] = (head.last_seq, head.last_hash)
        _check_head(report, ring, head, pins.get(head.chain_id, []))
    if checkpoints is not None:
        wanted = {
            chain: pin for chain, pin in pins.items() if chain_ids is None or chain in chain_ids
        }
        _check_pins(session, report, wanted, heads)
    return report


def _check_head(
    report: TrailReport,
    ring: KeyRing,
    head: AuditChainHead,
    chain_pins: list[Pin],
) -> None:
    chain = head.chain_id
    if head.signature is not None:
        message = head_message(chain, head.last_seq, head.last_hash)
        if head.key_id not in ring.keys:
            report.findings.append(
                Finding(
                    "head signed by an unknown key",
                    f"key {head.key_id} (give its public key if it was rotated out)",
                    chain,
                )
            )
        elif not ring.verifies(head.key_id, head.signature, message):
            report.findings.append(
                Finding(
                    "head signature does not verify",
                    f"head at event {head.last_seq} was not written by Carnet "
                    "(an edit re-hashed, or a head moved)",
                    chain,
                )
            )
        else:
            report.signed_heads += 1
        return
    # Unsigned: Carnet refuses to extend it (``service.vouch_for_head``), and nothing here tells
    # a head from before signing began from one stripped of its signature, unless a checkpoint
    # saw it signed. Either way it is a finding; ``carnet audit seal-unsigned`` seals the former.
    signed = next((pin for pin in chain_pins if pin.signed), None)
    if signed is not None:
        detail = f"checkpoint {signed.record} saw it signed; its signature was removed"
    else:
        detail = (
            f"head at event {head.last_seq} carries no signature (from before signing began: "
            "`carnet audit seal-unsigned`; otherwise removed)"
        )
    report.findings.append(Finding(UNSIGNED_HEAD, detail, chain))


def _check_pins(
    session: Session,
    report: TrailReport,
    pins: dict[uuid.UUID, list[Pin]],
    heads: dict[uuid.UUID, tuple[int, str]],
) -> None:
    for batch in _batches(sorted(pins, key=str)):
        wanted = {(chain, pin.seq) for chain in batch for pin in pins[chain]}
        found: dict[tuple[uuid.UUID, int], str] = {}
        for part in _batches(sorted(wanted, key=str)):
            found |= {
                (chain, int(seq)): last_hash
                for chain, seq, last_hash in session.execute(
                    select(AuditEvent.chain_id, AuditEvent.seq, AuditEvent.hash).where(
                        tuple_(AuditEvent.chain_id, AuditEvent.seq).in_(part)
                    )
                )
            }
        for chain in batch:
            report.findings += against_pins(chain, pins[chain], found, heads.get(chain))


def against_pins(
    chain: uuid.UUID,
    chain_pins: list[Pin],
    found: dict[tuple[uuid.UUID, int], str],
    head: tuple[int, str] | None,
) -> list[Finding]:
    """What the chain's pins say of it now: the first missing and first altered, the head."""
    highest = max(chain_pins, key=lambda pin: pin.seq)
    at = f"checkpoint {highest.record} has it at event {highest.seq}"
    if head is None and not any((chain, pin.seq) in found for pin in chain_pins):
        return [Finding("deleted chain", f"{at}; chain and head gone", chain)]
    findings = []
    missing = next((pin for pin in chain_pins if (chain, pin.seq) not in found), None)
    if missing is not None:
        findings.append(
            Finding(
                "truncated tail",
                f"checkpoint {missing.record} has it at event {missing.seq}; that event is gone",
                chain,
            )
        )
    altered = next(
        (pin for pin in chain_pins if found.get((chain, pin.seq), pin.last_hash) != pin.last_hash),
        None,
    )
    if altered is not None:
        findings.append(
            Finding(
                "re-hashed edit",
                f"checkpoint {altered.record} has its event {altered.seq} with another hash: "
                "history before it was rewritten",
                chain,
            )
        )
    if head is None:
        findings.append(Finding("deleted head", f"{at}; its head is gone", chain))
    elif head[0] < highest.seq:
        findings.append(Finding("moved head", f"{at}; its head is back at event {head[0]}", chain))
    return findings


def _batches(chains: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(chains), _BATCH):
        yield chains[start : start + _BATCH]
