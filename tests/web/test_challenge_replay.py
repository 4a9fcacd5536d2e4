"""The sign-in ticket's challenge is answered once: a card signature or passkey assertion
replayed with the same ticket is refused, and a failed try gets a fresh challenge.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from carnet.audit.service import Agent
from carnet.auth import card_authorities, passkeys
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories import cards
from factories.auth import (
    PUBLIC_URL,
    authority,
    authorize_params,
    make_app,
    make_patient_login,
    pkce,
    serve,
    ticket_of,
)
from factories.directory import make_professional
from factories.passkeys import SoftAuthenticator

OPERATOR = Agent(kind="operator", subject="operator:test")
RP = passkeys.RelyingParty.from_public_url(PUBLIC_URL)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _card_fields(page: str, card: cards.Card) -> dict[str, str]:
    found = re.search(r'data-card-challenge="([^"]+)"', page)
    assert found is not None
    answer = card.answer(base64.urlsafe_b64decode(found.group(1) + "=="))
    chain = (card.certificate, *card.chain)
    return {
        "ticket": ticket_of(page),
        "method": "card",
        "certificate": ".".join(_b64(c.public_bytes(serialization.Encoding.DER)) for c in chain),
        "signature": _b64(answer.signature),
    }


def _passkey_challenge(page: str) -> bytes:
    found = re.search(r'<script type="application/json" id="passkey-request">(.*?)</script>', page)
    assert found is not None
    options: dict[str, Any] = json.loads(found.group(1))
    return base64.urlsafe_b64decode(str(options["challenge"]) + "==")


class TestCardChallenge:
    def test_a_card_answer_sent_again_with_the_same_ticket_is_refused(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        doctor = make_professional(session, clock)
        issuer = cards.root("Test card authority", clock.now())
        card = cards.issue(issuer, doctor, clock.now())
        card_authorities.trust(
            session,
            certificate_pem=issuer.pem,
            crl=issuer.crl(clock.now()),
            agent=OPERATOR,
            clock=clock,
        )
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            params = authorize_params(app.client_id, challenge, scope="openid fhirUser user/*.rs")
            page = served.client.get("/oauth/authorize", params=params).text
            fields = _card_fields(page, card)
            first = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
            assert first.status_code in (200, 303), first.text
            replayed = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
        assert replayed.status_code == 400
        assert "location" not in replayed.headers

    def test_a_refused_card_answer_is_spent_and_the_form_comes_back_with_a_new_challenge(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        doctor = make_professional(session, clock)
        issuer = cards.root("Test card authority", clock.now())
        card = cards.issue(issuer, doctor, clock.now())
        # Trusted, but no CRL yet: the card is refused (fail closed), its answer spent.
        card_authorities.trust(
            session, certificate_pem=issuer.pem, crl=None, agent=OPERATOR, clock=clock
        )
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            params = authorize_params(app.client_id, challenge, scope="openid fhirUser user/*.rs")
            page = served.client.get("/oauth/authorize", params=params).text
            fields = _card_fields(page, card)
            refused = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
            assert refused.status_code == 401
            replayed = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
            assert replayed.status_code == 400
            card_authorities.update_crl(
                session,
                name="Test card authority",
                crl=issuer.crl(clock.now()),
                agent=OPERATOR,
                clock=clock,
            )
            # The page shown after the refusal carries a fresh ticket and challenge: it works.
            assert ticket_of(refused.text) != fields["ticket"]
            retried = served.client.post(
                "/oauth/authorize",
                data=_card_fields(refused.text, card),
                follow_redirects=False,
            )
        assert retried.status_code in (200, 303), retried.text


class TestPasskeyChallenge:
    def test_a_passkey_assertion_sent_again_with_the_same_ticket_is_refused(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        app = make_app(session, clock)
        login = make_patient_login(session, clock, wrapper)
        # A synced passkey keeps no counter: only the spent challenge stops a replay.
        authenticator = SoftAuthenticator(rp_id=RP.id, origin=RP.origin, counter=None)
        carnet = authority(wrapper)
        account = passkeys.patient_account(session, login.patient.id)
        ceremony = passkeys.begin_registration(session, carnet, account, binding="b", clock=clock)
        passkeys.finish_registration(
            session,
            carnet,
            state=ceremony.state,
            response=authenticator.register(ceremony.options_json),
            name="phone",
            binding="b",
            clock=clock,
        )
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            page = served.client.get(
                "/oauth/authorize", params=authorize_params(app.client_id, challenge)
            ).text
            fields = {
                "ticket": ticket_of(page),
                "method": "passkey",
                "credential": authenticator.sign(_passkey_challenge(page)),
            }
            first = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
            assert first.status_code in (200, 303), first.text
            replayed = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
        assert replayed.status_code == 400
        assert "location" not in replayed.headers
