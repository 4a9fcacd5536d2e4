"""Carnet served with its policy or its audit trail switched off — for the benchmark only.

Issue 8 asks what the policy and the audit cost: throughput with each on must be at least 90 %
of throughput with it off. Carnet itself has no way to switch either off (no setting, no
command: patient data is reached through the policy and every access is audited), so this
module, which lives in ``bench/`` and is never installed, replaces them inside the benchmark's
own server processes:

- ``policy``: ``access.guard.dossier_access`` answers, without reading anything, what the
  benchmark's rules would (an extended grant, consulted before); the in-memory decisions
  still run, so the same documents are shown;
- ``audit``: ``audit.service.record`` writes nothing, and no first-consultation notice is sent.

``python -m bench.national.unguarded --without audit --port 8000 --workers 2`` serves as
``carnet serve`` does (same HTTP protocol, event loop and options).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import uuid
from typing import Any

from carnet import app as carnet_app
from carnet.access import guard as access_guard
from carnet.access.actors import Actor
from carnet.access.models import GrantLevel
from carnet.access.policy import DossierAccess
from carnet.audit import service as audit_service
from carnet.audit.models import AuditEvent
from carnet.patients.models import DossierState

SWITCHES = ("policy", "audit")
_ENVIRONMENT = "CARNET_BENCH_WITHOUT"


def create_app() -> Any:
    """Carnet's app, with what ``CARNET_BENCH_WITHOUT`` names switched off (in each worker)."""
    switch_off(os.environ.get(_ENVIRONMENT, "").split(","))
    return carnet_app.create_app()


def switch_off(names: list[str]) -> None:
    """Replace the named parts in this process."""
    if "policy" in names:
        access_guard.dossier_access = _granted
    if "audit" in names:
        audit_service.record = _unrecorded
        audit_service.record_consultation = _untold
        # Nothing recorded, nothing to look up: no first-consultation notice either.
        audit_service.has_accessed_before = _seen


def _granted(
    session: Any, actor: Actor, patient_id: uuid.UUID, *, now: dt.datetime
) -> DossierAccess:
    return DossierAccess(
        patient_id=patient_id,
        dossier_state=DossierState.ACTIVE,
        grant_level=GrantLevel.EXTENDED,
        consulted_before=True,
    )


def _unrecorded(session: Any, **_fields: Any) -> AuditEvent:
    return AuditEvent(seq=1)


def _untold(*_args: Any, **_fields: Any) -> None:
    return None


def _seen(*_args: Any, **_fields: Any) -> bool:
    return True


def main() -> None:
    """Serve, as ``carnet serve`` would, with the parts named by ``--without`` off."""
    import uvicorn  # noqa: PLC0415

    from carnet.web.serving import EVENT_LOOP, HTTP_PROTOCOL  # noqa: PLC0415

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--without", required=True, help=f"comma-separated: {', '.join(SWITCHES)}")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    names = [name.strip() for name in args.without.split(",") if name.strip()]
    if not names or set(names) - set(SWITCHES):
        raise SystemExit(f"--without takes {', '.join(SWITCHES)}")
    # Worker processes build the app from the import string: they read the switches here.
    os.environ[_ENVIRONMENT] = ",".join(names)
    uvicorn.run(
        "bench.national.unguarded:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        proxy_headers=False,
        server_header=False,
        log_level="info",
        http=HTTP_PROTOCOL,
        loop=EVENT_LOOP,
    )


if __name__ == "__main__":
    main()
