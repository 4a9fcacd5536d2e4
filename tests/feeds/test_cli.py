"""``carnet feeds register/list/deactivate`` and ``carnet hl7 import`` on a migrated database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.settings import Settings
from factories.directory import make_organisation
from factories.patients import make_patient
from laboratory.sending import lead_report, matricule_of

runner = CliRunner()


def test_register_import_list_and_deactivate(tmp_path: Path) -> None:
    env = {"CARNET_VAR_DIR": str(tmp_path / "var")}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    engine = make_engine(Settings(var_dir=tmp_path / "var").effective_database_url)
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    with unit_of_work(session_factory(engine)) as session:
        lab = make_organisation(session, clock, name="Laboratoire Ketterthill")
        identifier = lab.identifier_value
        matricule = matricule_of(make_patient(session, clock))
    engine.dispose()

    registered = runner.invoke(
        app,
        ["feeds", "register", identifier, "--sending-facility", "Central Lab",
         "--authority", "CNS=lu-matricule"],
        env=env,
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    system_id = registered.output.split()[2]
    listed = runner.invoke(app, ["feeds", "list"], env=env)
    assert "Laboratoire Ketterthill\tCentral Lab\t*\tno certificate\tactive" in listed.output

    batch = tmp_path / "batch.hl7"
    batch.write_text(
        "FHS|^~\\&|Central Lab\nBHS|^~\\&|Central Lab\n"
        + lead_report(matricule, control="F-1").replace("\r", "\n")
        + lead_report("1980051700000", control="F-2", order="2").replace("\r", "\n")
        + "BTS|2\nFTS|1\n"
    )
    imported = runner.invoke(app, ["hl7", "import", str(batch)], env=env)
    assert imported.exit_code == 1
    assert "F-1\tAA\t1 report(s) stored." in imported.output
    assert "F-2\tAE [PID-3]\t" in imported.output
    assert "1 of 2 messages refused" in imported.output

    again = runner.invoke(app, ["hl7", "import", str(batch)], env=env)
    assert "F-1\tAA\t1 report(s) stored. (already received)" in again.output

    assert runner.invoke(app, ["feeds", "deactivate", system_id], env=env).exit_code == 0
    refused = runner.invoke(app, ["hl7", "import", str(batch)], env=env)
    assert "F-1\tAR [MSH-4]" in refused.output
    bad = runner.invoke(app, ["feeds", "register", "nobody", "--sending-facility", "X"], env=env)
    assert bad.exit_code == 1
    assert "No single organisation" in bad.output
