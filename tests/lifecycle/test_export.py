"""Export for data portability, and its re-import into an empty Carnet with the same hashes."""

from __future__ import annotations

import datetime as dt
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
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.guard import Preferences
from carnet.access.models import (
    AccessPreferences,
    Block,
    DocumentMask,
    Grant,
    GrantLevel,
    TreatingDoctor,
)
from carnet.access.representation import name_representative
from carnet.audit.models import AuditAction, AuditEvent
from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.directory.models import Profession, Professional
from carnet.documents import publication, reading, visibility
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.essentials import service as essentials
from carnet.essentials.models import Category, EssentialFact
from carnet.exports import (
    SHA256_EXTENSION,
    ImportReport,
    RestoredRules,
    build_export_zip,
    import_export_zip,
)
from carnet.lifecycle import service as lifecycle
from carnet.lifecycle.errors import ImportConflict, InvalidExportFile
from carnet.patients import identifiers
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import operator_actor, patient_actor, professional_actor, system_actor
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata, make_document
from factories.patients import make_patient

BASE = "https://carnet.example/fhir"
LIMIT = 1024 * 1024


_SISTER_BORN = dt.date(1979, 4, 2)


@dataclass
class Dossier:
    """A dossier with a bit of everything, and what its patient may export of it."""

    patient: Patient
    exportable: list[Document]
    withheld: list[Document]
    biologist: Professional
    doctor: Professional
    blocked: Professional
    treating: Professional
    grant_ends_at: dt.datetime


@pytest.fixture
def dossier(session: Session, store: FilesystemDocumentStore, clock: FrozenClock) -> Dossier:
    patient = make_patient(session, clock, email="lea@example.lu", address_line="1, rue Haute")
    me = patient_actor(patient)
    lab = make_organisation(session, clock)
    biologist_ = make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
    )
    biologist = professional_actor(biologist_)
    hoffmann = make_professional(session, clock, family="Hoffmann")
    doctor = professional_actor(hoffmann)
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
    # The patient's rules: a grant, a block, a treating doctor, an emergency opposition, a mask.
    grant_ends_at = clock.now() + dt.timedelta(days=30)
    access_rules.grant_access(
        session,
        open_dossier(session, me, patient.id, purposes.GRANT_ACCESS, clock=clock),
        level=GrantLevel.EXTENDED,
        professional_id=hoffmann.id,
        ends_at=grant_ends_at,
    )
    blocked = make_professional(session, clock, family="Weber")
    access_rules.block_professional(
        session,
        open_dossier(session, me, patient.id, purposes.BLOCK_PROFESSIONAL, clock=clock),
        blocked.id,
    )
    treating = make_professional(session, clock, family="Kremer")
    access_rules.designate_treating_doctor(
        session,
        open_dossier(session, me, patient.id, purposes.DESIGNATE_TREATING_DOCTOR, clock=clock),
        treating.id,
    )
    access_rules.set_preferences(
        session,
        open_dossier(session, me, patient.id, purposes.SET_ACCESS_PREFERENCES, clock=clock),
        Preferences(emergency_opposed=True),
    )
    access_rules.mask_document(
        session,
        open_dossier(session, me, patient.id, purposes.MASK_DOCUMENT, clock=clock),
        upload.id,
        hoffmann.id,
    )
    # Someone the patient named to act for them (kept in the file for the record).
    sister = make_patient(session, clock, given="Anne", family="Schmit", birth_date=_SISTER_BORN)
    name_representative(
        session,
        open_dossier(session, me, patient.id, purposes.NAME_REPRESENTATIVE, clock=clock),
        system=identifiers.LU_MATRICULE,
        value=next(i.value for i in sister.identifiers),
        birth_date=_SISTER_BORN,
    )
    # The essential data: the laboratory's blood group, the patient's allergy and contact.
    essentials.record_fact(
        session,
        open_dossier(session, biologist, patient.id, purposes.RECORD_ESSENTIALS, clock=clock),
        category=Category.BLOOD_GROUP,
        text="Groupe A Rh+",
        details={"group": "A+"},
    )
    essentials.record_facts(
        session,
        open_dossier(session, me, patient.id, purposes.RECORD_ESSENTIALS, clock=clock),
        [
            essentials.NewFact(Category.ALLERGY, "Pénicilline", {"severity": "severe"}),
            essentials.NewFact(
                Category.EMERGENCY_CONTACT,
                "Mon frère",
                {"name": "Marc", "phone": "+352 621 123 456"},
            ),
        ],
    )
    # A consultation: the doctor with the grant searches the dossier.
    reading.list_documents(
        session,
        open_dossier(session, doctor, patient.id, purposes.FIND_DOCUMENTS, clock=clock),
        reading.DocumentFilter(),
    )
    return Dossier(
        patient,
        [first, second, restricted, masked, upload],
        [hidden, wrong],
        biologist=biologist_,
        doctor=hoffmann,
        blocked=blocked,
        treating=treating,
        grant_ends_at=grant_ends_at,
    )


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


def _member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name)


def _rewritten(data: bytes, changes: dict[str, bytes | None]) -> bytes:
    """The zip with the named members replaced (or, for None, left out)."""
    copy = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(copy, "w") as target:
        for info in source.infolist():
            if info.filename not in changes:
                target.writestr(info, source.read(info))
            elif (replaced := changes[info.filename]) is not None:
                target.writestr(info, replaced)
    return copy.getvalue()


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
        # The authors, and the blocked and treating doctors the rules name.
        assert kinds.count("Practitioner") == kinds.count("PractitionerRole") == 4
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

    def test_the_zip_holds_the_essentials_the_rules_and_the_history(
        self, session: Session, exported: bytes, dossier: Dossier
    ) -> None:
        with zipfile.ZipFile(io.BytesIO(exported)) as archive:
            facts = json.loads(archive.read("essentials.json"))["facts"]
            rules = json.loads(archive.read("access-rules.json"))
        assert sorted((f["category"], f["recordedBy"]) for f in facts) == [
            ("allergy", "patient"),
            ("blood-group", "professional"),
            ("emergency-contact", "patient"),
        ]
        [blood] = [f for f in facts if f["category"] == "blood-group"]
        assert (blood["details"], blood["author"]) == (
            {"group": "A+"},
            f"Practitioner/{dossier.biologist.id}",
        )
        [grant] = rules["grants"]
        assert (grant["level"], grant["professional"], grant["until"]) == (
            "extended",
            f"Practitioner/{dossier.doctor.id}",
            "2026-07-01T12:00:00Z",
        )
        assert [b["professional"] for b in rules["blocks"]] == [
            f"Practitioner/{dossier.blocked.id}"
        ]
        assert rules["treatingDoctor"]["professional"] == f"Practitioner/{dossier.treating.id}"
        assert rules["preferences"]["emergency_opposed"] is True
        [mask] = rules["masks"]
        assert mask["professional"] == f"Practitioner/{dossier.doctor.id}"
        [sister] = rules["representatives"]
        assert (sister["name"], sister["kind"], sister["until"]) == ("Anne Schmit", "named", None)
        events = [
            entry["resource"]
            for entry in _bundle(exported)["entry"]
            if entry["resource"]["resourceType"] == "AuditEvent"
        ]
        # The whole trail up to the export but its own reading of the trail and its record.
        trail = session.scalars(
            select(AuditEvent).where(AuditEvent.chain_id == dossier.patient.id)
        ).all()
        assert len(events) == len(trail) - 2
        searches = [e for e in events if e["subtype"][0]["code"] == "search"]
        assert any(
            e["agent"][0]["who"] == {"reference": f"Practitioner/{dossier.doctor.id}"}
            for e in searches
        )

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
        # The two authors, and the blocked and treating doctors.
        assert report.professionals_created == 4
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

    def test_the_reimport_keeps_the_essentials_the_rules_and_the_history(
        self,
        session: Session,
        exported: bytes,
        dossier: Dossier,
        target: Engine,
        tmp_path: Path,
        clock: FrozenClock,
    ) -> None:
        with unit_of_work(session_factory(target)) as there:
            report = _import(there, _target_store(tmp_path), exported, clock)
        assert (report.essentials, report.rules) == (
            3,
            RestoredRules(grants=1, blocks=1, treating_doctor=True, preferences=True, masks=1),
        )
        trail = session.scalars(
            select(AuditEvent).where(AuditEvent.chain_id == dossier.patient.id)
        ).all()
        assert report.history_entries == len(trail) - 2
        with session_factory(target)() as there:
            pid = report.patient_id

            def rpps(professional_id: uuid.UUID) -> str:
                return there.get_one(Professional, professional_id).identifier_value

            facts = there.scalars(
                select(EssentialFact).where(EssentialFact.patient_id == pid)
            ).all()
            by_category = {fact.category: fact for fact in facts}
            assert set(by_category) == {
                Category.BLOOD_GROUP,
                Category.ALLERGY,
                Category.EMERGENCY_CONTACT,
            }
            blood = by_category[Category.BLOOD_GROUP]
            assert (blood.text, blood.details, blood.recorded_by_kind) == (
                "Groupe A Rh+",
                {"group": "A+"},
                "professional",
            )
            assert blood.recorded_by_professional_id is not None
            assert rpps(blood.recorded_by_professional_id) == dossier.biologist.identifier_value
            assert by_category[Category.EMERGENCY_CONTACT].details == {
                "name": "Marc",
                "phone": "+352 621 123 456",
            }
            [grant] = there.scalars(select(Grant).where(Grant.patient_id == pid)).all()
            assert (grant.level, grant.ends_at, grant.revoked_at) == (
                GrantLevel.EXTENDED,
                dossier.grant_ends_at,
                None,
            )
            assert grant.professional_id is not None
            assert rpps(grant.professional_id) == dossier.doctor.identifier_value
            [block] = there.scalars(select(Block).where(Block.patient_id == pid)).all()
            assert rpps(block.professional_id) == dossier.blocked.identifier_value
            [doctor] = there.scalars(
                select(TreatingDoctor).where(TreatingDoctor.patient_id == pid)
            ).all()
            assert rpps(doctor.professional_id) == dossier.treating.identifier_value
            [preferences] = there.scalars(
                select(AccessPreferences).where(AccessPreferences.patient_id == pid)
            ).all()
            assert (preferences.emergency_opposed, preferences.emergency_widened) == (True, False)
            [mask] = there.scalars(select(DocumentMask).where(DocumentMask.patient_id == pid)).all()
            masked = there.get_one(Document, (pid, mask.document_id))
            assert masked.master_identifier == dossier.exportable[-1].master_identifier
            assert rpps(mask.professional_id) == dossier.doctor.identifier_value
            # The history is kept in the import's event, not replayed as events of its own.
            there_trail = there.scalars(select(AuditEvent).where(AuditEvent.chain_id == pid)).all()
            assert not [e for e in there_trail if e.action is AuditAction.SEARCH]
            [imported] = [e for e in there_trail if e.action is AuditAction.LIFECYCLE]
            history = json.loads(imported.details)["imported_history"]
        assert len(history) == report.history_entries
        doctor_id = f"Practitioner/{dossier.doctor.id}"
        [search] = [e for e in history if e["who"] == doctor_id and e["action"] == "search"]
        # When, how it ended, and what: the dossier and the three documents the search found
        # (the patient's upload is masked from this doctor).
        assert (search["recorded"], search["outcome"], search["what"][0]) == (
            "2026-06-01T12:00:00Z",
            "0",
            f"Patient/{dossier.patient.id}",
        )
        assert len(search["what"]) == 4
        assert search["application"] is None
        assert history[0]["action"] == "publish"

    def test_a_rule_the_services_refuse_fails_the_whole_import(
        self, exported: bytes, target: Engine, tmp_path: Path, clock: FrozenClock
    ) -> None:
        rules = json.loads(_member(exported, "access-rules.json"))
        rules["grants"][0]["level"] = "everything"
        changed = _rewritten(exported, {"access-rules.json": json.dumps(rules).encode()})
        with (
            pytest.raises(InvalidExportFile) as refused,
            unit_of_work(session_factory(target)) as there,
        ):
            _import(there, _target_store(tmp_path), changed, clock)
        assert refused.value.field == "access-rules.json"
        with session_factory(target)() as there:
            assert there.scalars(select(Patient)).all() == []

    def test_an_export_without_essentials_or_rules_still_imports(
        self, exported: bytes, target: Engine, tmp_path: Path, clock: FrozenClock
    ) -> None:
        older = _rewritten(exported, {"access-rules.json": None, "essentials.json": None})
        with unit_of_work(session_factory(target)) as there:
            report = _import(there, _target_store(tmp_path), older, clock)
        assert (report.documents, report.essentials, report.rules) == (5, 0, RestoredRules())

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
