"""Invitation letters and their activation codes: hashed, expiring, limited in attempts."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.lifecycle import letters, service
from carnet.lifecycle.errors import ActivationRefused
from carnet.lifecycle.models import ActivationCode
from carnet.patients.identifiers import LU_MATRICULE
from carnet.patients.models import DossierState, Patient
from factories.actors import operator_actor, patient_actor
from factories.lifecycle import CODE_LIFETIME, make_invited_patient
from factories.pdf import content_streams


def _invite(session: Session, clock: FrozenClock, patient: Patient) -> service.Invitation:
    return service.issue_invitation(
        session,
        open_dossier(session, operator_actor(), patient.id, purposes.ISSUE_INVITATION, clock=clock),
        lifetime=CODE_LIFETIME,
    )


def _activate(session: Session, clock: FrozenClock, patient: Patient, code: str) -> Patient:
    [identifier] = patient.identifiers
    return service.activate_with_code(
        session, system=LU_MATRICULE, identifier=identifier.value, code=code, clock=clock
    )


def _drawn_text(pdf: bytes) -> str:
    """The text a PDF draws, line after line, read from its (deflated) content streams."""
    lines = []
    for content in content_streams(pdf):
        lines += re.findall(rb"\((.*?)(?<!\\)\) ?Tj", content)
    return " ".join(line.decode("latin-1").replace("\\", "") for line in lines)


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type /Page\b(?!s)", pdf))


def _codes(session: Session, patient: Patient) -> list[ActivationCode]:
    return list(
        session.scalars(select(ActivationCode).where(ActivationCode.patient_id == patient.id))
    )


class TestActivationCodes:
    def test_a_code_is_long_unambiguous_and_stored_only_as_a_hash(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        letter = _invite(session, clock, patient)
        assert len(letter.code) == service.CODE_LENGTH >= 10
        assert set(letter.code) <= set(service.CODE_ALPHABET)
        assert not set("01IOL") & set(service.CODE_ALPHABET)
        [row] = _codes(session, patient)
        assert row.code_hash.startswith("scrypt$")
        assert letter.code not in row.code_hash
        assert row.expires_at == clock.now() + CODE_LIFETIME
        assert letter.opening_deadline == patient.dossier.opening_deadline

    def test_the_right_code_opens_the_dossier_once(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        letter = _invite(session, clock, patient)
        typed = f" {letter.code[:4].lower()}-{letter.code[4:8]} {letter.code[8:]} "
        assert _activate(session, clock, patient, typed).id == patient.id
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.ACTIVE
        [row] = _codes(session, patient)
        assert row.used_at == clock.now()
        with pytest.raises(ActivationRefused):
            _activate(session, clock, patient, letter.code)

    def test_a_code_after_the_automatic_opening_still_signs_the_patient_in(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        letter = _invite(session, clock, patient)
        clock.advance(dt.timedelta(days=31))
        service.open_due_dossiers(session, clock=clock)
        _activate(session, clock, patient, letter.code)
        [row] = _codes(session, patient)
        assert row.used_at == clock.now()

    def test_wrong_codes_count_and_lock_the_letter_after_five(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        letter = _invite(session, clock, patient)
        for _ in range(service.MAX_CODE_ATTEMPTS):
            with pytest.raises(ActivationRefused):
                _activate(session, clock, patient, "ZZZZZZZZZZZZ")
        with pytest.raises(ActivationRefused):
            _activate(session, clock, patient, letter.code)  # right, but locked now
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.INVITED
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == patient.id, AuditEvent.outcome == AuditOutcome.DENIED
            )
        ).all()
        assert len(denied) == service.MAX_CODE_ATTEMPTS + 1
        assert {event.action for event in denied} == {AuditAction.LIFECYCLE}

    def test_an_expired_code_is_refused(self, session: Session, clock: FrozenClock) -> None:
        patient = make_invited_patient(session, clock)
        letter = _invite(session, clock, patient)
        clock.advance(CODE_LIFETIME + dt.timedelta(seconds=1))
        with pytest.raises(ActivationRefused):
            _activate(session, clock, patient, letter.code)

    def test_a_new_letter_revokes_the_previous_code(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        first = _invite(session, clock, patient)
        second = _invite(session, clock, patient)
        with pytest.raises(ActivationRefused):
            _activate(session, clock, patient, first.code)
        _activate(session, clock, patient, second.code)

    def test_an_unknown_or_malformed_identifier_is_refused_alike(
        self, session: Session, clock: FrozenClock
    ) -> None:
        for identifier in ("19800517 00123", "not a number"):
            with pytest.raises(ActivationRefused) as refused:
                service.activate_with_code(
                    session, system=LU_MATRICULE, identifier=identifier, code="X", clock=clock
                )
            assert refused.value.field == "code"

    def test_the_code_reopens_an_opposed_dossier(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock)
        letter = _invite(session, clock, patient)
        service.oppose(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.MANAGE_DOSSIER, clock=clock
            ),
        )
        _activate(session, clock, patient, letter.code)
        session.refresh(patient.dossier)
        assert patient.dossier.state is DossierState.ACTIVE

    def test_only_the_agency_issues_letters(self, session: Session, clock: FrozenClock) -> None:
        patient = make_invited_patient(session, clock)
        with pytest.raises(AccessDenied):
            service.issue_invitation(
                session,
                open_dossier(
                    session,
                    patient_actor(patient),
                    patient.id,
                    purposes.ISSUE_INVITATION,
                    clock=clock,
                ),
                lifetime=CODE_LIFETIME,
            )


class TestLetters:
    @pytest.mark.parametrize(
        ("language", "opening"),
        [
            ("fr", "votre dossier sera ouvert le 01/07/2026"),
            ("en", "your record will be opened on 1 July 2026"),
            ("de", "wird Ihre Akte am 01.07.2026 eröffnet"),
            ("lb", "wird Ihre Akte am 01.07.2026 eröffnet"),  # Luxembourgish readers: German
        ],
    )
    def test_a_letter_speaks_the_patients_language_and_shows_code_and_dates(
        self, session: Session, clock: FrozenClock, language: str, opening: str
    ) -> None:
        patient = make_invited_patient(session, clock, language=language, given="Łukasz")
        letter = _invite(session, clock, patient)
        pdf = letters.letter_pdf(
            letter, portal_url="https://carnet.example", printed_at=clock.now()
        )
        text = _drawn_text(pdf)
        assert opening in text
        assert "Lukasz" in text  # transliterated for the core font
        assert f"{letter.code[:4]}-{letter.code[4:8]}-{letter.code[8:]}" in text
        assert "https://carnet.example" in text

    def test_a_book_holds_one_page_per_letter(
        self, session: Session, clock: FrozenClock, tmp_path: Path
    ) -> None:
        book = letters.LetterBook(portal_url="https://carnet.example", printed_at=clock.now())
        for _ in range(3):
            book.add(_invite(session, clock, make_invited_patient(session, clock)))
        path = tmp_path / "letters.pdf"
        book.write(path)
        assert _pages(path.read_bytes()) == book.pages == 3
