"""Verified tokens are remembered until they expire: the signature is checked once per worker.

Expiry and revocation are still checked on every use; only the signature check is saved.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.auth import grants, tokens
from carnet.auth.errors import InvalidToken
from carnet.auth.verified import VerifiedTokens
from carnet.clock import FrozenClock
from carnet.storage import MasterKeyWrapper
from factories.auth import authority
from factories.patients import make_patient


@pytest.fixture
def issuer(wrapper: MasterKeyWrapper) -> tokens.TokenAuthority:
    return authority(wrapper)


def _token(session: Session, issuer: tokens.TokenAuthority, clock: FrozenClock) -> str:
    patient = make_patient(session, clock)
    return grants.mint_token(
        session,
        issuer,
        as_=f"patient:{patient.identifiers[0].value}",
        assurance=Assurance.SUBSTANTIAL,
        scope="patient/*.rs",
        lifetime=None,
        clock=clock,
    ).token


def _count_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    verified: list[str] = []
    verify = tokens.verify_signed

    def counted(*args: object, **kwargs: object) -> dict[str, object]:
        verified.append("once")
        return verify(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens, "verify_signed", counted)
    return verified


def test_a_token_is_verified_once_then_recognised(
    session: Session,
    clock: FrozenClock,
    issuer: tokens.TokenAuthority,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = _token(session, issuer, clock)
    verified = _count_verifications(monkeypatch)
    first = tokens.authenticate(session, issuer, token, clock=clock)
    again = tokens.authenticate(session, issuer, token, clock=clock)
    assert first == again
    assert first.kind is ActorKind.PATIENT
    assert verified == ["once"]


def test_a_remembered_token_still_expires(
    session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority
) -> None:
    token = _token(session, issuer, clock)
    tokens.authenticate(session, issuer, token, clock=clock)
    clock.advance(issuer.config.access_token_lifetime + dt.timedelta(minutes=5))
    with pytest.raises(InvalidToken):
        tokens.authenticate(session, issuer, token, clock=clock)
    assert len(issuer.verified) == 0


def test_a_remembered_token_is_still_refused_once_revoked(
    session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority
) -> None:
    token = _token(session, issuer, clock)
    actor = tokens.authenticate(session, issuer, token, clock=clock)
    assert actor.token_id is not None
    grants.revoke_access_token(
        session, jti=actor.token_id, expires_at=clock.now() + dt.timedelta(hours=1), clock=clock
    )
    issuer.revocations.mark_stale()
    with pytest.raises(InvalidToken) as refused:
        tokens.authenticate(session, issuer, token, clock=clock)
    assert refused.value.detail == "revoked"


def test_a_forged_variant_of_a_remembered_token_is_verified_and_refused(
    session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority
) -> None:
    token = _token(session, issuer, clock)
    tokens.authenticate(session, issuer, token, clock=clock)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidToken):
        tokens.authenticate(session, issuer, forged, clock=clock)


def test_the_least_recently_used_token_goes_first() -> None:
    now = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    later = now + dt.timedelta(minutes=5)
    kept = VerifiedTokens(max_entries=2)
    actors = {
        name: Actor(kind=ActorKind.PATIENT, subject=name, assurance=Assurance.SUBSTANTIAL)
        for name in "abc"
    }
    kept.keep("a", actors["a"], expires_at=later)
    kept.keep("b", actors["b"], expires_at=later)
    assert kept.actor("a", now=now) == actors["a"]  # a is now the most recent
    kept.keep("c", actors["c"], expires_at=later)
    assert kept.actor("b", now=now) is None
    assert kept.actor("a", now=now) == actors["a"]
    assert kept.actor("c", now=now) == actors["c"]


def test_memory_answers_for_a_remembered_token_only_while_its_revocation_list_is_fresh(
    session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> None:
    """``remembered``: what the event loop answers without a database; None sends it there."""
    issuer = authority(wrapper, revocation_refresh_seconds=60)
    token = _token(session, issuer, clock)
    assert tokens.remembered(issuer, token, clock=clock) is None  # never verified here
    actor = tokens.authenticate(session, issuer, token, clock=clock)
    assert tokens.remembered(issuer, token, clock=clock) == actor
    issuer.revocations.mark_stale()
    assert tokens.remembered(issuer, token, clock=clock) is None
    # With no refresh interval, the table is asked at every request: memory never answers.
    every_time = authority(wrapper, revocation_refresh_seconds=0)
    token = _token(session, every_time, clock)
    tokens.authenticate(session, every_time, token, clock=clock)
    assert tokens.remembered(every_time, token, clock=clock) is None


def test_memory_refuses_a_token_its_fresh_revocation_list_names(
    session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> None:
    issuer = authority(wrapper, revocation_refresh_seconds=60)
    token = _token(session, issuer, clock)
    actor = tokens.authenticate(session, issuer, token, clock=clock)
    assert actor.token_id is not None
    grants.revoke_access_token(
        session, jti=actor.token_id, expires_at=clock.now() + dt.timedelta(hours=1), clock=clock
    )
    issuer.revocations.reload(session, now=clock.now())
    with pytest.raises(InvalidToken) as refused:
        tokens.remembered(issuer, token, clock=clock)
    assert refused.value.detail == "revoked"
