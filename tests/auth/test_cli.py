"""The authentication commands: carnet token, otp, keys and clients."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pyotp
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey
from pydantic import SecretStr
from sqlalchemy import Engine
from typer.testing import CliRunner

from carnet.app import create_app
from carnet.cli import app
from carnet.clock import SystemClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.demo import accounts as demo_accounts
from carnet.platform import master_key as platform_master_key
from carnet.settings import Settings
from carnet.storage import MasterKeyWrapper
from factories.directory import make_organisation
from factories.patients import make_matricule, make_patient

runner = CliRunner()


def _env(tmp_path: Path, master_key: bytes, **extra: str) -> dict[str, str]:
    return {
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_MASTER_KEY": base64.urlsafe_b64encode(master_key).decode(),
        "CARNET_PUBLIC_URL": "http://testserver",
        **extra,
    }


def _migrated_sqlite(tmp_path: Path, master_key: bytes, **extra: str) -> dict[str, str]:
    env = _env(tmp_path, master_key, **extra)
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    return env


def test_a_minted_token_is_accepted_by_the_server(
    committing_engine: Engine, tmp_path: Path, master_key: bytes
) -> None:
    url = committing_engine.url.render_as_string(hide_password=False)
    env = _env(tmp_path, master_key, CARNET_DATABASE_URL=url)
    settings = Settings(
        database_url=url,
        master_key=SecretStr(env["CARNET_MASTER_KEY"]),
        var_dir=tmp_path / "var",
        public_url="http://testserver",
    )
    matricule = make_matricule()
    with unit_of_work(session_factory(committing_engine)) as session:
        patient = make_patient(session, SystemClock(), matricule=matricule)
        key_id, key = platform_master_key(settings)
        wrapper = MasterKeyWrapper(key, key_id)
        demo_accounts.provision_demo_accounts(session, key_wrapper=wrapper, clock=SystemClock())

    result = runner.invoke(
        app, ["token", "--as", f"patient:{matricule}", "--scope", "patient/*.rs"], env=env
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    with TestClient(create_app(settings)) as client:
        response = client.get("/oauth/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json()["fhirUser"] == f"Patient/{patient.id}"

    otp = runner.invoke(app, ["otp", "--as", f"patient:{matricule}"], env=env)
    assert otp.exit_code == 0, otp.output
    totp = pyotp.TOTP(demo_accounts.demo_totp_secret(matricule))
    assert otp.output.strip() in {totp.now(), totp.at(SystemClock().now().timestamp() - 30)}


def test_token_is_refused_without_the_demo_identity_provider(
    tmp_path: Path, master_key: bytes
) -> None:
    env = _migrated_sqlite(tmp_path, master_key, CARNET_DEMO_IDP="false")
    for command in (["token", "--as", "operator:alice"], ["otp", "--as", "patient:1"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 1
        assert "demo identity provider is disabled" in result.output
        assert "Traceback" not in result.output


def test_unknown_subjects_are_one_readable_line(tmp_path: Path, master_key: bytes) -> None:
    env = _migrated_sqlite(tmp_path, master_key)
    result = runner.invoke(app, ["token", "--as", "professional:10000000000"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith("error: No professional has the identifier")


def test_operator_tokens_need_no_account(tmp_path: Path, master_key: bytes) -> None:
    env = _migrated_sqlite(tmp_path, master_key)
    result = runner.invoke(
        app, ["token", "--as", "security-officer:sam", "--assurance", "high"], env=env
    )
    assert result.exit_code == 0, result.output
    assert result.output.count(".") == 2


def test_keys_rotate_and_list(tmp_path: Path, master_key: bytes) -> None:
    env = _migrated_sqlite(tmp_path, master_key)
    assert "No signing key yet" in runner.invoke(app, ["keys", "list"], env=env).output
    first = runner.invoke(app, ["keys", "rotate"], env=env)
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["keys", "rotate", "--overlap", "600"], env=env)
    assert "previous keys are accepted until" in second.output
    listing = runner.invoke(app, ["keys", "list"], env=env).output.splitlines()
    assert len(listing) == 2
    assert listing[0].endswith("signing")
    assert "retired, published until" in listing[1]


def test_clients_register_and_list(tmp_path: Path, master_key: bytes) -> None:
    env = _migrated_sqlite(tmp_path, master_key)
    engine_url = f"sqlite:///{tmp_path / 'var' / 'carnet.db'}"
    engine = make_engine(engine_url)
    with unit_of_work(session_factory(engine)) as session:
        organisation = make_organisation(session, SystemClock())
    engine.dispose()
    jwks = tmp_path / "lis.jwks.json"
    key = ECKey.generate_key("P-256", private=True)
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=False)]}))

    system = runner.invoke(
        app,
        [
            "clients",
            "register",
            "LIS Alzette",
            "--organisation",
            organisation.identifier_value,
            "--jwks",
            str(jwks),
            "--client-id",
            "lis-alzette",
        ],
        env=env,
    )
    assert system.exit_code == 0, system.output
    assert system.output.strip() == "Registered backend client lis-alzette."
    app_result = runner.invoke(
        app,
        ["clients", "register", "Portal", "--redirect-uri", "https://portal.example/cb"],
        env=env,
    )
    assert app_result.output.startswith("Registered public client ")
    refused = runner.invoke(
        app, ["clients", "register", "Bad", "--redirect-uri", "http://evil.example/cb"], env=env
    )
    assert refused.exit_code == 1
    assert "not an acceptable redirect URI" in refused.output
    listing = runner.invoke(app, ["clients", "list"], env=env).output
    assert "lis-alzette  backend  LIS Alzette  [system/*.cruds]" in listing
