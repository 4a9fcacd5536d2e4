"""The shared datasets' MDM messages, the MLLP answer to an MDM, and ``carnet hl7 import``.

ms-fhir-converter/hl7v2 holds 13 MDM messages (T01, T02, T05, T06, T09, T10) and
node-hl7-complete-hl7v2 one (T04), written by others. None carries a document Carnet can store
as it is: the T02/T10 are HL7 2.8 or training messages, their ED is empty or their content is
text lines. Each is sent as it is and again as a production 2.5.1 message addressed to a test
patient: each is refused naming the field at fault (nothing stored), none crashes; the T02 whose
empty ED is filled with a PDF is then stored as the imaging report its TXA-2 names.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from carnet.cli import app
from carnet.clock import FrozenClock
from carnet.db import make_engine, session_factory, unit_of_work
from carnet.directory.models import Organisation
from carnet.documents.models import Document
from carnet.laboratory.errors import MessageRefused
from carnet.laboratory.message import split_batch
from carnet.mllp.handling import Peer, handle
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import DocumentStore, FilesystemDocumentStore
from conftest import DATASETS
from factories.directory import make_organisation
from factories.patients import make_patient
from factories.pdf import text_pdf
from laboratory.sending import (
    addressed_to,
    document_notification,
    documents_of,
    facility_of,
    matricule_of,
    register_lab,
    send,
    set_field,
)

PDF = text_pdf("Echocardiographie transthoracique")
MDM_FILES = sorted(
    [
        *(DATASETS / "ms-fhir-converter" / "hl7v2").glob("MDM-*.hl7"),
        DATASETS / "node-hl7-complete-hl7v2" / "valid__remote-operations__mdm-example.hl7",
    ]
)
# The field each message is refused on: as sent, then as a production 2.5.1 message.
AS_SENT = {
    "MDM-T02-03.hl7": "MSH-11",  # a training message (and 2.3)
    # Its MSH-10 is broken over two lines: the line after MSH is no segment.
    "valid__remote-operations__mdm-example.hl7": "MSH",
}
AS_PRODUCTION = {
    "MDM-T02-01.hl7": "OBX-5",  # its ED (application/pdf, Base64) holds no data
    "MDM-T02-02.hl7": "OBX-2",  # the document as TX lines, no ED
    "MDM-T02-03.hl7": "TXA-17",  # in progress (IP): not yet authenticated
    "MDM-T10-01.hl7": "OBX-5",
    "MDM-T10-02.hl7": "OBX-2",
    "valid__remote-operations__mdm-example.hl7": "MSH",
}


def test_the_datasets_hold_fourteen_mdm_messages() -> None:
    assert len(MDM_FILES) == 14


@pytest.mark.parametrize("production", [False, True], ids=["as-sent", "as-production"])
def test_every_dataset_mdm_is_refused_naming_the_field(
    session: Session,
    store: DocumentStore,
    clock: FrozenClock,
    lab: Organisation,
    production: bool,
) -> None:
    registered: set[str] = set()
    for path in MDM_FILES:
        [original] = split_batch(path.read_bytes())
        patient = make_patient(session, clock)
        text = addressed_to(original, matricule_of(patient))
        if production:
            text = set_field(set_field(text, "MSH", 11, "P"), "MSH", 12, "2.5.1")
        facility = facility_of(text)
        if facility not in registered:
            register_lab(session, clock, lab, facility)
            registered.add(facility)
        expected = _expected(path.name, production=production)
        with session.begin_nested() as savepoint, pytest.raises(MessageRefused) as raised:
            send(session, store, clock, text)
        assert not savepoint.is_active
        assert raised.value.field == expected, (path.name, raised.value.message)
        assert documents_of(session, patient.id) == [], path.name


def _expected(name: str, *, production: bool) -> str:
    table = AS_PRODUCTION if production else AS_SENT
    if name in table:
        return table[name]
    # The T02/T10 are HL7 2.8 (MSH-12); every other message is of an event Carnet does not
    # take (MSH-9), which is checked first.
    return "MSH-12" if not production and ("T02" in name or "T10" in name) else "MSH-9"


def test_the_dataset_t02_with_a_pdf_in_its_ed_is_stored(
    session: Session, store: DocumentStore, clock: FrozenClock, lab: Organisation
) -> None:
    path = DATASETS / "ms-fhir-converter" / "hl7v2" / "MDM-T02-01.hl7"
    patient = make_patient(session, clock)
    text = addressed_to(path.read_text(), matricule_of(patient))
    text = set_field(text, "MSH", 12, "2.5.1")
    encoded = base64.b64encode(PDF).decode()
    text = text.replace("^application^pdf^Base64^|", f"^application^pdf^Base64^{encoded}|")
    register_lab(session, clock, lab, "XYZHOSPITAL")
    accepted = send(session, store, clock, text)
    [document] = documents_of(session, patient.id)
    assert accepted.document_ids == (document.id,)
    assert (document.type_code, document.mime_type) == ("18748-4", "application/pdf")
    assert document.master_identifier == "1.2.840.317.5947431.51.20080131160038"
    assert document.created_at.astimezone(dt.UTC) == dt.datetime(2008, 1, 31, 13, 45, tzinfo=dt.UTC)
    assert store.get(document.content_key) == PDF


@pytest.fixture
def platform(committing_engine: Engine, store: FilesystemDocumentStore, tmp_path: Path) -> Platform:
    return Platform(
        settings=Settings(var_dir=tmp_path),
        engine=committing_engine,
        sessions=session_factory(committing_engine),
        store=store,
        clock=FrozenClock(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)),
    )


def _segments(ack: bytes) -> dict[str, list[str]]:
    return {line[:3]: line.split("|") for line in ack.decode().split("\r") if line}


def test_mllp_answers_aa_once_stored_and_ae_naming_obx_5(platform: Platform) -> None:
    clock = platform.clock
    assert isinstance(clock, FrozenClock)
    with unit_of_work(platform.sessions) as session:
        register_lab(session, clock, make_organisation(session, clock), "Central Lab")
        made = make_patient(session, clock)
        patient_id, matricule = made.id, matricule_of(made)
    peer = Peer(address="127.0.0.1")
    message = document_notification(matricule, PDF, control="D-1").encode()
    first, again = handle(platform, message, peer), handle(platform, message, peer)
    for ack in (first, again):
        segments = _segments(ack)
        assert segments["MSA"][:3] == ["MSA", "AA", "D-1"]
        assert segments["MSH"][8] == "ACK^T02^ACK"
    bad = document_notification(matricule, PDF, control="D-2", number="X-2", data="%%%")
    segments = _segments(handle(platform, bad.encode(), peer))
    assert segments["MSA"][:3] == ["MSA", "AE", "D-2"]
    assert segments["ERR"][2] == "OBX^1^5"
    with platform.sessions() as session:
        stored = session.scalars(select(Document).where(Document.patient_id == patient_id)).all()
    assert len(stored) == 1


def test_carnet_hl7_import_takes_mdm_messages(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"CARNET_VAR_DIR": str(tmp_path / "var")}
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    engine = make_engine(Settings(var_dir=tmp_path / "var").effective_database_url)
    clock = FrozenClock(dt.datetime.now(dt.UTC))
    with unit_of_work(session_factory(engine)) as session:
        lab = make_organisation(session, clock)
        register_lab(session, clock, lab, "Central Lab")
        matricule = matricule_of(make_patient(session, clock))
    engine.dispose()
    file = tmp_path / "documents.hl7"
    file.write_text(
        document_notification(matricule, PDF, control="F-1")
        + document_notification(matricule, PDF, control="F-2", number=str(uuid.uuid4()), data="!")
    )
    imported = runner.invoke(app, ["hl7", "import", str(file)], env=env)
    assert imported.exit_code == 1
    assert "F-1\tAA\tDocument stored." in imported.output
    assert "F-2\tAE [OBX-5]\t" in imported.output
