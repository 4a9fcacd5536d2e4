"""The card and staff commands: carnet cards trust/list/crl/distrust, carnet staff allow/revoke."""

from __future__ import annotations

import base64
from pathlib import Path

from typer.testing import CliRunner

from carnet.cli import app
from carnet.clock import SystemClock
from factories import cards

runner = CliRunner()


def _migrated(tmp_path: Path, master_key: bytes) -> dict[str, str]:
    env = {
        "CARNET_VAR_DIR": str(tmp_path / "var"),
        "CARNET_MASTER_KEY": base64.urlsafe_b64encode(master_key).decode(),
        "CARNET_PUBLIC_URL": "http://testserver",
    }
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    return env


def test_trust_list_update_and_distrust_a_card_authority(tmp_path: Path, master_key: bytes) -> None:
    env = _migrated(tmp_path, master_key)
    now = SystemClock().now()
    authority = cards.root("ASIP-Sante test CA", now)
    certificate = tmp_path / "ca.pem"
    certificate.write_bytes(authority.pem)
    crl = tmp_path / "ca.crl"
    crl.write_bytes(authority.crl(now))

    trusted = runner.invoke(app, ["cards", "trust", str(certificate)], env=env)
    assert trusted.exit_code == 0, trusted.output
    assert "Trusted card authority 'ASIP-Sante test CA'" in trusted.output
    assert "no CRL yet" in trusted.output
    listed = runner.invoke(app, ["cards", "list"], env=env)
    assert "ASIP-Sante test CA" in listed.output
    assert "NO CRL" in listed.output

    updated = runner.invoke(app, ["cards", "crl", "ASIP-Sante test CA", str(crl)], env=env)
    assert updated.exit_code == 0, updated.output
    assert "1 CRL(s), next update" in runner.invoke(app, ["cards", "list"], env=env).output

    again = runner.invoke(app, ["cards", "trust", str(certificate), "--name", "Other"], env=env)
    assert again.exit_code == 1
    assert "already trusted" in again.output

    gone = runner.invoke(app, ["cards", "distrust", "ASIP-Sante test CA"], env=env)
    assert gone.exit_code == 0, gone.output
    assert runner.invoke(app, ["cards", "list"], env=env).output == ""


def test_a_file_that_is_not_a_certificate_is_refused_in_one_line(
    tmp_path: Path, master_key: bytes
) -> None:
    env = _migrated(tmp_path, master_key)
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    refused = runner.invoke(app, ["cards", "trust", str(junk)], env=env)
    assert refused.exit_code == 1
    assert refused.output.strip() == ("error: The file is not a certificate (PEM or DER expected).")
    missing = runner.invoke(app, ["cards", "trust", str(tmp_path / "nope.pem")], env=env)
    assert missing.exit_code == 1
    assert "Cannot read the certificate" in missing.output
