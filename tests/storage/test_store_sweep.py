"""The store sweeper (carnet.lifecycle.sweep): unreferenced objects past the grace period go.

Run on both databases (SQLite, PostgreSQL) and both stores (filesystem, S3 through moto's
server): documents are published through the documents service and committed, as the
sweeper reads what other transactions committed. Objects written now are made "old" by
sweeping with a clock two hours ahead and a one-hour grace period.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.documents import publication, visibility
from carnet.lifecycle import jobs
from carnet.lifecycle.models import JobRun
from carnet.lifecycle.sweep import SweepReport, sweep_store
from carnet.platform import build_platform
from carnet.settings import Settings
from carnet.storage import DocumentStore
from carnet.storage.ports import ListedObject
from factories.actors import professional_actor
from factories.directory import make_professional
from factories.documents import lab_metadata, make_document
from factories.patients import make_patient
from storage.backends import Backend, FilesystemBackend, S3Backend

GRACE = dt.timedelta(hours=1)


class Refused(Exception):
    """Stands for whatever makes a publication's transaction roll back after its put."""


@pytest.fixture(params=["filesystem", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Each store in turn; the directory store beside (not around) the SQLite file."""
    if request.param == "filesystem":
        return FilesystemBackend(tmp_path / "store")
    client = request.getfixturevalue("s3_client")
    return S3Backend(client, request.getfixturevalue("bucket"))


@pytest.fixture
def sessions(committing_engine: Engine) -> sessionmaker[Session]:
    return session_factory(committing_engine)


@pytest.fixture
def dossier(sessions: sessionmaker[Session], clock: FrozenClock) -> tuple[uuid.UUID, Actor]:
    """A patient's active dossier and a professional who may publish in it (committed)."""
    with unit_of_work(sessions) as session:
        patient = make_patient(session, clock)
        author = professional_actor(make_professional(session, clock))
    return patient.id, author


def later(hours: float = 2) -> FrozenClock:
    """A clock ``hours`` ahead of the real time, which the store's write times follow."""
    return FrozenClock(dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours))


def sweep(sessions: sessionmaker[Session], store: DocumentStore, **options: object) -> SweepReport:
    return sweep_store(sessions, store, clock=later(), grace=GRACE, **options)  # type: ignore[arg-type]


def publish_refused(
    sessions: sessionmaker[Session],
    store: DocumentStore,
    clock: FrozenClock,
    dossier: tuple[uuid.UUID, Actor],
    content: bytes,
) -> None:
    """A publication whose transaction rolls back after its content was stored."""
    patient_id, author = dossier

    def publish() -> None:
        with unit_of_work(sessions) as session:
            make_document(
                session, store, clock, actor=author, patient_id=patient_id, content=content
            )
            raise Refused

    with pytest.raises(Refused):
        publish()


def test_referenced_objects_are_kept_whatever_the_document_status(
    sessions: sessionmaker[Session],
    backend: Backend,
    clock: FrozenClock,
    dossier: tuple[uuid.UUID, Actor],
) -> None:
    store = backend.make_store()
    patient_id, author = dossier
    with unit_of_work(sessions) as session:
        current = make_document(session, store, clock, actor=author, patient_id=patient_id)
        old = make_document(session, store, clock, actor=author, patient_id=patient_id)
        new = publication.replace_document(
            session,
            open_dossier(session, author, patient_id, purposes.REPLACE_DOCUMENT, clock=clock),
            store,
            replaced_id=old.id,
            metadata=lab_metadata(clock),
            content=b"Version corrigee",
        )
        wrong = make_document(session, store, clock, actor=author, patient_id=patient_id)
        visibility.mark_entered_in_error(
            session,
            open_dossier(session, author, patient_id, purposes.MANAGE_DOCUMENT, clock=clock),
            wrong.id,
        )
    orphan = store.put(str(patient_id), b"Contenu d'une publication refusee").key
    kept = sorted(d.content_key for d in (current, old, new, wrong))
    report = sweep(sessions, store)
    assert (report.examined, report.referenced, report.removed) == (5, 4, 1)
    assert report.removed_bytes > len(b"Contenu d'une publication refusee")  # sealed size
    assert backend.keys() == kept
    assert not store.exists(orphan)
    for key in kept:
        assert store.get(key)


def test_unreferenced_objects_within_the_grace_period_are_kept(
    sessions: sessionmaker[Session], backend: Backend, dossier: tuple[uuid.UUID, Actor]
) -> None:
    store = backend.make_store()
    orphan = store.put(str(dossier[0]), b"Peut-etre une publication en cours").key
    now = FrozenClock(dt.datetime.now(dt.UTC))
    report = sweep_store(sessions, store, clock=now, grace=GRACE)
    assert (report.examined, report.recent, report.removed) == (1, 1, 0)
    assert backend.keys() == [orphan]


def test_dry_run_reports_each_object_and_removes_nothing(
    sessions: sessionmaker[Session], backend: Backend, dossier: tuple[uuid.UUID, Actor]
) -> None:
    store = backend.make_store()
    orphans = sorted(store.put(str(dossier[0]), b"orphelin %d" % i).key for i in range(2))
    seen: list[ListedObject] = []
    report = sweep(sessions, store, dry_run=True, on_unreferenced=seen.append)
    assert [listed.key for listed in seen] == orphans
    assert (report.unreferenced, report.removed) == (2, 0)
    assert report.unreferenced_bytes == sum(listed.size for listed in seen) > 0
    assert "would be removed; nothing was removed" in report.summary(dry_run=True)
    assert backend.keys() == orphans


def test_a_refused_publication_leaves_nothing_after_a_sweep(
    sessions: sessionmaker[Session],
    backend: Backend,
    clock: FrozenClock,
    dossier: tuple[uuid.UUID, Actor],
) -> None:
    store = backend.make_store()
    publish_refused(sessions, store, clock, dossier, b"Compte rendu refuse")
    [left] = backend.keys()  # the content outlived its refused row: what the sweeper is for
    report = sweep(sessions, store)
    assert report.removed == 1
    assert backend.keys() == []
    assert "Store sweep: 1 objects examined, 1 unreferenced objects removed" in report.summary()
    assert not store.exists(left)


def test_content_shared_with_a_committed_document_survives_a_refused_twin(
    sessions: sessionmaker[Session],
    backend: Backend,
    clock: FrozenClock,
    dossier: tuple[uuid.UUID, Actor],
) -> None:
    # Why the request must not remove what it stored: the same bytes in the same dossier are
    # one object, which an earlier committed document may already hold.
    store = backend.make_store()
    patient_id, author = dossier
    with unit_of_work(sessions) as session:
        kept = make_document(
            session, store, clock, actor=author, patient_id=patient_id, content=b"Meme contenu"
        )
    publish_refused(sessions, store, clock, dossier, b"Meme contenu")
    assert sweep(sessions, store).removed == 0
    assert store.get(kept.content_key) == b"Meme contenu"


def test_the_scheduled_job_sweeps_in_slices_then_waits_for_the_interval(
    sessions: sessionmaker[Session], backend: Backend, dossier: tuple[uuid.UUID, Actor]
) -> None:
    store = backend.make_store()
    for i in range(3):
        store.put(str(dossier[0]), b"orphelin %d" % i)
    clock = later()
    schedule = jobs.SweepSchedule(grace=GRACE, interval=dt.timedelta(days=1), objects_per_run=2)

    def run() -> jobs.JobsReport:
        return jobs.run_jobs(sessions, store, clock=clock, retention_years=10, sweep=schedule)

    first = run()
    assert first.swept_objects == 2
    assert "2 unreferenced stored objects swept" in first.summary()
    assert run().swept_objects == 1  # resumed where the first slice stopped
    assert backend.keys() == []
    store.put(str(dossier[0]), b"orphelin tardif")
    clock.advance(dt.timedelta(hours=2))
    assert run().swept_objects == 0  # the last full sweep started less than a day ago
    clock.advance(dt.timedelta(days=1))
    assert run().swept_objects == 1
    # Without a schedule (or with a zero interval) the jobs never sweep.
    store.put(str(dossier[0]), b"orphelin ignore")
    clock.advance(dt.timedelta(days=2))
    assert jobs.run_jobs(sessions, store, clock=clock, retention_years=10).swept_objects == 0


def test_a_sweep_under_way_on_another_node_is_left_to_it(
    sessions: sessionmaker[Session], backend: Backend, dossier: tuple[uuid.UUID, Actor]
) -> None:
    store = backend.make_store()
    store.put(str(dossier[0]), b"orphelin")
    clock = later()
    schedule = jobs.SweepSchedule(grace=GRACE, interval=dt.timedelta(days=1))
    with unit_of_work(sessions) as session:  # another node took the lease and is sweeping
        session.add(
            JobRun(
                name=jobs.STORE_SWEEP,
                last_until=clock.now(),
                last_report=f'{{"resume_after": null, "lease_until": '
                f'"{(clock.now() + dt.timedelta(minutes=30)).isoformat()}"}}',
            )
        )
    assert jobs.sweep_store_slice(sessions, store, clock=clock, schedule=schedule) is None
    clock.advance(jobs.SWEEP_LEASE)  # that node died: its lease runs out, the sweep resumes
    swept = jobs.sweep_store_slice(sessions, store, clock=clock, schedule=schedule)
    assert swept is not None
    assert swept.removed == 1


def test_cli_dry_run_lists_then_sweep_removes(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CARNET_VAR_DIR": str(tmp_path / "var")}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    platform = build_platform(Settings(var_dir=tmp_path / "var"))
    try:
        orphan = platform.store.put(str(uuid.uuid4()), b"orphelin de la ligne de commande")
        young = platform.store.put(str(uuid.uuid4()), b"publication en cours").key
    finally:
        platform.close()
    two_days_ago = time.time() - 2 * 86_400
    patient_id, digest = orphan.key.split("/")
    os.utime(tmp_path / "var" / "store" / patient_id / digest[:2] / digest, (two_days_ago,) * 2)

    dry = runner.invoke(app, ["store", "sweep", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    lines = dry.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{orphan.key} ")
    assert "bytes, written" in lines[0]
    assert "1 unreferenced and past the grace period" in lines[1]
    assert (tmp_path / "var" / "store" / patient_id).exists()

    done = runner.invoke(app, ["store", "sweep"], env=env)
    assert done.exit_code == 0, done.output
    assert "2 objects examined, 1 unreferenced objects removed" in done.output
    assert not (tmp_path / "var" / "store" / patient_id / digest[:2] / digest).exists()

    now = runner.invoke(app, ["store", "sweep", "--grace-seconds", "0"], env=env)
    assert "1 unreferenced objects removed" in now.output, now.output
    assert not any((tmp_path / "var" / "store").rglob(young.split("/")[1]))
