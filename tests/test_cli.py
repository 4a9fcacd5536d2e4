"""The ``carnet`` command: each subcommand, its help, and readable errors."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest
from typer.testing import CliRunner

import carnet
from carnet.cli import app
from carnet.clock import SystemClock
from conftest import throwaway_postgres

runner = CliRunner()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"CARNET_VAR_DIR": str(tmp_path / "var"), **extra}


@pytest.mark.parametrize(
    "command",
    [[], ["serve"], ["demo"], ["db", "upgrade"], ["config"], ["version"], ["operators", "add"]],
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


def test_operators_add_prints_the_enrolment_uri_once_and_the_operator_signs_in(
    tmp_path: Path,
) -> None:
    env = _env(tmp_path)
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    created = runner.invoke(
        app,
        ["operators", "add", "JDupont", "--password-stdin"],
        env=env,
        input="a long operator password\n",
    )
    assert created.exit_code == 0, created.output
    assert "a long operator password" not in created.output
    uri = next(line for line in created.output.splitlines() if line.startswith("otpauth://"))
    enrolled = pyotp.parse_uri(uri)
    assert isinstance(enrolled, pyotp.TOTP)
    assert enrolled.name == "jdupont"
    assert enrolled.issuer == "Carnet"
    code = runner.invoke(app, ["otp", "--as", "operator:jdupont"], env=env)
    assert code.exit_code == 0, code.output
    now = SystemClock().now().timestamp()
    assert code.output.strip() in {enrolled.at(now), enrolled.at(now - 30)}

    again = runner.invoke(
        app,
        ["operators", "add", "jdupont", "--security-officer", "--password-stdin"],
        env=env,
        input="another long password\n",
    )
    assert again.exit_code == 1
    assert again.output.startswith("error: The operator name 'jdupont' is taken.")


def test_operators_add_asks_for_the_password_and_refuses_a_short_one(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(
        app, ["operators", "add", "officer", "--security-officer"], env=env, input="short\nshort\n"
    )
    assert result.exit_code == 1
    assert "at least 12 characters" in result.output
    assert "otpauth://" not in result.output
    assert "Traceback" not in result.output
