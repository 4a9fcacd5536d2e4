"""Card sign-in against registered card authorities: chain, dates, key usage, CRL, identifier.

Certificates are built by the tests (``factories.cards``); each refusal names its rule.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Assurance
from carnet.audit.models import AuditAction, AuditEvent
from carnet.auth import card_authorities, sign_in
from carnet.auth.card import CardRefusal, CardResponse
from carnet.auth.errors import CardRefused, InvalidCardAuthority, UnknownSubject
from carnet.clock import FrozenClock
from carnet.directory.models import Professional
from factories import cards
from factories.cards import OPERATOR
from factories.directory import make_professional

CHALLENGE = b"server-challenge-0123456789abcdef"


@pytest.fixture
def doctor(session: Session, clock: FrozenClock) -> Professional:
    return make_professional(session, clock)


@pytest.fixture
def national(session: Session, clock: FrozenClock) -> cards.Authority:
    """A national card authority, trusted with its CRL."""
    authority = cards.root("IGC-Sante test root", clock.now())
    cards.trust(session, authority, clock)
    return authority


def _sign_in(session: Session, clock: FrozenClock, response: CardResponse) -> Professional:
    principal = sign_in.sign_in_with_card(
        session, response=response, challenge=CHALLENGE, clock=clock
    )
    assert principal.assurance is Assurance.HIGH
    found = session.get(Professional, principal.professional_id)
    assert found is not None
    return found


def _refusal(session: Session, clock: FrozenClock, response: CardResponse) -> str:
    with pytest.raises(CardRefused) as refused:
        sign_in.sign_in_with_card(session, response=response, challenge=CHALLENGE, clock=clock)
    return refused.value.reason


class TestCardSignIn:
    def test_a_card_of_a_trusted_authority_signs_in(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now())
        assert _sign_in(session, clock, card.answer(CHALLENGE)).id == doctor.id

    def test_a_card_of_an_intermediate_authority_signs_in_with_its_chain(
        self, session: Session, clock: FrozenClock, doctor: Professional
    ) -> None:
        root = cards.root("Root", clock.now())
        middle = cards.intermediate(root, "Cards CA", clock.now())
        # The authority's CRL and its intermediate's, registered together.
        card_authorities.trust(
            session,
            certificate_pem=root.pem,
            crl=root.crl(clock.now()) + middle.crl(clock.now()),
            agent=OPERATOR,
            clock=clock,
        )
        card = cards.issue(middle, doctor, clock.now(), chain=(middle,))
        assert _sign_in(session, clock, card.answer(CHALLENGE)).id == doctor.id
        # Without the intermediate, there is no path to the trusted authority.
        alone = cards.Card(card.certificate, card.key)
        assert _refusal(session, clock, alone.answer(CHALLENGE)) == CardRefusal.UNTRUSTED

    def test_an_expired_card_is_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        now = clock.now()
        card = cards.issue(national, doctor, now, not_before=now - 30 * cards.DAY, not_after=now)
        clock.advance(dt.timedelta(seconds=1))
        assert _refusal(session, clock, card.answer(CHALLENGE)) == CardRefusal.EXPIRED

    def test_a_card_not_yet_valid_is_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now(), not_before=clock.now() + cards.DAY)
        assert _refusal(session, clock, card.answer(CHALLENGE)) == CardRefusal.NOT_YET_VALID

    def test_a_card_revoked_by_the_crl_is_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now())
        assert _sign_in(session, clock, card.answer(CHALLENGE)).id == doctor.id
        national.revoked.append(card.certificate.serial_number)
        cards.publish_crl(session, national, clock, name="IGC-Sante test root")
        assert _refusal(session, clock, card.answer(CHALLENGE)) == CardRefusal.REVOKED

    def test_an_outdated_crl_refuses_every_card(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now())
        clock.advance(8 * cards.DAY)  # past the CRL's nextUpdate, the card still valid
        assert _refusal(session, clock, card.answer(CHALLENGE)) == (
            CardRefusal.REVOCATION_LIST_EXPIRED
        )

    def test_an_authority_without_a_crl_refuses_its_cards(
        self, session: Session, clock: FrozenClock, doctor: Professional
    ) -> None:
        authority = cards.root("No CRL yet", clock.now())
        cards.trust(session, authority, clock, with_crl=False)
        card = cards.issue(authority, doctor, clock.now())
        assert _refusal(session, clock, card.answer(CHALLENGE)) == (CardRefusal.NO_REVOCATION_LIST)

    def test_a_card_of_another_authority_is_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        # Same name as the trusted authority, another key: the signature gives it away.
        rogue = cards.root("IGC-Sante test root", clock.now())
        card = cards.issue(rogue, doctor, clock.now())
        assert _refusal(session, clock, card.answer(CHALLENGE)) == CardRefusal.UNTRUSTED

    def test_a_signature_of_another_challenge_is_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now())
        answer = card.answer(b"a previous challenge")
        assert _refusal(session, clock, answer) == CardRefusal.WRONG_SIGNATURE

    def test_a_certificate_without_digital_signature_usage_is_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now(), signing=False)
        assert _refusal(session, clock, card.answer(CHALLENGE)) == CardRefusal.KEY_USAGE

    def test_a_card_naming_nobody_in_the_directory_is_refused(
        self, session: Session, clock: FrozenClock, national: cards.Authority
    ) -> None:
        stranger = Professional(
            identifier_system="urn:oid:1.2.250.1.71.4.2.1",
            identifier_value="10000000000",
            family="Nobody",
            given="Anne",
        )
        card = cards.issue(national, stranger, clock.now())
        assert _refusal(session, clock, card.answer(CHALLENGE)) == (
            CardRefusal.UNKNOWN_PROFESSIONAL
        )

    def test_garbage_is_unreadable(
        self, session: Session, clock: FrozenClock, national: cards.Authority
    ) -> None:
        answer = CardResponse(b"not a certificate", b"signature")
        assert _refusal(session, clock, answer) == CardRefusal.UNREADABLE


class TestCardAuthorities:
    def test_trusting_is_audited_and_listed(
        self, session: Session, clock: FrozenClock, national: cards.Authority
    ) -> None:
        (summary,) = card_authorities.summaries(session)
        assert summary.name == "IGC-Sante test root"
        assert summary.crl_count == 1
        assert summary.crl_next_update == clock.now() + 7 * cards.DAY
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.agent_subject == OPERATOR.subject)
        ).all()
        assert [(event.action, event.reason) for event in events] == [
            (AuditAction.GRANT, "card authority trusted")
        ]

    def test_a_card_certificate_is_not_an_authority(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now())
        with pytest.raises(InvalidCardAuthority, match="not a certification authority"):
            card_authorities.trust(
                session,
                certificate_pem=card.certificate.public_bytes(serialization.Encoding.PEM),
                agent=OPERATOR,
                clock=clock,
            )

    def test_the_same_authority_is_trusted_once(
        self, session: Session, clock: FrozenClock, national: cards.Authority
    ) -> None:
        with pytest.raises(InvalidCardAuthority, match="already trusted"):
            card_authorities.trust(
                session, certificate_pem=national.pem, name="Again", agent=OPERATOR, clock=clock
            )

    def test_an_outdated_or_forged_crl_is_refused(
        self, session: Session, clock: FrozenClock, national: cards.Authority
    ) -> None:
        with pytest.raises(InvalidCardAuthority, match="out of date"):
            card_authorities.update_crl(
                session,
                name="IGC-Sante test root",
                crl=national.crl(clock.now(), next_update=clock.now() - cards.DAY),
                agent=OPERATOR,
                clock=clock,
            )
        forger = cards.root("IGC-Sante test root", clock.now())
        with pytest.raises(InvalidCardAuthority, match="signature"):
            card_authorities.update_crl(
                session,
                name="IGC-Sante test root",
                crl=forger.crl(clock.now()),
                agent=OPERATOR,
                clock=clock,
            )

    def test_a_distrusted_authority_s_cards_are_refused(
        self,
        session: Session,
        clock: FrozenClock,
        doctor: Professional,
        national: cards.Authority,
    ) -> None:
        card = cards.issue(national, doctor, clock.now())
        card_authorities.distrust(session, name="IGC-Sante test root", agent=OPERATOR, clock=clock)
        assert not card_authorities.any_trusted(session)
        assert _refusal(session, clock, card.answer(CHALLENGE)) == CardRefusal.UNTRUSTED
        with pytest.raises(UnknownSubject):
            card_authorities.distrust(
                session, name="IGC-Sante test root", agent=OPERATOR, clock=clock
            )
