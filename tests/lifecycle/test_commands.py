"""The lifecycle's ways in: its commands, and the server running the jobs on a schedule."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from carnet.app import create_app
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.patients.models import Dossier, DossierState
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore
from factories.lifecycle import make_invited_patient

runner = CliRunner()


def _env(engine: Engine, tmp_path: Path) -> dict[str, str]:
    return {
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }


@pytest.mark.parametrize(
    "command", [["enrol"], ["invite"], ["jobs", "run"], ["export"], ["import"]]
)
def test_every_lifecycle_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_jobs_run_opens_what_is_due_and_says_so(
    committing_engine: Engine, tmp_path: Path, clock: FrozenClock
) -> None:
    with unit_of_work(session_factory(committing_engine)) as session:
        make_invited_patient(session, clock, deadline=clock.now() - dt.timedelta(minutes=1))
    result = runner.invoke(app, ["jobs", "run"], env=_env(committing_engine, tmp_path))
    assert result.exit_code == 0, result.output
    assert "Jobs: 1 dossiers opened at their deadline" in result.output
    again = runner.invoke(app, ["jobs", "run"], env=_env(committing_engine, tmp_path))
    assert "Jobs: 0 dossiers opened" in again.output


def test_invite_prints_a_new_letter(
    committing_engine: Engine, tmp_path: Path, clock: FrozenClock
) -> None:
    with unit_of_work(session_factory(committing_engine)) as session:
        [identifier] = make_invited_patient(session, clock).identifiers
    letters = tmp_path / "letters"
    command = ["invite", "--patient", identifier.value, "--letters", str(letters)]
    result = runner.invoke(app, command, env=_env(committing_engine, tmp_path))
    assert result.exit_code == 0, result.output
    [letter] = letters.iterdir()
    assert letter.read_bytes().startswith(b"%PDF-")
    unknown = runner.invoke(
        app,
        ["invite", "--patient", "nobody", "--letters", str(letters)],
        env=_env(committing_engine, tmp_path),
    )
    assert unknown.exit_code == 1
    assert "error: No such patient." in unknown.output


def test_the_server_runs_the_jobs_on_its_schedule(
    committing_engine: Engine, store: FilesystemDocumentStore, tmp_path: Path
) -> None:
    sessions = session_factory(committing_engine)
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    with unit_of_work(sessions) as session:
        patient_id = make_invited_patient(session, clock, deadline=clock.now()).id
    platform = Platform(
        settings=Settings(var_dir=tmp_path, jobs_interval_seconds=1),
        engine=committing_engine,
        sessions=sessions,
        store=store,
        clock=clock,
    )
    with TestClient(create_app(platform=platform)):
        deadline = time.monotonic() + 10
        while _state(sessions, patient_id) is DossierState.INVITED and time.monotonic() < deadline:
            time.sleep(0.1)
    assert _state(sessions, patient_id) is DossierState.ACTIVE


def _state(sessions: sessionmaker[Session], patient_id: uuid.UUID) -> DossierState:
    with sessions() as session:
        return session.get_one(Dossier, patient_id).state
