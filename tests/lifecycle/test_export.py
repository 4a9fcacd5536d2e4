"""Export for data portability, and its re-import into an empty Carnet with the same hashes."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carnet import schema
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.audit.models import AuditAction, AuditEvent
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.directory.models import Profession
from carnet.documents import publication, visibility
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.exports import SHA256_EXTENSION, ImportReport, build_export_zip, import_export_zip
from carnet.lifecycle import service as lifecycle
from carnet.lifecycle.errors import ImportConflict, InvalidExportFile
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import operator_actor, patient_actor, professional_actor, system_actor
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata, make_document
from factories.patients import make_patient

BASE = "https://carnet.example/fhir"
LIMIT = 1024 * 1024


@dataclass
class Dossier:
    """A dossier with a bit of everything, and what its patient may export of it."""

    patient: Patient
    exportable: list[Document]
    withheld: list[Document]


@pytest.fixture
def dossier(session: Session, store: FilesystemDocumentStore, clock: FrozenClock) -> Dossier:
    patient = make_patient(session, clock, email="lea@example.lu", address_line="1, rue Haute")
    me = patient_actor(patient)
    lab = make_organisation(session, clock)
    biologist = professional_actor(
        make_professional(session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id)
    )
    doctor = professional_actor(make_professional(session, clock, family="Hoffmann"))
    first = make_document(session, store, clock, actor=biologist, patient_id=patient.id)
    second = publication.replace_document(
        session,
        open_dossier(session, biologist, patient.id, purposes.REPLACE_DOCUMENT, clock=clock),
        store,
        replaced_id=first.id,
        metadata=lab_metadata(clock, title="Bilan sanguin (corrigé)"),
        content=b"corrected",
    )
    restricted = make_document(
        session,
        store,
        clock,
        actor=doctor,
        patient_id=patient.id,
        confidentiality=Confidentiality.RESTRICTED,
        mime_type="application/pdf",
        content=b"%PDF-1.4 a consultation",
    )
    masked = make_document(session, store, clock, actor=system_actor(lab), patient_id=patient.id)
    visibility.set_visibility(
        session,
        open_dossier(session, me, patient.id, purposes.visibility_for(me), clock=clock),
        masked.id,
        masked_from_professionals=True,
    )
    upload = make_document(session, store, clock, actor=me, patient_id=patient.id)
    hidden = make_document(
        session, store, clock, actor=doctor, patient_id=patient.id, hidden_from_patient=True
    )
    wrong = make_document(session, store, clock, actor=doctor, patient_id=patient.id)
    visibility.mark_entered_in_error(
        session,
        open_dossier(session, doctor, patient.id, purposes.MANAGE_DOCUMENT, clock=clock),
        wrong.id,
    )
    return Dossier(patient, [first, second, restricted, masked, upload], [hidden, wrong])


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Engine]:
    """An empty Carnet of its own: another database, migrated, and (below) another store."""
    engine = make_engine(f"sqlite:///{tmp_path / 'target.db'}")
    schema.upgrade(engine)
    yield engine
    engine.dispose()


def _target_store(tmp_path: Path) -> FilesystemDocumentStore:
    wrapper = MasterKeyWrapper(secrets.token_bytes(32), "target")
    return FilesystemDocumentStore(tmp_path / "target-store", wrapper, max_bytes=LIMIT)


def _bundle(data: bytes) -> dict[str, Any]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        bundle: dict[str, Any] = json.loads(archive.read("bundle.json"))
    return bundle


def _fingerprint(document: Document) -> tuple[object, ...]:
    return (
        document.master_identifier,
        document.sha256,
        document.size,
        document.status,
        document.title,
        document.mime_type,
        document.type_code,
        document.class_code,
        document.confidentiality,
        document.masked_from_professionals,
        document.authored_by_patient,
        document.created_at,
        document.language,
    )


def _export(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
) -> bytes:
    me = patient_actor(dossier.patient, scopes="patient/*.rs")
    return build_export_zip(
        session,
        open_dossier(session, me, dossier.patient.id, purposes.EXPORT_DOSSIER, clock=clock),
        store,
        base_url=BASE,
    )


@pytest.fixture
def exported(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
) -> bytes:
    """The dossier's export, made by its patient."""
    return _export(session, store, clock, dossier)


def _import(
    session: Session, store: FilesystemDocumentStore, data: bytes, clock: FrozenClock
) -> ImportReport:
    return import_export_zip(
        session, store, data, operator=operator_actor(), clock=clock, max_document_bytes=LIMIT
    )


class TestExport:
    def test_the_zip_holds_a_bundle_and_every_file_the_patient_may_read(
        self, exported: bytes, dossier: Dossier
    ) -> None:
        bundle = _bundle(exported)
        assert (bundle["resourceType"], bundle["type"]) == ("Bundle", "collection")
        kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
        assert kinds.count("Patient") == 1
        assert kinds.count("Organization") == 1
        assert kinds.count("Practitioner") == kinds.count("PractitionerRole") == 2
        references = [
            entry["resource"]
            for entry in bundle["entry"]
            if entry["resource"]["resourceType"] == "DocumentReference"
        ]
        masters = {r["masterIdentifier"]["value"] for r in references}
        assert masters == {d.master_identifier for d in dossier.exportable}
        with zipfile.ZipFile(io.BytesIO(exported)) as archive:
            for resource in references:
                attachment = resource["content"][0]["attachment"]
                content = archive.read(attachment["url"])
                [sha256] = [
                    e["valueString"] for e in resource["extension"] if e["url"] == SHA256_EXTENSION
                ]
                assert hashlib.sha256(content).hexdigest() == sha256
                assert attachment["size"] == len(content)
        statuses = sorted(r["status"] for r in references)
        assert statuses == ["current"] * 4 + ["superseded"]

    def test_the_export_is_audited_with_each_retrieval(
        self, session: Session, exported: bytes, dossier: Dossier
    ) -> None:
        actions = list(
            session.scalars(
                select(AuditEvent.action).where(
                    AuditEvent.chain_id == dossier.patient.id,
                    AuditEvent.agent_subject == f"Patient/{dossier.patient.id}",
                )
            )
        )
        assert actions.count(AuditAction.EXPORT) == 1
        assert actions.count(AuditAction.RETRIEVE) == len(dossier.exportable)

    def test_a_professional_exports_nothing(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        dossier: Dossier,
    ) -> None:
        doctor = professional_actor(make_professional(session, clock))
        with pytest.raises(AccessDenied) as denied:
            build_export_zip(
                session,
                open_dossier(
                    session, doctor, dossier.patient.id, purposes.EXPORT_DOSSIER, clock=clock
                ),
                store,
                base_url=BASE,
            )
        assert denied.value.refusal is not None
        assert denied.value.refusal.action is AuditAction.EXPORT

    def test_a_closed_dossier_is_exported_before_closing_not_after(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        dossier: Dossier,
    ) -> None:
        lifecycle.close(
            session,
            open_dossier(
                session,
                patient_actor(dossier.patient),
                dossier.patient.id,
                purposes.MANAGE_DOSSIER,
                clock=clock,
            ),
        )
        with pytest.raises(AccessDenied) as denied:
            _export(session, store, clock, dossier)
        assert denied.value.reason == "the dossier is closed: nothing to export"


class TestReimport:
    def test_an_export_reimports_into_an_empty_carnet_with_the_same_documents_and_hashes(
        self, exported: bytes, dossier: Dossier, target: Engine, tmp_path: Path, clock: FrozenClock
    ) -> None:
        target_store = _target_store(tmp_path)
        with unit_of_work(session_factory(target)) as there:
            report = _import(there, target_store, exported, clock)
        assert (report.documents, report.organisations_created) == (5, 1)
        assert report.professionals_created == 2
        with session_factory(target)() as there:
            imported = list(
                there.scalars(select(Document).where(Document.patient_id == report.patient_id))
            )
            patient = there.get_one(Patient, report.patient_id)
            assert [(i.system, i.value) for i in patient.identifiers] == [
                (i.system, i.value) for i in dossier.patient.identifiers
            ]
            assert (patient.email, patient.address_line) == ("lea@example.lu", "1, rue Haute")
            assert patient.dossier.state.value == "active"
        assert sorted(map(_fingerprint, imported), key=str) == sorted(
            map(_fingerprint, dossier.exportable), key=str
        )
        for document in imported:
            content = target_store.get(document.content_key)
            assert hashlib.sha256(content).hexdigest() == document.sha256
        [successor] = [d for d in imported if d.replaces_id is not None]
        superseded = next(d for d in imported if d.id == successor.replaces_id)
        assert superseded.status is DocumentStatus.SUPERSEDED

    def test_a_carnet_that_holds_the_patient_refuses_the_import(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        exported: bytes,
    ) -> None:
        with pytest.raises(ImportConflict):
            _import(session, store, exported, clock)

    @pytest.mark.parametrize("data", [b"not a zip", b""])
    def test_a_file_that_is_not_an_export_is_refused(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, data: bytes
    ) -> None:
        with pytest.raises(InvalidExportFile) as refused:
            _import(session, store, data, clock)
        assert "The file is not a zip" in str(refused.value)

    def test_a_tampered_file_is_refused_and_nothing_is_imported(
        self, exported: bytes, target: Engine, tmp_path: Path, clock: FrozenClock
    ) -> None:
        tampered = io.BytesIO()
        with (
            zipfile.ZipFile(io.BytesIO(exported)) as source,
            zipfile.ZipFile(tampered, "w") as copy,
        ):
            for info in source.infolist():
                copy.writestr(info, source.read(info).replace(b"corrected", b"corrupted"))
        with (
            pytest.raises(InvalidExportFile) as refused,
            unit_of_work(session_factory(target)) as there,
        ):
            _import(there, _target_store(tmp_path), tampered.getvalue(), clock)
        assert "SHA-256" in str(refused.value)
        with session_factory(target)() as there:
            assert there.scalars(select(Patient)).all() == []


class TestTheCommands:
    def test_carnet_export_then_carnet_import(
        self, committing_engine: Engine, tmp_path: Path, clock: FrozenClock
    ) -> None:
        with unit_of_work(session_factory(committing_engine)) as session:
            patient = make_patient(session, clock)
        source = {
            "CARNET_VAR_DIR": str(tmp_path / "var"),
            "CARNET_DATABASE_URL": committing_engine.url.render_as_string(hide_password=False),
        }
        [identifier] = patient.identifiers
        out = tmp_path / "export.zip"
        runner = CliRunner()
        command = [
            "export",
            "--patient",
            identifier.value,
            "--as",
            f"patient:{identifier.value}",
            "--out",
            str(out),
        ]
        refused = runner.invoke(app, command, env=source | {"CARNET_DEMO_IDP": "false"})
        assert refused.exit_code == 1
        assert "demo identity provider" in refused.output
        done = runner.invoke(app, command, env=source)
        assert done.exit_code == 0, done.output
        assert f"Exported dossier {patient.id}" in done.output
        assert _bundle(out.read_bytes())["entry"][0]["resource"]["id"] == str(patient.id)
        target = {"CARNET_VAR_DIR": str(tmp_path / "target")}
        assert runner.invoke(app, ["db", "upgrade"], env=target).exit_code == 0
        imported = runner.invoke(app, ["import", str(out), "--operator", "migration"], env=target)
        assert imported.exit_code == 0, imported.output
        assert "Imported dossier" in imported.output
        again = runner.invoke(app, ["import", str(out)], env=target)
        assert again.exit_code == 1
        assert "already has a dossier here" in again.output
        assert uuid.UUID(imported.output.split()[2].rstrip(":")) != patient.id
