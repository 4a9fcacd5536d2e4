"""Agency accounts: operators and security officers sign in with password and one-time code."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.auth import accounts, sign_in
from carnet.auth.errors import InvalidGrant, InvalidRequest, SignInRefused
from carnet.auth.models import OperatorAccount
from carnet.auth.tokens import Principal
from carnet.clock import FrozenClock
from carnet.demo import accounts as demo_accounts
from carnet.storage import MasterKeyWrapper
from factories.auth import PASSWORD, code_now


def _operator(
    session: Session,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    name: str = "jdupont",
    kind: ActorKind = ActorKind.OPERATOR,
) -> pyotp.TOTP:
    secret = accounts.create_operator_account(
        session, name=name, kind=kind, password=PASSWORD, key_wrapper=wrapper, clock=clock
    )
    return pyotp.TOTP(secret)


def _sign_in(
    session: Session,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    *,
    name: str = "jdupont",
    password: str = PASSWORD,
    otp: str | None,
) -> Principal:
    return sign_in.sign_in_with_password(
        session,
        kind=ActorKind.OPERATOR,
        identifier=name,
        password=password,
        otp=otp,
        key_wrapper=wrapper,
        clock=clock,
    )


def _account(session: Session, name: str = "jdupont") -> OperatorAccount:
    account = session.scalar(select(OperatorAccount).where(OperatorAccount.name == name))
    assert account is not None
    return account


class TestSignIn:
    def test_password_and_one_time_code_is_substantial_and_named_as_the_audit_names_them(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator(session, clock, wrapper)
        principal = _sign_in(session, clock, wrapper, name="JDupont ", otp=code_now(totp, clock))
        assert principal.kind is ActorKind.OPERATOR
        assert principal.subject == "operator:jdupont"
        assert principal.assurance is Assurance.SUBSTANTIAL
        assert principal.methods == sign_in.PASSWORD_AND_OTP
        assert _account(session).last_sign_in_at == clock.now()

    def test_the_password_alone_is_refused_and_counts_as_a_failure(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _operator(session, clock, wrapper)
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, wrapper, otp=None)
        assert _account(session).failed_sign_ins == 1

    def test_a_wrong_code_is_refused(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator(session, clock, wrapper)
        wrong = f"{(int(code_now(totp, clock)) + 1) % 1_000_000:06d}"
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, wrapper, otp=wrong)

    def test_five_failures_lock_the_account_for_fifteen_minutes(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator(session, clock, wrapper)
        for _ in range(accounts.MAX_FAILED_SIGN_INS):
            with pytest.raises(SignInRefused):
                _sign_in(session, clock, wrapper, password="wrong", otp=code_now(totp, clock))
        assert _account(session).locked_until == clock.now() + accounts.LOCK_DURATION
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, wrapper, otp=code_now(totp, clock))  # right, still locked
        clock.advance(accounts.LOCK_DURATION)
        assert _sign_in(session, clock, wrapper, otp=code_now(totp, clock)).kind is (
            ActorKind.OPERATOR
        )

    def test_an_unknown_or_deactivated_name_is_refused_like_a_wrong_password(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator(session, clock, wrapper)
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, wrapper, name="nobody", otp=code_now(totp, clock))
        _account(session).active = False
        with pytest.raises(SignInRefused):
            _sign_in(session, clock, wrapper, otp=code_now(totp, clock))

    def test_a_security_officer_signs_in_on_the_same_form_as_one(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator(session, clock, wrapper, name="officer", kind=ActorKind.SECURITY_OFFICER)
        principal = _sign_in(session, clock, wrapper, name="officer", otp=code_now(totp, clock))
        assert principal.kind is ActorKind.SECURITY_OFFICER
        assert principal.subject == "security-officer:officer"

    def test_a_deactivated_account_keeps_no_session(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _operator(session, clock, wrapper)
        account = _account(session)
        account.active = False
        with pytest.raises(InvalidGrant):
            sign_in.principal_for(
                session,
                ActorKind.OPERATOR,
                account.id,
                assurance=Assurance.SUBSTANTIAL,
                methods=sign_in.PASSWORD_AND_OTP,
            )


class TestAccounts:
    def test_secrets_are_stored_sealed_and_hashed(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        totp = _operator(session, clock, wrapper)
        account = _account(session)
        assert account.kind is ActorKind.OPERATOR
        assert totp.secret.encode() not in account.totp_secret_sealed
        assert PASSWORD not in account.password_hash

    @pytest.mark.parametrize(
        ("name", "password", "kind", "field"),
        [
            ("x", PASSWORD, ActorKind.OPERATOR, "name"),
            ("jean dupont", PASSWORD, ActorKind.OPERATOR, "name"),
            ("jdupont", "short", ActorKind.OPERATOR, "password"),
            ("jdupont", PASSWORD, ActorKind.PROFESSIONAL, "kind"),
        ],
    )
    def test_bad_names_kinds_and_short_passwords_are_refused(
        self,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        name: str,
        password: str,
        kind: ActorKind,
        field: str,
    ) -> None:
        with pytest.raises(InvalidRequest) as refused:
            accounts.create_operator_account(
                session, name=name, kind=kind, password=password, key_wrapper=wrapper, clock=clock
            )
        assert refused.value.field == field

    def test_a_name_is_taken_once(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _operator(session, clock, wrapper)
        with pytest.raises(accounts.DuplicateAccount):
            _operator(session, clock, wrapper, name="JDUPONT")

    def test_the_provisioning_uri_enrols_the_same_secret(self) -> None:
        secret = pyotp.random_base32()
        uri = accounts.totp_provisioning_uri(secret, name="jdupont")
        assert uri.startswith("otpauth://totp/Carnet:jdupont?")
        assert pyotp.parse_uri(uri).secret == secret


class TestDemo:
    def test_the_demo_agency_operator_signs_in_with_the_documented_credentials(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        assert demo_accounts.provision_demo_accounts(session, key_wrapper=wrapper, clock=clock) == 1
        assert demo_accounts.provision_demo_accounts(session, key_wrapper=wrapper, clock=clock) == 0
        code = accounts.current_otp(
            session,
            as_=f"operator:{demo_accounts.DEMO_OPERATOR}",
            key_wrapper=wrapper,
            clock=clock,
            demo_idp=True,
        )
        assert code == pyotp.TOTP(demo_accounts.demo_totp_secret(demo_accounts.DEMO_OPERATOR)).at(
            clock.now()
        )
        principal = _sign_in(
            session,
            clock,
            wrapper,
            name=demo_accounts.DEMO_OPERATOR,
            password=demo_accounts.DEMO_PASSWORD,
            otp=code,
        )
        assert principal.subject == "operator:agency"


class TestMintedTokens:
    @pytest.mark.parametrize("kind", [ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER])
    def test_a_minted_operator_is_named_like_a_signed_in_one(
        self, session: Session, clock: FrozenClock, kind: ActorKind
    ) -> None:
        principal, _client = sign_in.principal_for_spec(
            session, f"{kind.value}:Alice", assurance=Assurance.HIGH, clock=clock
        )
        assert principal.kind is kind
        assert principal.subject == f"{kind.value}:alice"
