"""Accounts, sign-in (password, TOTP, card), lockout, scopes, clients and demo provisioning."""

from __future__ import annotations

import datetime as dt

import pyotp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.auth import accounts, card, clients, grants, sign_in
from carnet.auth.errors import InvalidRequest, InvalidScope, SignInRefused, UnknownSubject
from carnet.auth.models import PatientAccount, ProfessionalAccount, RevokedToken
from carnet.auth.tokens import Principal
from carnet.clock import FrozenClock
from carnet.demo import accounts as demo_accounts
from carnet.storage import MasterKeyWrapper
from factories.auth import (
    PASSWORD,
    PatientLogin,
    code_now,
    make_patient_login,
    make_professional_login,
)
from factories.directory import make_organisation, make_professional
from factories.patients import make_patient


class TestSecrets:
    def test_hash_and_verify(self) -> None:
        encoded = accounts.hash_secret("s3cret")
        assert encoded.startswith(f"scrypt${accounts.SCRYPT_N}$8$1$")
        assert "s3cret" not in encoded
        assert accounts.verify_secret("s3cret", encoded)
        assert not accounts.verify_secret("s3cret ", encoded)

    def test_the_same_secret_hashes_differently(self) -> None:
        assert accounts.hash_secret("a") != accounts.hash_secret("a")

    @pytest.mark.parametrize("encoded", ["", "bcrypt$x", "scrypt$1$2$3$!!$!!", "scrypt$a$b$c$d$e"])
    def test_malformed_hashes_never_match(self, encoded: str) -> None:
        assert not accounts.verify_secret("a", encoded)


def _patient_sign_in(
    session: Session,
    login: PatientLogin,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    *,
    password: str = PASSWORD,
    otp: str | None = "now",
) -> Principal:
    return sign_in.sign_in_with_password(
        session,
        kind=ActorKind.PATIENT,
        identifier=login.identifier,
        password=password,
        otp=code_now(login.totp, clock) if otp == "now" else otp,
        key_wrapper=wrapper,
        clock=clock,
    )


class TestPasswordSignIn:
    def test_password_and_totp_is_substantial(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        principal = _patient_sign_in(session, login, clock, wrapper)
        assert principal.assurance is Assurance.SUBSTANTIAL
        assert principal.methods == ("pwd", "otp", "mfa")
        assert principal.person_id == login.patient.id
        assert principal.fhir_user == f"Patient/{login.patient.id}"

    def test_password_alone_is_low(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        principal = _patient_sign_in(session, login, clock, wrapper, otp=None)
        assert principal.assurance is Assurance.LOW
        assert principal.methods == ("pwd",)

    def test_identifier_may_be_typed_with_spaces(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        spaced = f"{login.identifier[:4]} {login.identifier[4:8]} {login.identifier[8:]}"
        principal = sign_in.sign_in_with_password(
            session,
            kind=ActorKind.PATIENT,
            identifier=spaced,
            password=PASSWORD,
            otp=None,
            key_wrapper=wrapper,
            clock=clock,
        )
        assert principal.person_id == login.patient.id

    @pytest.mark.parametrize("problem", ["password", "otp", "identifier"])
    def test_every_wrong_credential_is_the_same_refusal(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper, problem: str
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        if problem == "identifier":
            login = PatientLogin(login.patient, "1980051700000", login.totp)
        with pytest.raises(SignInRefused) as refused:
            _patient_sign_in(
                session,
                login,
                clock,
                wrapper,
                password="wrong" if problem == "password" else PASSWORD,
                otp="000000" if problem == "otp" else "now",
            )
        assert refused.value.message == SignInRefused.GENERIC

    def test_a_one_time_code_is_accepted_once(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        code = code_now(login.totp, clock)
        _patient_sign_in(session, login, clock, wrapper, otp=code)
        with pytest.raises(SignInRefused):
            _patient_sign_in(session, login, clock, wrapper, otp=code)
        clock.advance(dt.timedelta(seconds=30))
        _patient_sign_in(session, login, clock, wrapper)

    def test_a_code_one_step_old_is_tolerated(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        code = code_now(login.totp, clock)
        clock.advance(dt.timedelta(seconds=30))
        assert _patient_sign_in(session, login, clock, wrapper, otp=code).assurance is (
            Assurance.SUBSTANTIAL
        )

    def test_five_failures_lock_the_account_for_fifteen_minutes(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        for _ in range(accounts.MAX_FAILED_SIGN_INS):
            with pytest.raises(SignInRefused):
                _patient_sign_in(session, login, clock, wrapper, password="wrong")
        account = session.get(PatientAccount, login.patient.id)
        assert account is not None
        assert account.locked_until == clock.now() + accounts.LOCK_DURATION
        with pytest.raises(SignInRefused):
            _patient_sign_in(session, login, clock, wrapper)  # right credentials, still locked
        clock.advance(accounts.LOCK_DURATION)
        _patient_sign_in(session, login, clock, wrapper)
        assert account.failed_sign_ins == 0

    def test_a_success_resets_the_failure_count(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        for _ in range(accounts.MAX_FAILED_SIGN_INS - 1):
            with pytest.raises(SignInRefused):
                _patient_sign_in(session, login, clock, wrapper, password="wrong")
        _patient_sign_in(session, login, clock, wrapper, otp=None)
        account = session.get(PatientAccount, login.patient.id)
        assert account is not None
        assert account.failed_sign_ins == 0
        assert account.last_sign_in_at == clock.now()

    def test_secrets_are_stored_sealed(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        account = session.get(PatientAccount, login.patient.id)
        assert account is not None
        assert login.totp.secret.encode() not in account.totp_secret_sealed
        assert PASSWORD not in account.password_hash

    def test_an_inactive_professional_cannot_sign_in(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper, card=False)
        login.professional.active = False
        with pytest.raises(SignInRefused):
            sign_in.sign_in_with_password(
                session,
                kind=ActorKind.PROFESSIONAL,
                identifier=login.identifier,
                password=PASSWORD,
                otp=None,
                key_wrapper=wrapper,
                clock=clock,
            )


class TestCardSignIn:
    def test_card_and_pin_is_high(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        challenge = b"server-challenge-" + bytes(15)
        response = demo_accounts.read_demo_card(
            session,
            identifier=login.identifier,
            pin=demo_accounts.DEMO_PIN,
            challenge=challenge,
            key_wrapper=wrapper,
            clock=clock,
        )
        principal = sign_in.sign_in_with_card(
            session, response=response, challenge=challenge, clock=clock
        )
        assert principal.assurance is Assurance.HIGH
        assert set(principal.methods) == {"sc", "hwk", "pin", "mfa"}
        assert principal.professional_id == login.professional.id
        assert principal.profession == "general-practitioner"

    def test_a_wrong_pin_is_refused_and_counted(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        with pytest.raises(SignInRefused):
            demo_accounts.read_demo_card(
                session,
                identifier=login.identifier,
                pin="0000",
                challenge=b"c",
                key_wrapper=wrapper,
                clock=clock,
            )
        account = session.get(ProfessionalAccount, login.professional.id)
        assert account is not None
        assert account.failed_sign_ins == 1

    def test_a_signature_of_another_challenge_is_refused(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        response = demo_accounts.read_demo_card(
            session,
            identifier=login.identifier,
            pin=demo_accounts.DEMO_PIN,
            challenge=b"old challenge",
            key_wrapper=wrapper,
            clock=clock,
        )
        with pytest.raises(SignInRefused):
            sign_in.sign_in_with_card(
                session, response=response, challenge=b"new challenge", clock=clock
            )

    def test_a_card_from_an_untrusted_authority_is_refused(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        rogue, rogue_key = card.issue_authority("Rogue CA", clock.now())
        certificate, key = card.issue_card(
            rogue,
            rogue_key,
            card.CardHolder(login.professional.identifier_system, login.identifier),
            name="Impostor",
            now=clock.now(),
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        response = card.sign_challenge(pem, key, b"challenge")
        with pytest.raises(SignInRefused):
            sign_in.sign_in_with_card(
                session, response=response, challenge=b"challenge", clock=clock
            )

    def test_an_expired_card_is_refused(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        response = demo_accounts.read_demo_card(
            session,
            identifier=login.identifier,
            pin=demo_accounts.DEMO_PIN,
            challenge=b"c",
            key_wrapper=wrapper,
            clock=clock,
        )
        clock.advance(card.CARD_VALIDITY + dt.timedelta(days=1))
        with pytest.raises(SignInRefused):
            sign_in.sign_in_with_card(session, response=response, challenge=b"c", clock=clock)

    def test_the_card_certificate_names_the_professional(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        account = session.get(ProfessionalAccount, login.professional.id)
        assert account is not None
        assert account.card_certificate_pem is not None
        certificate = x509.load_pem_x509_certificate(account.card_certificate_pem.encode())
        serial = certificate.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)
        assert serial[0].value == login.identifier
        assert b"PRIVATE KEY" not in (account.card_key_sealed or b"")


class TestScopes:
    @pytest.mark.parametrize(
        ("requested", "allowed", "granted"),
        [
            ("patient/Observation.rs", "patient/*.rs", "patient/Observation.rs"),
            ("patient/*.cruds", "patient/*.rs", "patient/*.rs"),
            ("patient/*.rs", "patient/Observation.r", "patient/Observation.r"),
            ("patient/Observation.read", "patient/*.cruds", "patient/Observation.rs"),
            ("openid patient/*.rs system/*.rs", "openid patient/*.r", "openid patient/*.r"),
            (None, "launch/patient patient/*.rs", "launch/patient patient/*.rs"),
            ("offline_access", "openid patient/*.rs offline_access", "offline_access"),
        ],
    )
    def test_granted_is_requested_narrowed_to_allowed(
        self, requested: str | None, allowed: str, granted: str
    ) -> None:
        assert grants.grant_scopes(requested, allowed) == granted

    @pytest.mark.parametrize("requested", ["patient/Observation.xyz", "everything", "user/*.rs"])
    def test_unknown_or_disallowed_scopes_are_invalid_scope(self, requested: str) -> None:
        with pytest.raises(InvalidScope):
            grants.grant_scopes(requested, "patient/*.rs")


class TestClients:
    @pytest.mark.parametrize(
        "uri",
        [
            "http://app.example/callback",
            "https://app.example/callback#fragment",
            "relative/path",
            "https:///no-host",
        ],
    )
    def test_unsafe_redirect_uris_are_refused(
        self, session: Session, clock: FrozenClock, uri: str
    ) -> None:
        with pytest.raises(InvalidRequest):
            clients.register_public_client(
                session, name="App", redirect_uris=[uri], allowed_scopes="openid", clock=clock
            )

    @pytest.mark.parametrize(
        "uri",
        ["https://app.example/cb", "http://127.0.0.1:8765/cb", "com.example.carnet:/oauth"],
    )
    def test_https_loopback_and_private_use_redirects_are_accepted(
        self, session: Session, clock: FrozenClock, uri: str
    ) -> None:
        client = clients.register_public_client(
            session, name="App", redirect_uris=[uri], allowed_scopes="openid", clock=clock
        )
        assert client.redirect_uris == [uri]

    def test_a_backend_needs_an_organisation_and_public_keys(
        self, session: Session, clock: FrozenClock
    ) -> None:
        organisation = make_organisation(session, clock)
        key = ECKey.generate_key("P-256", private=True)
        with pytest.raises(UnknownSubject):
            clients.register_backend_client(
                session,
                name="LIS",
                organisation_identifier="ORG-NOPE",
                allowed_scopes="system/*.c",
                jwks={"keys": [key.as_dict(private=False)]},
                clock=clock,
            )
        with pytest.raises(InvalidRequest):
            clients.register_backend_client(
                session,
                name="LIS",
                organisation_identifier=organisation.identifier_value,
                allowed_scopes="system/*.c",
                jwks={"keys": [key.as_dict(private=True)]},
                clock=clock,
            )
        client = clients.register_backend_client(
            session,
            name="LIS",
            organisation_identifier=organisation.identifier_value,
            allowed_scopes="system/DocumentReference.c",
            jwks_url="https://lis.example/jwks.json",
            clock=clock,
        )
        assert client.organisation_id == organisation.id


class TestDemoProvisioning:
    def test_every_person_gets_the_demo_credentials_once(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_patient(session, clock)
        professional = make_professional(session, clock)
        created = demo_accounts.provision_demo_accounts(session, key_wrapper=wrapper, clock=clock)
        assert created >= 2
        assert demo_accounts.provision_demo_accounts(session, key_wrapper=wrapper, clock=clock) == 0

        matricule = patient.identifiers[0].value
        otp = pyotp.TOTP(demo_accounts.demo_totp_secret(matricule)).at(clock.now())
        principal = sign_in.sign_in_with_password(
            session,
            kind=ActorKind.PATIENT,
            identifier=matricule,
            password=demo_accounts.DEMO_PASSWORD,
            otp=otp,
            key_wrapper=wrapper,
            clock=clock,
        )
        assert principal.person_id == patient.id
        assert otp == accounts.current_otp(
            session,
            as_=f"patient:{matricule}",
            key_wrapper=wrapper,
            clock=clock,
            demo_idp=True,
        )
        response = demo_accounts.read_demo_card(
            session,
            identifier=professional.identifier_value,
            pin=demo_accounts.DEMO_PIN,
            challenge=b"c",
            key_wrapper=wrapper,
            clock=clock,
        )
        assert (
            sign_in.sign_in_with_card(
                session, response=response, challenge=b"c", clock=clock
            ).professional_id
            == professional.id
        )
        professional_accounts = session.scalars(select(ProfessionalAccount)).all()
        assert all(account.card_certificate_pem for account in professional_accounts)


class TestPurge:
    def test_expired_revocations_and_refresh_tokens_go_spent_codes_a_day_later(
        self, session: Session, clock: FrozenClock
    ) -> None:
        grants.revoke_access_token(
            session, jti="old", expires_at=clock.now() + dt.timedelta(minutes=5), clock=clock
        )
        grants.revoke_access_token(
            session, jti="young", expires_at=clock.now() + dt.timedelta(hours=1), clock=clock
        )
        clock.advance(dt.timedelta(minutes=10))
        assert grants.purge_expired(session, clock=clock) == 1
        assert session.get(RevokedToken, "old") is None
        assert session.get(RevokedToken, "young") is not None
