"""The agency loads the national professional registry into the directory, audited.

The file format and its checks are the directory's (``directory.registry``); this module adds
what the directory, which sits below the audit trail, cannot: only the agency may load it, and
every professional created or changed is an event on the operator's audit chain, naming the
professional and the fields changed.
"""

from __future__ import annotations

from typing import TextIO

from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access.actors import Actor, ActorKind
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.directory.registry import RegistryReport, load_registry


def import_directory(
    session: Session, actor: Actor, stream: TextIO, *, clock: Clock
) -> RegistryReport:
    """Bring the directory up to date with a registry extract, in the caller's transaction.

    Recorded by the agency (an operator: ``AccessDenied`` otherwise). Raises
    ``InvalidDirectoryFile`` (nothing written) if any row is wrong. Each created or changed
    professional is audited as a ``lifecycle`` event with the professional as its entity (the
    audit trail has no directory action; a directory change is an entry's lifecycle).
    """
    if actor.kind is not ActorKind.OPERATOR:
        raise access_guard.refuse(actor, AuditAction.LIFECYCLE, "only the agency", None)
    report = load_registry(session, stream, clock=clock)
    for change in report.changes:
        audit_trail.record(
            session,
            agent=actor.agent,
            action=AuditAction.LIFECYCLE,
            clock=clock,
            entity_ids=[change.professional_id],
            reason="directory entry created from the national registry"
            if change.created
            else "directory entry updated from the national registry",
            details={
                "directory": "created" if change.created else "updated",
                "system": change.system,
                "identifier": change.identifier,
                "fields": list(change.fields),
            },
        )
    return report
