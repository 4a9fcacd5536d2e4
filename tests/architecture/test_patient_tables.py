"""The lint of the one door (``patient_tables.py``): clean today, and it catches what it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from architecture.patient_tables import SOURCE, check, main, patient_tables
from carnet import schema
from test_schema import NOT_PATIENT_DATA


def _plant(root: Path, module: str, source: str) -> Path:
    """A module at ``<root>/carnet/<module>`` holding ``source``."""
    path = root / "carnet" / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    return path


def _messages(path: Path) -> list[str]:
    return [f"{violation.line}: {violation.message}" for violation in check([path])]


def test_carnet_has_no_query_on_patient_tables_outside_its_domains() -> None:
    assert [str(violation) for violation in check([SOURCE])] == []


def test_patient_tables_are_those_test_schema_holds_for_patient_data() -> None:
    # The audit trail is chained per dossier, not keyed by patient: its own domain reads it.
    expected = {
        name
        for name in schema.metadata().tables
        if name not in NOT_PATIENT_DATA and not name.startswith("audit_")
    }
    assert set(patient_tables().values()) == expected


def test_a_query_in_a_portal_module_is_reported(tmp_path: Path) -> None:
    leak = _plant(
        tmp_path,
        "portal/leak.py",
        "from sqlalchemy import select\n"
        "from carnet.documents.models import Document\n"
        "def leak(session):\n"
        "    return session.scalars(select(Document).where(Document.title != ''))\n",
    )
    assert _messages(leak) == ["4: select() on documents (Document) outside its domain"]
    assert main([str(leak)]) == 1


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("session.get(models.Patient, 1)", "get() on patients (Patient) outside its domain"),
        ("session.query(models.Dossier)", "query() on dossiers (Dossier) outside its domain"),
        ("models.Grant.__table__", "Grant.__table__ outside its domain"),
        ("update(models.Dossier).values(state='x')", "update() on dossiers (Dossier) outside"),
        ("text('SELECT title FROM documents')", "SQL on documents outside its domain"),
    ],
)
def test_each_kind_of_query_is_reported(tmp_path: Path, statement: str, message: str) -> None:
    leak = _plant(
        tmp_path,
        "fhir/leak.py",
        "from sqlalchemy import text, update\n"
        "from carnet.patients import models\n"
        "def leak(session):\n"
        f"    return {statement}\n",
    )
    [reported] = _messages(leak)
    assert reported.startswith(f"4: {message}")


def test_a_way_in_importing_an_internal_module_is_reported(tmp_path: Path) -> None:
    leak = _plant(tmp_path, "web/leak.py", "from carnet.documents.internal import x\n")
    cli = _plant(tmp_path, "cli.py", "from carnet.documents import internal\n")
    assert _messages(leak) == [
        "1: a way in imports an internal module (carnet.documents.internal.x)"
    ]
    assert _messages(cli) == ["1: a way in imports an internal module (carnet.documents.internal)"]


def test_the_escape_comment_and_the_domains_are_not_reported(tmp_path: Path) -> None:
    query = (
        "from sqlalchemy import select\n"
        "from carnet.documents.models import Document\n"
        "def count(session):\n"
        "    return session.scalars(  # patient-data: a planted reason\n"
        "        select(Document.id)\n"
        "    )\n"
    )
    assert _messages(_plant(tmp_path, "portal/escaped.py", query)) == []
    domain = query.replace("  # patient-data: a planted reason", "")
    assert _messages(_plant(tmp_path, "documents/reading.py", domain)) == []
    assert _messages(_plant(tmp_path, "lifecycle/sweep.py", domain)) == []


def test_a_query_on_the_directory_is_not_reported(tmp_path: Path) -> None:
    directory = _plant(
        tmp_path,
        "portal/people.py",
        "from sqlalchemy import select\n"
        "from carnet.directory.models import Professional\n"
        "def people(session):\n"
        "    return session.scalars(select(Professional))\n",
    )
    assert _messages(directory) == []
