"""What the audit trail costs: document searches with the trail on, and with it switched off.

The trail cannot be switched off in Carnet — there is no setting for it. This benchmark replaces
``carnet.audit.service.record`` with a no-op inside its own process, for the second half of the
measurement only, to show the price of recording every access.

Run ``python -m bench.audit_cost --database postgresql``; results go to
``bench/results/audit-<database>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.core import RESULTS, _database, _measure
from carnet import schema
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.models import GrantLevel
from carnet.access.scopes import parse_scopes
from carnet.access.service import grant_access
from carnet.audit import service as audit_trail
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import SystemClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.directory.models import Profession
from carnet.directory.service import register_professional
from carnet.documents import service as documents
from carnet.patients import identifiers
from carnet.patients.models import Sex
from carnet.patients.service import Demographics, create_dossier
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper

SCOPES = parse_scopes("user/*.cruds")[0]


def main() -> None:
    """Measure searches with and without the audit record; write the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--documents-per-patient", type=int, default=10)
    parser.add_argument("--searches", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, _database(args.database, Path(work)) as url:
        result = run(url, Path(work), args)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"audit-{args.database}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    on, off = result["search_audited"], result["search_unaudited"]
    print(
        f"| {args.database} | audited {on['per_second']}/s p99 {on['p99_ms']} ms "
        f"| unaudited {off['per_second']}/s p99 {off['p99_ms']} ms "
        f"| audited/unaudited {result['ratio']:.2f} |"
    )
    print(f"written to {path}")


def run(url: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Build a population with grants, then time searches by a professional."""
    engine = make_engine(url)
    schema.upgrade(engine)
    sessions = session_factory(engine)
    store = FilesystemDocumentStore(
        work / "store", MasterKeyWrapper(secrets.token_bytes(32), "bench"), max_bytes=2**26
    )
    clock = SystemClock()
    with unit_of_work(sessions) as session:
        doctor = register_professional(
            session,
            identifier_system=identifiers.FR_RPPS,
            identifier_value=identifiers.fr_rpps(777),
            family="Bench",
            given="Doc",
            profession=Profession.GENERAL_PRACTITIONER,
            clock=clock,
        )
    reader = Actor(
        kind=ActorKind.PROFESSIONAL,
        subject="Practitioner/bench",
        assurance=Assurance.HIGH,
        scopes=SCOPES,
        professional_id=doctor.id,
        profession=doctor.profession.value,
    )
    patients: list[uuid.UUID] = []
    for index in range(args.patients):
        with unit_of_work(sessions) as session:
            patients.append(
                _patient_with_documents(
                    session, store=store, clock=clock, index=index, doctor_id=doctor.id, args=args
                )
            )

    def search(index: int) -> None:
        with unit_of_work(sessions) as session:
            documents.list_documents(session, reader, patients[index % len(patients)], clock=clock)

    audited = _measure(search, args.searches)
    original = audit_trail.record
    audit_trail.record = lambda *a, **k: None  # type: ignore[assignment,misc]
    try:
        unaudited = _measure(search, args.searches)
    finally:
        audit_trail.record = original
    engine.dispose()
    return {
        "database": args.database,
        "patients": args.patients,
        "documents_per_patient": args.documents_per_patient,
        "search_audited": audited,
        "search_unaudited": unaudited,
        "ratio": audited["per_second"] / unaudited["per_second"],
    }


def _patient_with_documents(
    session: Any,
    *,
    store: FilesystemDocumentStore,
    clock: SystemClock,
    index: int,
    doctor_id: uuid.UUID,
    args: argparse.Namespace,
) -> uuid.UUID:
    birth = clock.now().date().replace(year=1960 + index % 40, day=1)
    patient = create_dossier(
        session,
        identifiers_=[(identifiers.LU_MATRICULE, identifiers.lu_matricule(birth, index % 1000))],
        demographics=Demographics(
            family="Bench", given=f"P{index}", birth_date=birth, sex=Sex.OTHER
        ),
        clock=clock,
    )
    me = Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient.id}",
        assurance=Assurance.HIGH,
        scopes=SCOPES,
        person_id=patient.id,
        acting_for=patient.id,
    )
    grant_access(
        session, me, patient.id, level=GrantLevel.EXTENDED, professional_id=doctor_id, clock=clock
    )
    for number in range(args.documents_per_patient):
        documents.add_document(
            session,
            store,
            actor=me,
            patient_id=patient.id,
            metadata=documents.DocumentMetadata(
                type_system=LOINC_SYSTEM,
                type_code="11502-2",
                title="Result",
                mime_type="text/plain",
                created_at=clock.now(),
            ),
            content=f"{index}-{number}".encode(),
            clock=clock,
        )
    return patient.id


if __name__ == "__main__":
    main()
