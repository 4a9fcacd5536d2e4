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
    # In a domain, the query is at home; its public function takes the dossier opened at the
    # door (the rule below).
    domain = query.replace("  # patient-data: a planted reason", "").replace(
        "def count(session):", "def count(session, dossier: OpenedDossier):"
    )
    assert _messages(_plant(tmp_path, "documents/reading.py", domain)) == []
    assert _messages(_plant(tmp_path, "lifecycle/sweep.py", domain)) == []


_DOMAIN_READER = (
    "from sqlalchemy import select\n"
    "from carnet.access.door import OpenedDossier\n"
    "from carnet.documents.models import Document\n"
    "def titles(session, patient_id):\n"
    "    return session.scalars(select(Document.title).where(Document.patient_id == patient_id))\n"
)


def test_a_domain_service_reading_patient_rows_without_the_door_is_reported(
    tmp_path: Path,
) -> None:
    leak = _plant(tmp_path, "documents/titles.py", _DOMAIN_READER)
    assert _messages(leak) == [
        "4: titles() queries a patient table (select() on documents (Document)) without taking "
        "an OpenedDossier"
    ]
    assert main([str(leak)]) == 1


@pytest.mark.parametrize(
    ("module", "source"),
    [
        # Through the door: the capability is in the signature.
        (
            "documents/titles.py",
            _DOMAIN_READER.replace("(session, patient_id)", "(session, dossier: OpenedDossier)"),
        ),
        # A private helper answers to the public function that calls it.
        ("documents/titles.py", _DOMAIN_READER.replace("def titles", "def _titles")),
        # What jobs read without an actor lives in an internal module, which no way in imports.
        ("documents/internal.py", _DOMAIN_READER),
        # The door itself, and a deliberate exception saying why in the signature.
        ("access/guard.py", _DOMAIN_READER),
        (
            "documents/titles.py",
            _DOMAIN_READER.replace(
                "patient_id):", "patient_id):  # patient-data: a planted reason"
            ),
        ),
    ],
)
def test_the_door_and_its_exceptions_are_not_reported(
    tmp_path: Path, module: str, source: str
) -> None:
    assert _messages(_plant(tmp_path, module, source)) == []


def test_the_new_ways_in_may_not_import_an_internal_module(tmp_path: Path) -> None:
    for way_in in ("xds", "mllp"):
        leak = _plant(tmp_path, f"{way_in}/leak.py", "from carnet.documents import internal\n")
        assert _messages(leak) == [
            "1: a way in imports an internal module (carnet.documents.internal)"
        ]


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
