"""Access tokens and signing keys: claims, actor mapping, verification, rotation."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind, Assurance
from carnet.access.scopes import parse_scope
from carnet.auth import grants, keys, tokens
from carnet.auth.errors import (
    DemoIdentityProviderDisabled,
    InvalidRequest,
    InvalidToken,
    UnknownSubject,
)
from carnet.auth.models import SigningKey
from carnet.clock import FrozenClock
from carnet.storage import MasterKeyWrapper
from factories.auth import authority, make_backend, make_professional_login
from factories.patients import make_patient


@pytest.fixture
def issuer(wrapper: MasterKeyWrapper) -> tokens.TokenAuthority:
    return authority(wrapper)


class TestIssue:
    def test_a_patient_token_carries_the_smart_and_carnet_claims(
        self, session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority
    ) -> None:
        patient = make_patient(session, clock)
        issued = grants.mint_token(
            session,
            issuer,
            as_=f"patient:{patient.identifiers[0].value}",
            assurance=Assurance.SUBSTANTIAL,
            scope="patient/*.rs openid",
            lifetime=None,
            clock=clock,
        )
        header = jwt.decode(
            issued.token, issuer.keys.signing_key(session, clock), algorithms=["ES256"]
        ).header
        assert header["alg"] == "ES256"
        assert header["typ"] == "at+jwt"
        assert header["kid"] == issuer.keys.signing_key(session, clock).kid
        now = int(clock.now().timestamp())
        assert issued.claims == {
            "iss": "http://testserver",
            "aud": "http://testserver/fhir",
            "sub": str(patient.id),
            "client_id": "carnet-cli",
            "scope": "openid patient/*.rs",
            "jti": issued.jti,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "acr": "urn:carnet:loa:substantial",
            "amr": ["pwd", "otp", "mfa"],
            "auth_time": now,
            "fhirUser": f"Patient/{patient.id}",
            "carnet_kind": "patient",
        }

    def test_the_lifetime_is_configurable(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        patient = make_patient(session, clock)
        issued = grants.mint_token(
            session,
            authority(wrapper, access_token_seconds=120),
            as_=f"patient:{patient.identifiers[0].value}",
            assurance=Assurance.LOW,
            scope=None,
            lifetime=None,
            clock=clock,
        )
        assert issued.expires_at == clock.now() + dt.timedelta(seconds=120)

    def test_minting_needs_the_demo_identity_provider(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        with pytest.raises(DemoIdentityProviderDisabled):
            grants.mint_token(
                session,
                authority(wrapper, demo_idp=False),
                as_="operator:alice",
                assurance=Assurance.HIGH,
                scope=None,
                lifetime=None,
                clock=clock,
            )

    @pytest.mark.parametrize("as_", ["patient:1980051700000", "nobody:x", "professional:"])
    def test_unknown_subjects_are_refused(
        self, session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority, as_: str
    ) -> None:
        with pytest.raises((UnknownSubject, InvalidRequest)):
            grants.mint_token(
                session,
                issuer,
                as_=as_,
                assurance=Assurance.LOW,
                scope=None,
                lifetime=None,
                clock=clock,
            )


class TestActors:
    def test_a_professional_token_becomes_a_professional_actor(
        self,
        session: Session,
        clock: FrozenClock,
        issuer: tokens.TokenAuthority,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_professional_login(session, clock, wrapper, card=False)
        issued = grants.mint_token(
            session,
            issuer,
            as_=f"professional:{login.identifier}",
            assurance=Assurance.HIGH,
            scope="user/*.rs",
            lifetime=None,
            clock=clock,
        )
        actor = tokens.authenticate(session, issuer, issued.token, clock=clock)
        assert actor.kind is ActorKind.PROFESSIONAL
        assert actor.professional_id == login.professional.id
        assert actor.organisation_id == login.professional.organisation_id
        assert actor.profession == "general-practitioner"
        assert actor.assurance is Assurance.HIGH
        assert actor.scopes == frozenset({parse_scope("user/*.rs")})
        assert actor.token_id == issued.jti
        assert actor.is_strong

    def test_a_feeding_system_token_names_its_organisation_and_client(
        self, session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority
    ) -> None:
        backend = make_backend(session, clock)
        issued = grants.mint_token(
            session,
            issuer,
            as_=f"system:{backend.organisation.identifier_value}",
            assurance=Assurance.HIGH,
            scope=None,
            lifetime=None,
            clock=clock,
        )
        actor = tokens.authenticate(session, issuer, issued.token, clock=clock)
        assert actor.kind is ActorKind.FEEDING_SYSTEM
        assert actor.organisation_id == backend.organisation.id
        assert actor.client_id == backend.client.client_id

    @pytest.mark.parametrize("kind", [ActorKind.OPERATOR, ActorKind.SECURITY_OFFICER])
    def test_operators_need_no_account(
        self,
        session: Session,
        clock: FrozenClock,
        issuer: tokens.TokenAuthority,
        kind: ActorKind,
    ) -> None:
        issued = grants.mint_token(
            session,
            issuer,
            as_=f"{kind.value}:alice",
            assurance=Assurance.HIGH,
            scope=None,
            lifetime=None,
            clock=clock,
        )
        actor = tokens.authenticate(session, issuer, issued.token, clock=clock)
        assert actor.kind is kind
        # Named as the audit trail names operators everywhere else (the CLI, signed-in ones).
        assert actor.subject == f"{kind.value}:alice"

    @pytest.mark.parametrize(
        "claims",
        [
            {"sub": "x", "jti": "j"},
            {"carnet_kind": "wizard", "sub": "x", "jti": "j"},
            {"carnet_kind": "patient", "sub": "not-a-uuid", "jti": "j"},
            {"carnet_kind": "operator", "sub": "x", "jti": "j", "scope": "bad scope"},
        ],
    )
    def test_claims_that_describe_no_actor_are_invalid(self, claims: dict[str, str]) -> None:
        with pytest.raises(InvalidToken):
            tokens.actor_from_claims(claims)

    def test_a_patient_acts_for_themselves(self) -> None:
        patient_id = uuid.uuid4()
        actor = tokens.actor_from_claims(
            {"carnet_kind": "patient", "sub": str(patient_id), "jti": "j", "acr": "x"}
        )
        assert actor.person_id == actor.acting_for == patient_id
        assert actor.assurance is Assurance.LOW  # an unknown acr counts as low

    def test_oversized_tokens_are_refused_unparsed(
        self, session: Session, clock: FrozenClock, issuer: tokens.TokenAuthority
    ) -> None:
        with pytest.raises(InvalidToken):
            tokens.authenticate(session, issuer, "a." * 5000 + "b", clock=clock)


class TestKeys:
    def test_private_keys_are_sealed(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        row = keys.create_signing_key(session, key_wrapper=wrapper, clock=clock)
        assert row.kid == ECKey.import_key(row.public_jwk).thumbprint()
        assert "d" not in row.public_jwk
        assert b'"d"' not in row.sealed_private_key

    def test_rotation_retires_the_old_key_after_the_overlap(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        old = keys.create_signing_key(session, key_wrapper=wrapper, clock=clock)
        clock.advance(dt.timedelta(seconds=1))
        new = keys.rotate_signing_key(
            session, key_wrapper=wrapper, clock=clock, overlap=dt.timedelta(minutes=6)
        )
        assert old.retired_at == clock.now()
        assert old.expires_at == clock.now() + dt.timedelta(minutes=6)
        assert [row.kid for row in keys.published_keys(session, clock)] == [new.kid, old.kid]
        clock.advance(dt.timedelta(minutes=6))
        assert [row.kid for row in keys.published_keys(session, clock)] == [new.kid]
        assert session.get(SigningKey, old.kid) is not None  # kept, no longer published

    def test_the_newest_active_key_signs(
        self, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        ring = keys.KeyRing(wrapper)
        first = ring.signing_key(session, clock)
        assert ring.signing_key(session, clock).kid == first.kid
        new = keys.rotate_signing_key(
            session, key_wrapper=wrapper, clock=clock, overlap=dt.timedelta(minutes=6)
        )
        assert ring.signing_key(session, clock).kid == new.kid
        assert ring.verification_key(session, str(first.kid), clock) is not None

    def test_a_key_ring_without_a_master_key_cannot_sign(
        self, session: Session, clock: FrozenClock
    ) -> None:
        with pytest.raises(RuntimeError, match="master key"):
            keys.KeyRing(None).signing_key(session, clock)

    def test_the_default_overlap_covers_every_token_carnet_signs(
        self, issuer: tokens.TokenAuthority
    ) -> None:
        assert issuer.config.key_overlap > issuer.config.access_token_lifetime
        assert issuer.config.key_overlap > dt.timedelta(seconds=tokens.LOGIN_TICKET_SECONDS)
