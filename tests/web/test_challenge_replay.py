"""The sign-in ticket's challenge is answered once: a card signature or passkey assertion
replayed with the same ticket is refused, and a failed try gets a fresh challenge.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from carnet.auth import passkeys
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
from factories.passkeys import SoftAuthenticator, embedded_options, register, unb64url

RP = passkeys.RelyingParty.from_public_url(PUBLIC_URL)


def _card_fields(page: str, card: cards.Card) -> dict[str, str]:
    """The card agent's answer to ``page``, with the page's sign-in ticket."""
    return {"ticket": ticket_of(page), **cards.agent_fields(page, card)}


def _passkey_challenge(page: str) -> bytes:
    return unb64url(str(embedded_options(page, "passkey-request")["challenge"]))


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
        cards.trust(session, issuer, clock)
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
        cards.trust(session, issuer, clock, with_crl=False)
        with serve(session, store, clock, wrapper, demo_idp=False) as served:
            _, challenge = pkce()
            params = authorize_params(app.client_id, challenge, scope="openid fhirUser user/*.rs")
            page = served.client.get("/oauth/authorize", params=params).text
            fields = _card_fields(page, card)
            refused = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
            assert refused.status_code == 401
            replayed = served.client.post("/oauth/authorize", data=fields, follow_redirects=False)
            assert replayed.status_code == 400
            cards.publish_crl(session, issuer, clock, name="Test card authority")
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
        register(session, carnet, clock, account, authenticator, binding="b")
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
