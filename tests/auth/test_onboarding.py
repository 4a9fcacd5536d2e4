"""Onboarding from the invitation letter and the agency's invitation; recovery with a new one."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.audit.models import AuditAction, AuditEvent
from carnet.auth import clients, onboarding, sign_in
from carnet.auth.errors import SignInRefused
from carnet.auth.models import (
    PasskeyCredential,
    PasskeyHolder,
    PatientAccount,
    ProfessionalAccount,
    RefreshToken,
)
from carnet.auth.passwords import PasswordRefused
from carnet.clock import FrozenClock
from carnet.lifecycle import service as lifecycle
from carnet.lifecycle.errors import ActivationRefused
from carnet.lifecycle.models import ActivationCode
from carnet.patients.models import DossierState, Patient
from carnet.storage import MasterKeyWrapper
from factories.actors import operator_actor
from factories.directory import make_professional
from factories.lifecycle import CODE_LIFETIME, make_invited_patient

NEW_PASSWORD = "lantern river quietly"
BORN = dt.date(1980, 5, 17)


def _letter(session: Session, clock: FrozenClock, patient: Patient) -> str:
    return lifecycle.issue_invitation(
        session,
        open_dossier(session, operator_actor(), patient.id, purposes.ISSUE_INVITATION, clock=clock),
        lifetime=CODE_LIFETIME,
    ).code


def _identifier(patient: Patient) -> str:
    return patient.identifiers[0].value


def _enrol(
    session: Session,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    newcomer: onboarding.Newcomer,
    secret: str,
) -> None:
    onboarding.check_first_code(secret, pyotp.TOTP(secret).at(clock.now()), clock=clock)
    onboarding.enrol_credentials(
        session,
        newcomer,
        password=NEW_PASSWORD,
        totp_secret=secret,
        second_factor="totp",
        key_wrapper=wrapper,
        clock=clock,
    )


def _sign_in(
    session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper, patient: Patient, secret: str
) -> Assurance:
    return sign_in.sign_in_with_password(
        session,
        kind=ActorKind.PATIENT,
        identifier=_identifier(patient),
        password=NEW_PASSWORD,
        otp=pyotp.TOTP(secret).at(clock.now()),
        key_wrapper=wrapper,
        clock=clock,
    ).assurance


class TestLetter:
    def test_the_letter_creates_the_account_and_opens_the_dossier_at_once(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        code = _letter(session, clock, patient)
        newcomer = onboarding.check_letter(
            session, identifier=_identifier(patient), birth_date=BORN, code=code, clock=clock
        )
        assert not newcomer.has_account
        before = patient.dossier.state  # checked, not spent
        secret = onboarding.new_totp_secret()
        _enrol(session, clock, wrapper, newcomer, secret)
        session.refresh(patient.dossier)
        assert (before, patient.dossier.state) == (DossierState.INVITED, DossierState.ACTIVE)
        assert session.get(PatientAccount, patient.id) is not None
        clock.advance(dt.timedelta(seconds=31))
        assert _sign_in(session, clock, wrapper, patient, secret) is Assurance.SUBSTANTIAL
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == AuditAction.SIGN_IN)
        ).all()
        assert any("account created" in str(e.details) for e in events)

    def test_the_code_is_single_use(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        code = _letter(session, clock, patient)
        newcomer = onboarding.check_letter(
            session, identifier=_identifier(patient), birth_date=BORN, code=code, clock=clock
        )
        _enrol(session, clock, wrapper, newcomer, onboarding.new_totp_secret())
        with pytest.raises(ActivationRefused):
            onboarding.check_letter(
                session, identifier=_identifier(patient), birth_date=BORN, code=code, clock=clock
            )
        # Nor can a second page of the same letter, checked before, create anything.
        with pytest.raises(ActivationRefused):
            _enrol(session, clock, wrapper, newcomer, onboarding.new_totp_secret())

    def test_a_wrong_birth_date_is_refused_and_counts_as_a_wrong_attempt(
        self, session: Session, clock: FrozenClock
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        code = _letter(session, clock, patient)
        with pytest.raises(ActivationRefused):
            onboarding.check_letter(
                session,
                identifier=_identifier(patient),
                birth_date=BORN + dt.timedelta(days=1),
                code=code,
                clock=clock,
            )
        [row] = session.scalars(
            select(ActivationCode).where(
                ActivationCode.patient_id == patient.id, ActivationCode.revoked_at.is_(None)
            )
        ).all()
        assert row.failed_attempts == 1

    def test_the_second_factor_must_be_confirmed_and_the_password_sound(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        code = _letter(session, clock, patient)
        newcomer = onboarding.check_letter(
            session, identifier=_identifier(patient), birth_date=BORN, code=code, clock=clock
        )
        secret = onboarding.new_totp_secret()
        with pytest.raises(onboarding.OtpRefused):
            onboarding.check_first_code(secret, "000000", clock=clock)
        with pytest.raises(PasswordRefused):
            onboarding.enrol_credentials(
                session,
                newcomer,
                password=_identifier(patient),
                totp_secret=secret,
                second_factor="totp",
                key_wrapper=wrapper,
                clock=clock,
            )


class TestRecovery:
    def test_a_new_letter_replaces_the_credentials_and_revokes_what_the_old_ones_opened(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_invited_patient(session, clock, birth_date=BORN)
        newcomer = onboarding.check_letter(
            session,
            identifier=_identifier(patient),
            birth_date=BORN,
            code=_letter(session, clock, patient),
            clock=clock,
        )
        old_secret = onboarding.new_totp_secret()
        _enrol(session, clock, wrapper, newcomer, old_secret)
        family = _refresh_token_and_passkey(session, clock, patient)
        clock.advance(dt.timedelta(days=2))

        again = onboarding.check_letter(
            session,
            identifier=_identifier(patient),
            birth_date=BORN,
            code=_letter(session, clock, patient),
            clock=clock,
        )
        assert again.has_account
        new_secret = onboarding.new_totp_secret()
        _enrol(session, clock, wrapper, again, new_secret)

        token = session.get(RefreshToken, family)
        assert token is not None
        assert token.revoked_at is not None
        assert session.scalars(select(PasskeyCredential)).all() == []
        clock.advance(dt.timedelta(seconds=31))
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, wrapper, patient, old_secret)
        assert _sign_in(session, clock, wrapper, patient, new_secret) is Assurance.SUBSTANTIAL


def _refresh_token_and_passkey(session: Session, clock: FrozenClock, patient: Patient) -> str:
    now = clock.now()
    session.add(
        PasskeyCredential(
            holder=PasskeyHolder.PATIENT,
            subject_id=patient.id,
            credential_id=b"lost-phone",
            public_key=b"cose",
            sign_count=0,
            transports=[],
            name="lost phone",
            created_at=now,
        )
    )
    client = clients.ensure_first_party_client(
        session,
        client_id="carnet-portal",
        name="Carnet",
        redirect_uri="https://carnet.example/portal/callback",
        allowed_scopes="openid",
        clock=clock,
    )
    session.add(
        RefreshToken(
            token_hash="a" * 64,
            family_id=patient.id,
            issued_at=now,
            client_id=client.client_id,
            scope="openid",
            subject_kind=ActorKind.PATIENT,
            subject_id=patient.id,
            assurance=int(Assurance.SUBSTANTIAL),
            amr="pwd otp",
            auth_time=now,
            expires_at=now + dt.timedelta(days=30),
        )
    )
    session.flush()
    return "a" * 64


class TestProfessionalInvitation:
    def test_an_invitation_creates_the_account_once(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        professional = make_professional(session, clock)
        _, code = onboarding.invite_professional(
            session, identifier=professional.identifier_value, issued_by="operator:a", clock=clock
        )
        newcomer = onboarding.check_invitation(session, code=code, clock=clock)
        assert newcomer.kind is ActorKind.PROFESSIONAL
        _enrol(session, clock, wrapper, newcomer, onboarding.new_totp_secret())
        assert session.get(ProfessionalAccount, professional.id) is not None
        with pytest.raises(onboarding.InvitationRefused):
            onboarding.check_invitation(session, code=code, clock=clock)

    def test_an_invitation_expires_and_a_new_one_revokes_the_old(
        self, session: Session, clock: FrozenClock
    ) -> None:
        professional = make_professional(session, clock)
        _, first = onboarding.invite_professional(
            session,
            identifier=professional.identifier_value,
            issued_by="operator:a",
            clock=clock,
            lifetime=dt.timedelta(days=1),
        )
        _, second = onboarding.invite_professional(
            session, identifier=professional.identifier_value, issued_by="operator:a", clock=clock
        )
        with pytest.raises(onboarding.InvitationRefused):
            onboarding.check_invitation(session, code=first, clock=clock)
        onboarding.check_invitation(session, code=second, clock=clock)
        clock.advance(dt.timedelta(days=onboarding.INVITATION_DAYS, seconds=1))
        with pytest.raises(onboarding.InvitationRefused):
            onboarding.check_invitation(session, code=second, clock=clock)
