"""Chain heads from before signing began: found, checked and sealed once, deliberately.

Carnet refuses to extend an unsigned head (``service.vouch_for_head``): nothing in the database
tells a head last written before revision 0009 from one whose signature the database owner
deleted to launder an edit. The heads from before signing are therefore sealed by an operator's
command (``carnet audit seal-unsigned``), not by the next request: each unsigned head's chain is
walked from its genesis first and sealed only if every link holds and the head names its last
event; with a checkpoint log, a chain some checkpoint saw signed, or that no longer matches a
checkpointed position, is refused too. What this cannot see is a chain re-hashed whole after an
edit and never checkpointed: the links then hold. Seal right after upgrading, before anyone could
have had the time, or against the checkpoint log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Final, cast

from sqlalchemy import Table, bindparam, select, tuple_, update
from sqlalchemy.orm import Session

from carnet.audit.checkpoints import CheckpointLog
from carnet.audit.models import AuditChainHead, AuditEvent
from carnet.audit.service import verify
from carnet.audit.signing import AuditKey
from carnet.audit.verify import against_pins

# Heads per batch: one statement locks them, one walks their chains, one seals them.
BATCH: Final = 1000
# How many of the least recently written heads ``unsigned_heads_remain`` looks at.
_OLDEST: Final = 1000


@dataclass
class Sealing:
    """What one batch of ``seal_unsigned_heads`` did: heads sealed, chains refused and why."""

    sealed: int = 0
    refused: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    # The last chain of the batch (the next batch starts after it); None: no unsigned head left.
    last_chain: uuid.UUID | None = None


def seal_unsigned_heads(
    session: Session,
    key: AuditKey,
    *,
    checkpoints: CheckpointLog | None = None,
    after: uuid.UUID | None = None,
    batch: int = BATCH,
) -> Sealing:
    """Seal up to ``batch`` unsigned heads (by chain id, after ``after``) whose chains hold.

    A head is sealed with ``key`` over its ``(chain, seq, last_hash)`` when its chain's links
    verify from genesis to the head (``service.verify``) and, given ``checkpoints``, no
    checkpoint saw the head signed and every checkpointed position still holds. The others are
    left unsigned (Carnet keeps refusing to extend them) and listed with the reason. Idempotent:
    a sealed head is no longer unsigned. Runs in the caller's transaction; the heads are locked.
    """
    query = (
        select(_HEADS.c.chain_id, _HEADS.c.last_seq, _HEADS.c.last_hash)
        .where(_HEADS.c.signature.is_(None))
        .order_by(_HEADS.c.chain_id)
        .limit(batch)
        .with_for_update()
    )
    if after is not None:
        query = query.where(_HEADS.c.chain_id > after)
    heads = {
        row.chain_id: (int(row.last_seq), str(row.last_hash)) for row in session.execute(query)
    }
    done = Sealing(last_chain=max(heads, default=None))
    if not heads:
        return done
    chains = sorted(heads)
    problems: dict[uuid.UUID, str] = {
        broken.chain_id: str(broken) for broken in verify(session, chain_ids=chains).broken
    }
    if checkpoints is not None:
        problems = _against_checkpoints(session, checkpoints, heads) | problems
    seals = [
        {
            "chain": chain,
            "seq": seq,
            "last": last_hash,
            "signature": key.seal_head(chain, seq, last_hash),
            "key": key.key_id,
        }
        for chain, (seq, last_hash) in heads.items()
        if chain not in problems
    ]
    if seals:
        session.execute(_SEAL, seals)
    done.sealed = len(seals)
    done.refused = [(chain, problems[chain]) for chain in chains if chain in problems]
    return done


def unsigned_heads_remain(session: Session) -> bool:
    """Whether heads from before signing began are still unsigned (a cheap probe, not a count).

    Every head written since signing began is signed, so the unsigned ones from before are
    among the least recently written: the probe reads the oldest heads by ``updated_at``
    (indexed) instead of scanning every dossier's head. A signature removed later is not its
    business (``carnet audit verify`` names it; Carnet refuses to extend it).
    """
    oldest = select(_HEADS.c.signature).order_by(_HEADS.c.updated_at).limit(_OLDEST).subquery()
    return (
        session.execute(
            select(oldest.c.signature).where(oldest.c.signature.is_(None)).limit(1)
        ).first()
        is not None
    )


def _against_checkpoints(
    session: Session, checkpoints: CheckpointLog, heads: dict[uuid.UUID, tuple[int, str]]
) -> dict[uuid.UUID, str]:
    pinned = {chain: checkpoints.pins[chain] for chain in heads if chain in checkpoints.pins}
    wanted = sorted({(chain, pin.seq) for chain, pins in pinned.items() for pin in pins}, key=str)
    found: dict[tuple[uuid.UUID, int], str] = {}
    for start in range(0, len(wanted), BATCH):
        found |= {
            (chain, int(seq)): last_hash
            for chain, seq, last_hash in session.execute(
                select(AuditEvent.chain_id, AuditEvent.seq, AuditEvent.hash).where(
                    tuple_(AuditEvent.chain_id, AuditEvent.seq).in_(wanted[start : start + BATCH])
                )
            )
        }
    problems: dict[uuid.UUID, str] = {}
    for chain, pins in pinned.items():
        signed = next((pin for pin in pins if pin.signed), None)
        findings = against_pins(chain, pins, found, heads[chain])
        if signed is not None:
            problems[chain] = f"checkpoint {signed.record} saw it signed; its signature was removed"
        elif findings:
            problems[chain] = "; ".join(f"{finding.kind}: {finding.detail}" for finding in findings)
    return problems


_HEADS = cast(Table, AuditChainHead.__table__)
# Sealed only where it still stands as it was checked: a head moved meanwhile stays unsigned.
_SEAL = (
    update(_HEADS)
    .where(
        _HEADS.c.chain_id == bindparam("chain"),
        _HEADS.c.signature.is_(None),
        _HEADS.c.last_seq == bindparam("seq", type_=_HEADS.c.last_seq.type),
        _HEADS.c.last_hash == bindparam("last", type_=_HEADS.c.last_hash.type),
    )
    .values(
        signature=bindparam("signature", type_=_HEADS.c.signature.type),
        key_id=bindparam("key", type_=_HEADS.c.key_id.type),
    )
)
