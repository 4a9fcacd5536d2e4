"""The ``carnet`` command: each subcommand, its help, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import carnet
from carnet.cli import app
from conftest import throwaway_postgres

runner = CliRunner()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CARNET_VAR_DIR": str(tmp_path / "var"), **extra}


@pytest.mark.parametrize(
    "command", [[], ["serve"], ["demo"], ["db", "upgrade"], ["config"], ["version"]]
)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == carnet.__version__


def test_config_masks_secrets(tmp_path: Path) -> None:
    key = "c2VjcmV0LWtleS1ieXRlcy10aGF0LWFyZS0zMi1sb25nISE="
    env = _env(
        tmp_path,
        CARNET_MASTER_KEY=key,
        CARNET_DATABASE_URL="postgresql://carnet:hunter2@db.example:5432/carnet",
        CARNET_MAX_DOCUMENT_BYTES="1000",
    )
    result = runner.invoke(app, ["config"], env=env)
    assert result.exit_code == 0
    assert key not in result.output
    assert "hunter2" not in result.output
    assert "CARNET_MASTER_KEY" in result.output
    assert "********" in result.output
    assert "postgresql+psycopg://carnet:***@db.example:5432/carnet" in result.output
    assert "1000" in result.output


def test_invalid_config_is_one_readable_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config"], env=_env(tmp_path, CARNET_PORT="eighty"))
    assert result.exit_code == 1
    assert "Invalid configuration" in result.output
    assert "Traceback" not in result.output


def test_db_upgrade_creates_then_reports_nothing_to_do(tmp_path: Path) -> None:
    _upgrade_twice(_env(tmp_path))
    assert (tmp_path / "var" / "carnet.db").exists()
    assert (tmp_path / "var" / "master.key").stat().st_mode & 0o777 == 0o600


def test_db_upgrade_on_postgresql(tmp_path: Path) -> None:
    with throwaway_postgres() as url:
        _upgrade_twice(_env(tmp_path, CARNET_DATABASE_URL=url))


def _upgrade_twice(env: dict[str, str]) -> None:
    first = runner.invoke(app, ["db", "upgrade"], env=env)
    assert first.exit_code == 0, first.output
    assert "migrated from nothing to" in first.output
    second = runner.invoke(app, ["db", "upgrade"], env=env)
    assert "already at" in second.output
    current = runner.invoke(app, ["db", "current"], env=env)
    assert current.exit_code == 0


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve"], env=_env(tmp_path))
    assert result.exit_code == 1
    assert "carnet db upgrade" in result.output


def test_bad_master_key_is_a_readable_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=_env(tmp_path, CARNET_MASTER_KEY="short"))
    assert result.exit_code == 1
    assert "Cannot start" in result.output
    assert "Traceback" not in result.output
