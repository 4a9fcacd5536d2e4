"""The ``carnet`` command: each subcommand, its help, and readable errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyotp
import pytest
from sqlalchemy import text
from sqlalchemy.exc import ArgumentError
from typer.testing import CliRunner

import carnet
from carnet.cli import app
from carnet.clock import SystemClock
from carnet.db import make_engine
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


# --- One line per database or configuration fault (issue 15) ---------------------------------

UNREACHABLE = "postgresql://nobody@127.0.0.1:1/carnet"  # nothing listens on port 1
MALFORMED = "notaurl"


def _fault_env(tmp_path: Path, url: str) -> dict[str, str]:
    """An environment whose keys exist already (their creation is logged), with ``url``."""
    env = _env(tmp_path)
    assert runner.invoke(app, ["db", "current"], env=env).exit_code == 0
    return {**env, "CARNET_DATABASE_URL": url}


def _one_error_line(result: Any) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return str(lines[0])


@pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["serve"]])
@pytest.mark.parametrize(
    ("url", "said"),
    [
        (UNREACHABLE, "error: Cannot reach the database: connection failed"),
        (MALFORMED, "error: Invalid database URL (CARNET_DATABASE_URL): Could not parse"),
        ("sqlite:////nonexistent/directory/carnet.db", "error: Cannot reach the database: unable"),
        ("mysql+nodriver://x/y", "error: Invalid database URL (CARNET_DATABASE_URL): Can't load"),
    ],
    ids=["unreachable", "malformed", "no-directory", "unknown-driver"],
)
def test_a_database_fault_is_one_error_line(
    tmp_path: Path, command: list[str], url: str, said: str
) -> None:
    result = runner.invoke(app, command, env=_fault_env(tmp_path, url))
    assert _one_error_line(result).startswith(said)


def test_the_password_of_an_unreachable_database_is_not_shown(tmp_path: Path) -> None:
    url = "postgresql://carnet:hunter2@127.0.0.1:1/carnet"
    result = runner.invoke(app, ["db", "current"], env=_fault_env(tmp_path, url))
    assert "hunter2" not in _one_error_line(result)


def test_config_with_a_malformed_url_is_one_error_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config"], env=_env(tmp_path, CARNET_DATABASE_URL=MALFORMED))
    assert _one_error_line(result).startswith("error: Invalid database URL")


def test_an_invalid_setting_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    for command in (["config"], ["db", "current"]):
        result = runner.invoke(app, command, env=_env(tmp_path, CARNET_PORT="eighty"))
        assert _one_error_line(result).startswith("error: Invalid configuration: CARNET_PORT: ")


def test_debug_shows_the_error_itself(tmp_path: Path) -> None:
    env = _fault_env(tmp_path, MALFORMED)
    result = runner.invoke(app, ["--debug", "db", "current"], env=env)
    assert result.exit_code == 1
    assert isinstance(result.exception, ArgumentError)


def test_the_installed_command_prints_no_stack_trace(tmp_path: Path) -> None:
    env = {**os.environ, **_fault_env(tmp_path, UNREACHABLE)}
    answer = subprocess.run(
        [sys.executable, "-m", "carnet", "db", "current"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert answer.returncode == 1
    [line] = answer.stderr.splitlines()
    assert line.startswith("error: Cannot reach the database: connection failed: connection to")


def test_demo_refuses_where_the_demo_identity_provider_is_off(tmp_path: Path) -> None:
    env = _env(tmp_path, CARNET_DEMO_IDP="false")
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(app, ["demo"], env=env)
    assert result.exit_code == 1
    assert "CARNET_DEMO_IDP" in result.output
    with make_engine(f"sqlite:///{tmp_path / 'var' / 'carnet.db'}").connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM patients")).scalar_one() == 0
