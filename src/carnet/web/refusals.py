"""Refusals recorded on their own: the request's transaction was rolled back with its error."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from carnet.access.errors import AccessError
from carnet.audit import service as audit_trail
from carnet.audit.errors import AuditUnavailable
from carnet.db import unit_of_work
from carnet.platform import Platform


def record_refusal(platform: Platform, error: AccessError) -> None:
    """Record a refused request in a transaction of its own (the request's was rolled back).

    Raises ``AuditUnavailable`` if the record cannot be written: the caller answers 503.
    """
    if error.refusal is None:
        return
    try:
        with unit_of_work(platform.sessions) as session:
            audit_trail.record_refusal(session, error.refusal, clock=platform.clock)
    except SQLAlchemyError as failure:
        raise AuditUnavailable() from failure
