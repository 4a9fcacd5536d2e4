"""Errors of the audit domain."""

from __future__ import annotations

from carnet.errors import CarnetError


class AuditUnavailable(CarnetError):
    """The audit trail cannot be written: the request must fail rather than go unrecorded."""

    def __init__(self) -> None:
        super().__init__(
            "Carnet cannot record this access in its audit trail right now; nothing was done."
        )
