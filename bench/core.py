"""Benchmark of the core services: add, read and list documents on SQLite or PostgreSQL.

Run ``python -m bench.core --help``. Results go to ``bench/results/core-<database>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from carnet import schema
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import SystemClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.demo import load_demo
from carnet.directory.models import Profession
from carnet.directory.service import register_professional
from carnet.documents import service as documents
from carnet.patients import identifiers
from carnet.patients.models import Sex
from carnet.patients.service import Demographics, create_dossier
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper

RESULTS = Path(__file__).parent / "results"
POSTGRES_URL = os.environ.get(
    "CARNET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def main() -> None:
    """Parse arguments, run the benchmark, write the result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--size", type=int, default=50_000, help="bytes per document")
    parser.add_argument("--demo", action="store_true", help="also time a full demo load")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, _database(args.database, Path(work)) as url:
        result = run(url, Path(work), args)
    result["database"] = args.database
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"core-{args.database}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"written to {path}")


def run(url: str, work: Path, args: argparse.Namespace) -> dict[str, object]:
    """Add, read and list documents; return the figures."""
    engine = make_engine(url)
    schema.upgrade(engine)
    sessions = session_factory(engine)
    store = FilesystemDocumentStore(
        work / "store", MasterKeyWrapper(secrets.token_bytes(32), "bench"), max_bytes=50 * 2**20
    )
    clock = SystemClock()
    with unit_of_work(sessions) as session:
        author = register_professional(
            session,
            identifier_system=identifiers.FR_RPPS,
            identifier_value=identifiers.fr_rpps(4242),
            family="Bench",
            given="Mark",
            profession=Profession.BIOLOGIST,
            clock=clock,
        ).id
        patient_ids = [_patient(session, clock, index) for index in range(args.patients)]
    payload = b"%PDF-1.4\n" + os.urandom(args.size - 9)
    added: list[tuple[uuid.UUID, uuid.UUID]] = []

    def add(index: int) -> None:
        patient_id = patient_ids[index % len(patient_ids)]
        with unit_of_work(sessions) as session:
            document = documents.add_document(
                session,
                store,
                patient_id=patient_id,
                metadata=documents.DocumentMetadata(
                    type_system=LOINC_SYSTEM,
                    type_code="11502-2",
                    title="Laboratory report",
                    mime_type="application/pdf",
                    created_at=clock.now(),
                    author_professional_id=author,
                ),
                # Distinct content per document, as in life: no deduplication shortcut.
                content=payload + index.to_bytes(8, "big"),
                clock=clock,
            )
            added.append((patient_id, document.id))

    def read(index: int) -> None:
        patient_id, document_id = added[index % len(added)]
        with sessions() as session:
            documents.read_content(session, store, patient_id, document_id)

    def timeline(index: int) -> None:
        with sessions() as session:
            documents.list_documents(session, patient_ids[index % len(patient_ids)])

    figures = {
        "add_document": _measure(add, args.documents),
        "read_content": _measure(read, args.documents),
        "list_documents": _measure(timeline, args.documents),
        "document_bytes": args.size,
        "documents": args.documents,
    }
    if args.demo:
        figures["demo_load_seconds"] = _demo(sessions, work)
    engine.dispose()
    return figures


def _demo(sessions: sessionmaker[Session], work: Path) -> float:
    store = FilesystemDocumentStore(
        work / "demo-store", MasterKeyWrapper(secrets.token_bytes(32), "demo"), max_bytes=2**26
    )
    started = time.perf_counter()
    load_demo(sessions, store, seed=20261123)
    return round(time.perf_counter() - started, 2)


def _patient(session: Session, clock: SystemClock, index: int) -> uuid.UUID:
    birth = clock.now().date().replace(year=1970 + index % 50, day=1)
    return create_dossier(
        session,
        identifiers_=[(identifiers.LU_MATRICULE, identifiers.lu_matricule(birth, index % 1000))],
        demographics=Demographics(
            family="Bench", given=f"P{index}", birth_date=birth, sex=Sex.OTHER
        ),
        clock=clock,
    ).id


def _measure(operation: Callable[[int], None], count: int) -> dict[str, float]:
    timings = []
    started = time.perf_counter()
    for index in range(count):
        begin = time.perf_counter()
        operation(index)
        timings.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(timings, n=100)
    return {
        "per_second": round(count / elapsed, 1),
        "p50_ms": round(quantiles[49] * 1000, 2),
        "p95_ms": round(quantiles[94] * 1000, 2),
        "p99_ms": round(quantiles[98] * 1000, 2),
    }


def markdown(result: dict[str, object]) -> str:
    """The result as a Markdown table."""
    lines = ["| operation | per second | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|"]
    for name in ("add_document", "read_content", "list_documents"):
        row = result[name]
        assert isinstance(row, dict)
        cells = [row["per_second"], row["p50_ms"], row["p95_ms"], row["p99_ms"]]
        lines.append(f"| {name} | " + " | ".join(str(cell) for cell in cells) + " |")
    if "demo_load_seconds" in result:
        lines.append(f"\ndemo load: {result['demo_load_seconds']} s")
    return "\n".join(lines)


@contextmanager
def _database(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'bench.db'}"
        return
    name = f"carnet_bench_{secrets.token_hex(4)}"
    admin = (
        make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield (
            make_url(POSTGRES_URL)
            .set(drivername="postgresql+psycopg", database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


if __name__ == "__main__":
    main()
