"""Passkeys (WebAuthn): registration, sign-in, clones, lockout and the audit trail.

The authenticator is ``factories.passkeys.SoftAuthenticator``: real "none" attestations and
ES256 assertions, verified by py_webauthn through ``carnet.auth.passkeys``.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.auth import accounts, passkeys
from carnet.auth.errors import PasskeyRefused, SignInRefused
from carnet.auth.models import PasskeyCredential, PasskeyHolder, PatientAccount
from carnet.auth.tokens import Principal, TokenAuthority
from carnet.clock import FrozenClock
from carnet.storage import MasterKeyWrapper
from factories.auth import (
    PASSWORD,
    PUBLIC_URL,
    authority,
    make_patient_login,
    make_professional_login,
)
from factories.passkeys import BINDING, SoftAuthenticator, register, unb64url

RP = passkeys.RelyingParty.from_public_url(PUBLIC_URL)


@pytest.fixture
def carnet(wrapper: MasterKeyWrapper) -> TokenAuthority:
    return authority(wrapper)


def _authenticator(**overrides: object) -> SoftAuthenticator:
    return SoftAuthenticator(rp_id=RP.id, origin=RP.origin, **overrides)  # type: ignore[arg-type]


def _sign_in(
    session: Session, clock: FrozenClock, authenticator: SoftAuthenticator, **tamper: object
) -> Principal:
    challenge = secrets.token_bytes(32)
    return passkeys.sign_in_with_passkey(
        session,
        rp=RP,
        response=authenticator.sign(challenge, **tamper),  # type: ignore[arg-type]
        challenge=challenge,
        clock=clock,
        network_address="192.0.2.7",
    )


def _passkey_events(session: Session) -> list[AuditEvent]:
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == AuditAction.SIGN_IN).order_by(AuditEvent.seq)
    )
    return [event for event in events if json.loads(event.details).get("method") == "passkey"]


@pytest.fixture
def patient_key(
    session: Session, carnet: TokenAuthority, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> tuple[uuid.UUID, SoftAuthenticator]:
    login = make_patient_login(session, clock, wrapper)
    authenticator = _authenticator()
    register(
        session, carnet, clock, passkeys.patient_account(session, login.patient.id), authenticator
    )
    return login.patient.id, authenticator


class TestRelyingParty:
    def test_id_is_the_host_and_origin_keeps_the_port(self) -> None:
        rp = passkeys.RelyingParty.from_public_url("https://carnet.example.lu:8443/base")
        assert (rp.id, rp.origin) == ("carnet.example.lu", "https://carnet.example.lu:8443")


class TestRegistration:
    def test_keeps_the_public_key_and_audits(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        account = passkeys.patient_account(session, login.patient.id)
        authenticator = _authenticator()
        passkey = register(session, carnet, clock, account, authenticator)
        assert passkey.holder is PasskeyHolder.PATIENT
        assert passkey.subject_id == login.patient.id
        assert passkey.credential_id == authenticator.credential_id
        assert passkey.transports == ["internal"]
        assert passkey.name == "phone"
        assert passkeys.list_passkeys(session, account) == [passkey]
        # The user handle names the account without its id.
        assert authenticator.user_handle == account.user_handle
        assert login.patient.id.bytes not in (authenticator.user_handle or b"")
        [event] = _passkey_events(session)
        assert event.agent_subject == f"Patient/{login.patient.id}"
        assert json.loads(event.details)["step"] == "register"

    def test_options_exclude_the_account_s_passkeys_and_require_verification(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        patient_id, authenticator = patient_key
        account = passkeys.patient_account(session, patient_id)
        ceremony = passkeys.begin_registration(
            session, carnet, account, binding=BINDING, clock=clock
        )
        options = json.loads(ceremony.options_json)
        excluded = [unb64url(entry["id"]) for entry in options["excludeCredentials"]]
        assert excluded == [authenticator.credential_id]
        assert options["rp"] == {"id": "testserver", "name": "Carnet"}
        assert options["authenticatorSelection"]["userVerification"] == "required"
        assert options["authenticatorSelection"]["residentKey"] == "required"

    @pytest.mark.parametrize(
        "tamper",
        [
            {"challenge": b"\x00" * 32},
            {"origin": "https://phishing.example"},
            {"rp_id": "phishing.example"},
        ],
        ids=["wrong-challenge", "wrong-origin", "wrong-rp-id"],
    )
    def test_refuses_an_answer_for_another_ceremony_or_site(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        tamper: dict[str, object],
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        account = passkeys.patient_account(session, login.patient.id)
        with pytest.raises(PasskeyRefused):
            # The parametrised overrides are the authenticator's (origin, rp_id, challenge).
            register(session, carnet, clock, account, _authenticator(), **tamper)  # type: ignore[arg-type]
        assert passkeys.list_passkeys(session, account) == []

    def test_refuses_a_state_from_another_session_or_expired(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        account = passkeys.patient_account(session, login.patient.id)
        ceremony = passkeys.begin_registration(
            session, carnet, account, binding=BINDING, clock=clock
        )
        answer = _authenticator().register(ceremony.options_json)
        finish = {
            "state": ceremony.state,
            "response": answer,
            "name": "",
            "clock": clock,
        }
        with pytest.raises(PasskeyRefused, match="not made in this session"):
            passkeys.finish_registration(session, carnet, binding="another", **finish)  # type: ignore[arg-type]
        clock.advance(dt.timedelta(seconds=passkeys.CEREMONY_SECONDS + 120))
        with pytest.raises(PasskeyRefused, match="expired"):
            passkeys.finish_registration(session, carnet, binding=BINDING, **finish)  # type: ignore[arg-type]
        assert passkeys.list_passkeys(session, account) == []

    def test_refuses_an_unverified_user_garbage_and_a_second_registration(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        patient_id, authenticator = patient_key
        account = passkeys.patient_account(session, patient_id)
        with pytest.raises(PasskeyRefused, match="already registered"):
            register(session, carnet, clock, account, authenticator)
        with pytest.raises(PasskeyRefused):
            register(session, carnet, clock, account, _authenticator(user_verified=False))
        ceremony = passkeys.begin_registration(
            session, carnet, account, binding=BINDING, clock=clock
        )
        for garbage in ("", "{}", "[1]", '{"id": 3, "response": null}'):
            with pytest.raises(PasskeyRefused):
                passkeys.finish_registration(
                    session,
                    carnet,
                    state=ceremony.state,
                    response=garbage,
                    name="x",
                    binding=BINDING,
                    clock=clock,
                )
        assert len(passkeys.list_passkeys(session, account)) == 1


class TestSignIn:
    def test_a_patient_s_passkey_is_high_with_no_identifier(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        patient_id, authenticator = patient_key
        options = json.loads(passkeys.authentication_options(rp=RP, challenge=b"c" * 32))
        assert options["allowCredentials"] == []
        assert options["userVerification"] == "required"
        clock.advance(dt.timedelta(minutes=1))
        principal = _sign_in(session, clock, authenticator)
        assert principal.kind is ActorKind.PATIENT
        assert principal.person_id == patient_id
        assert principal.assurance is Assurance.HIGH
        assert principal.methods == passkeys.DEVICE_BOUND
        passkey = session.scalar(select(PasskeyCredential))
        assert passkey is not None
        assert passkey.sign_count == 1
        assert passkey.last_used_at == clock.now()
        event = _passkey_events(session)[-1]
        assert (event.outcome, event.network_address) == (AuditOutcome.ALLOWED, "192.0.2.7")
        assert json.loads(event.details)["step"] == "sign-in"

    def test_a_professional_s_passkey_is_the_strong_level_for_documents(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_professional_login(session, clock, wrapper, card=False)
        authenticator = _authenticator(counter=None)
        account = passkeys.professional_account(session, login.professional.id)
        register(session, carnet, clock, account, authenticator)
        options = json.loads(
            passkeys.authentication_options(
                rp=RP, challenge=b"c" * 32, allowed=passkeys.list_passkeys(session, account)
            )
        )
        assert [unb64url(c["id"]) for c in options["allowCredentials"]] == [
            authenticator.credential_id
        ]
        # An authenticator without a counter (always 0) signs in again and again.
        for _ in range(2):
            principal = _sign_in(session, clock, authenticator)
        actor = Actor(kind=principal.kind, subject=principal.subject, assurance=principal.assurance)
        assert principal.professional_id == login.professional.id
        assert principal.assurance is Assurance.SUBSTANTIAL
        assert actor.is_strong

    def test_an_operator_signs_in_as_their_account_s_kind(
        self,
        session: Session,
        carnet: TokenAuthority,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        accounts.create_operator_account(
            session,
            name="claire",
            kind=ActorKind.SECURITY_OFFICER,
            password=PASSWORD,
            key_wrapper=wrapper,
            clock=clock,
        )
        actor = Actor(
            kind=ActorKind.SECURITY_OFFICER,
            subject="security-officer:claire",
            assurance=Assurance.SUBSTANTIAL,
        )
        authenticator = _authenticator()
        register(session, carnet, clock, passkeys.account_of(session, actor), authenticator)
        principal = _sign_in(session, clock, authenticator)
        assert (principal.kind, principal.subject) == (
            ActorKind.SECURITY_OFFICER,
            "security-officer:claire",
        )

    @pytest.mark.parametrize(
        "tamper",
        [
            {"origin": "https://phishing.example"},
            {"rp_id": "phishing.example"},
        ],
        ids=["wrong-origin", "wrong-rp-id"],
    )
    def test_refuses_another_site_s_answer(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
        tamper: dict[str, object],
    ) -> None:
        _, authenticator = patient_key
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, authenticator, **tamper)
        event = _passkey_events(session)[-1]
        assert event.outcome is AuditOutcome.DENIED
        assert "assertion refused" in (event.reason or "")

    def test_refuses_an_answer_to_another_challenge(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        _, authenticator = patient_key
        with pytest.raises(SignInRefused):
            passkeys.sign_in_with_passkey(
                session,
                rp=RP,
                response=authenticator.sign(b"a" * 32),
                challenge=b"b" * 32,
                clock=clock,
            )
        account = session.scalar(select(PatientAccount))
        assert account is not None
        assert account.failed_sign_ins == 1

    def test_refuses_a_counter_going_backwards_as_a_clone(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        _, authenticator = patient_key
        _sign_in(session, clock, authenticator, counter=10)
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, authenticator, counter=10)
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, authenticator, counter=3)
        assert "counter went backwards" in (_passkey_events(session)[-1].reason or "")
        passkey = session.scalar(select(PasskeyCredential))
        assert passkey is not None
        assert passkey.sign_count == 10
        _sign_in(session, clock, authenticator, counter=11)

    def test_refuses_an_unknown_passkey_and_audits_the_attempt(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, _authenticator())
        with pytest.raises(SignInRefused):
            passkeys.sign_in_with_passkey(
                session, rp=RP, response="not json", challenge=b"c", clock=clock
            )
        reasons = [event.reason for event in _passkey_events(session)[-2:]]
        assert reasons == ["unknown passkey", "unreadable passkey answer"]

    def test_a_removed_passkey_signs_in_no_more(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        patient_id, authenticator = patient_key
        account = passkeys.patient_account(session, patient_id)
        [passkey] = passkeys.list_passkeys(session, account)
        passkeys.remove_passkey(session, account, passkey.id, clock=clock)
        assert passkeys.list_passkeys(session, account) == []
        assert json.loads(_passkey_events(session)[-1].details)["step"] == "remove"
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, authenticator)

    def test_another_account_s_passkey_cannot_be_removed(
        self,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        patient_id, _ = patient_key
        [passkey] = passkeys.list_passkeys(session, passkeys.patient_account(session, patient_id))
        other = make_patient_login(session, clock, wrapper)
        with pytest.raises(PasskeyRefused):
            passkeys.remove_passkey(
                session,
                passkeys.patient_account(session, other.patient.id),
                passkey.id,
                clock=clock,
            )
        assert session.get(PasskeyCredential, passkey.id) is not None

    def test_failures_lock_the_account_as_for_passwords(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        _, authenticator = patient_key
        for _ in range(accounts.MAX_FAILED_SIGN_INS):
            with pytest.raises(SignInRefused):
                _sign_in(session, clock, authenticator, origin="https://phishing.example")
        # Locked: even a good answer is refused, until the lock ends.
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, authenticator)
        assert _passkey_events(session)[-1].reason == "account locked"
        clock.advance(accounts.LOCK_DURATION + dt.timedelta(seconds=1))
        assert _sign_in(session, clock, authenticator).assurance is Assurance.HIGH

    def test_refuses_an_authenticator_that_did_not_verify_the_user(
        self,
        session: Session,
        clock: FrozenClock,
        patient_key: tuple[uuid.UUID, SoftAuthenticator],
    ) -> None:
        _, authenticator = patient_key
        authenticator.user_verified = False
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, authenticator)
