"""The MLLP way in's transaction: the ACK once committed, refusals audited on their own.

HL7 v2.5.1, 2.9.2 (original acknowledgment mode): AA only after the message's documents and
audit events are committed; AE/AR with MSA-3 and an ERR segment naming the field (ERR-2,
``PID^1^3``), the table 0357 code (ERR-3) and the reason (ERR-8).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.db import session_factory, unit_of_work
from carnet.documents.models import Document
from carnet.laboratory import intake
from carnet.mllp.handling import Peer, handle
from carnet.patients.models import DossierState
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore, StoredContent
from carnet.storage.errors import StoreUnavailable
from factories.directory import make_organisation
from factories.patients import make_matricule, make_patient
from laboratory.sending import lead_report, matricule_of, register_lab

PEER = Peer(address="127.0.0.1")


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


def _setup(
    sessions: sessionmaker[Session], clock: FrozenClock, **patient: object
) -> tuple[uuid.UUID, str]:
    with unit_of_work(sessions) as session:
        register_lab(session, clock, make_organisation(session, clock), "Central Lab")
        made = make_patient(session, clock, **patient)  # type: ignore[arg-type]
        return made.id, matricule_of(made)


def test_the_aa_comes_once_the_report_is_committed(platform: Platform) -> None:
    patient_id, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]
    ack = handle(platform, lead_report(matricule, control="C-1").encode(), PEER)
    segments = _segments(ack)
    assert segments["MSA"][:3] == ["MSA", "AA", "C-1"]
    assert segments["MSH"][8] == "ACK^R01^ACK"
    assert "ERR" not in segments
    with platform.sessions() as session:
        documents = session.scalars(select(Document).where(Document.patient_id == patient_id)).all()
        published = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == patient_id, AuditEvent.action == AuditAction.PUBLISH
            )
        ).all()
    assert len(documents) == 1
    assert len(published) == 1
    assert published[0].agent_kind == "feeding-system"


def test_a_resend_is_answered_aa_again_and_stored_once(platform: Platform) -> None:
    patient_id, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]
    message = lead_report(matricule, control="C-2").encode()
    first, again = handle(platform, message, PEER), handle(platform, message, PEER)
    assert _segments(first)["MSA"][1] == _segments(again)["MSA"][1] == "AA"
    with platform.sessions() as session:
        count = len(
            session.scalars(select(Document.id).where(Document.patient_id == patient_id)).all()
        )
    assert count == 1


@pytest.mark.parametrize("state", [DossierState.CLOSED, DossierState.OPPOSED])
def test_a_dossier_not_active_is_answered_ae_and_the_refusal_audited(
    platform: Platform, state: DossierState
) -> None:
    patient_id, matricule = _setup(platform.sessions, platform.clock, state=state)  # type: ignore[arg-type]
    ack = handle(platform, lead_report(matricule, control="C-3").encode(), PEER)
    segments = _segments(ack)
    assert segments["MSA"][:3] == ["MSA", "AE", "C-3"]
    assert state.value in segments["MSA"][3]
    assert segments["ERR"][2] == "PID^1^3"
    assert segments["ERR"][3].startswith("206^")
    with platform.sessions() as session:
        assert (
            session.scalars(select(Document).where(Document.patient_id == patient_id)).all() == []
        )
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == patient_id, AuditEvent.outcome == AuditOutcome.DENIED
            )
        ).all()
    assert [event.action for event in denied] == [AuditAction.PUBLISH]


def test_an_unknown_patient_is_answered_ae_naming_pid_3_and_audited(platform: Platform) -> None:
    _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]
    ack = handle(platform, lead_report(make_matricule(), control="C-4").encode(), PEER)
    segments = _segments(ack)
    assert segments["MSA"][1] == "AE"
    assert segments["ERR"][2] == "PID^1^3"
    assert segments["ERR"][3] == "204^Unknown key identifier^HL70357"
    with platform.sessions() as session:
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.outcome == AuditOutcome.DENIED, AuditEvent.agent_kind == "feeding-system"
            )
        ).all()
    assert len(denied) == 1
    assert denied[0].patient_id is None


def test_an_unknown_sender_is_answered_ar_and_nothing_is_stored(platform: Platform) -> None:
    _, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]
    text = lead_report(matricule, control="C-5").replace("|Central Lab|", "|Unknown Lab|", 1)
    segments = _segments(handle(platform, text.encode(), PEER))
    assert segments["MSA"][:3] == ["MSA", "AR", "C-5"]
    assert segments["ERR"][2] == "MSH^1^4"
    with platform.sessions() as session:
        assert session.scalars(select(Document.id)).all() == []


def test_unreadable_bytes_are_answered_ar_naming_msh(platform: Platform) -> None:
    segments = _segments(handle(platform, b"\x00\xffnot hl7 at all", PEER))
    assert segments["MSA"][1] == "AR"
    assert segments["ERR"][2] == "MSH^1"


def _stored(platform: Platform, patient_id: uuid.UUID) -> int:
    with platform.sessions() as session:
        return len(
            session.scalars(select(Document.id).where(Document.patient_id == patient_id)).all()
        )


def test_a_store_outage_is_ar_207_and_nothing_is_stored(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient_id, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]

    def full_disk(patient_id: str, content: bytes) -> StoredContent:
        raise StoreUnavailable("disk full")

    monkeypatch.setattr(platform.store, "put", full_disk)
    segments = _segments(handle(platform, lead_report(matricule, control="C-9").encode(), PEER))
    # AR with 207: not the message's fault; the laboratory sends it again later.
    assert segments["MSA"][:3] == ["MSA", "AR", "C-9"]
    assert segments["ERR"][3].startswith("207")
    assert "disk" not in segments["ERR"][8]
    assert _stored(platform, patient_id) == 0
    monkeypatch.undo()
    # Once the store is back, the same message is taken, once.
    assert (
        _segments(handle(platform, lead_report(matricule, control="C-9").encode(), PEER))["MSA"][1]
        == "AA"
    )
    assert _stored(platform, patient_id) == 1


def test_a_database_outage_is_ar_207(platform: Platform, tmp_path: Path) -> None:
    _, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]
    gone = create_engine(f"sqlite:///{tmp_path / 'missing' / 'carnet.db'}")
    outage = replace(platform, engine=gone, sessions=session_factory(gone))
    segments = _segments(handle(outage, lead_report(matricule, control="C-10").encode(), PEER))
    assert segments["MSA"][:2] == ["MSA", "AR"]
    assert segments["ERR"][3].startswith("207")


def test_a_defect_is_still_answered_ar_207_never_silence(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]

    def defect(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(intake, "receive", defect)
    segments = _segments(handle(platform, lead_report(matricule, control="C-11").encode(), PEER))
    assert segments["MSA"][:3] == ["MSA", "AR", "C-11"]
    assert segments["ERR"][3].startswith("207")
    assert "secret" not in "|".join(segments["ERR"])


def test_a_twin_that_keeps_conflicting_is_answered_ar_207(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, matricule = _setup(platform.sessions, platform.clock)  # type: ignore[arg-type]
    tries: list[int] = []

    def conflicting(*args: object, **kwargs: object) -> None:
        tries.append(1)
        raise IntegrityError("INSERT", {}, ValueError("duplicate key"))

    monkeypatch.setattr(intake, "receive", conflicting)
    segments = _segments(handle(platform, lead_report(matricule, control="C-12").encode(), PEER))
    assert len(tries) == 2  # the second attempt would find a twin's record: there was none
    assert segments["MSA"][1] == "AR"
