"""IHE XUA (ITI-40): SAML assertions in the WS-Security header become Carnet actors.

The identity provider's key and certificate are made with ``cryptography`` and its assertions
signed with signxml (tests/factories/xua.py), as a national provider's would be.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy.orm import Session

from carnet.access import purposes, rules
from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.directory.models import Professional
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore
from carnet.xds import mapping
from carnet.xds import vocabulary as v
from carnet.xds.xua import AssertionRefused, XuaTrust, actor_from_assertion
from factories.actors import patient_actor, professional_actor
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient
from factories.xds_query import APPROVED, FIND_DOCUMENTS, adhoc, ask, patient_cx
from factories.xua import (
    PASSWORD_AUTHN,
    IdentityProvider,
    assertion,
    identity_provider,
    security_header,
)

RPPS = "1.2.250.1.71.4.2.1"


@pytest.fixture(scope="module")
def idp() -> IdentityProvider:
    return identity_provider(dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC))


@pytest.fixture
def doctor(session: Session, clock: FrozenClock) -> Professional:
    return make_professional(session, clock, family="Lefebvre")


def _actor(
    session: Session, clock: FrozenClock, idp: IdentityProvider, element: etree._Element
) -> Actor:
    return actor_from_assertion(
        session,
        security_header(element),
        trust=idp.trust(),
        clock=clock,
        network_address="10.0.0.7",
    )


class TestProfessionals:
    def test_a_signed_assertion_names_a_professional_of_the_directory(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider, doctor: Professional
    ) -> None:
        signed = assertion(
            idp, clock.now(), subject=doctor.identifier_value, qualifier=RPPS, role="HCP"
        )
        actor = _actor(session, clock, idp, signed)
        assert actor.kind is ActorKind.PROFESSIONAL
        assert actor.professional_id == doctor.id
        assert actor.assurance is Assurance.HIGH
        assert actor.network_address == "10.0.0.7"
        assert actor.token_id == signed.get("ID")

    def test_the_french_national_identifier_8_plus_rpps(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider, doctor: Professional
    ) -> None:
        signed = assertion(
            idp, clock.now(), subject="8" + doctor.identifier_value, qualifier=f"urn:oid:{RPPS}"
        )
        assert _actor(session, clock, idp, signed).professional_id == doctor.id

    def test_a_password_sign_in_is_weak(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider, doctor: Professional
    ) -> None:
        signed = assertion(
            idp, clock.now(), subject=doctor.identifier_value, qualifier=RPPS, authn=PASSWORD_AUTHN
        )
        assert _actor(session, clock, idp, signed).assurance is Assurance.LOW

    def test_the_actor_goes_through_the_policy_like_a_token(
        self,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        idp: IdentityProvider,
        doctor: Professional,
    ) -> None:
        patient = make_patient(session, clock)
        author = make_professional(session, clock)
        make_document(
            session, store, clock, actor=professional_actor(author), patient_id=patient.id
        )
        query = adhoc(
            FIND_DOCUMENTS,
            {
                "$XDSDocumentEntryPatientId": f"'{patient_cx(patient)}'",
                "$XDSDocumentEntryStatus": APPROVED,
            },
        )
        actor = _actor(
            session,
            clock,
            idp,
            assertion(idp, clock.now(), subject=doctor.identifier_value, qualifier=RPPS),
        )
        assert ask(session, actor, query, clock).counts == {}
        rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=doctor.id,
        )
        assert ask(session, actor, query, clock).counts == {"documents": 1}


class TestPatients:
    def test_the_patient_and_a_representative(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider
    ) -> None:
        parent = make_patient(session, clock)
        child = make_patient(session, clock, birth_date=dt.date(2018, 3, 2))
        identifier = parent.identifiers[0]
        oid = next(o for o, s in mapping.ASSIGNING_AUTHORITIES.items() if s == identifier.system)
        own = assertion(idp, clock.now(), subject=identifier.value, qualifier=oid, role="PAT")
        actor = _actor(session, clock, idp, own)
        assert (actor.kind, actor.person_id, actor.acting_for) == (
            ActorKind.PATIENT,
            parent.id,
            parent.id,
        )
        representing = assertion(
            idp,
            clock.now(),
            subject=identifier.value,
            qualifier=oid,
            role="REP",
            resource_id=patient_cx(child),
        )
        actor = _actor(session, clock, idp, representing)
        assert (actor.person_id, actor.acting_for, actor.launch_patient) == (
            parent.id,
            child.id,
            child.id,
        )
        assert actor.represents_someone_else


class TestRefusals:
    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"audience": "https://elsewhere.example/xds"}, "not for this audience"),
            ({"issued": dt.datetime(2026, 6, 1, 11, tzinfo=dt.UTC)}, "expired"),
            ({"issued": dt.datetime(2026, 6, 1, 13, tzinfo=dt.UTC)}, "not valid before"),
            ({"purpose": "EMERGENCY"}, "emergency"),
            ({"purpose": "MARKETING"}, "purpose of use"),
            ({"role": "ASS"}, "may not act"),
            ({"qualifier": None}, "assigning authority"),
            ({"subject": "10000000000"}, "not a professional of Carnet's directory"),
        ],
    )
    def test_what_is_refused_and_why(
        self,
        session: Session,
        clock: FrozenClock,
        idp: IdentityProvider,
        doctor: Professional,
        change: dict[str, object],
        reason: str,
    ) -> None:
        fields: dict[str, object] = {
            "subject": doctor.identifier_value,
            "qualifier": RPPS,
            **change,
        }
        signed = assertion(idp, clock.now(), **fields)  # type: ignore[arg-type]
        with pytest.raises(AssertionRefused, match=reason):
            _actor(session, clock, idp, signed)

    def test_unsigned_untrusted_and_tampered(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider, doctor: Professional
    ) -> None:
        fields = {"subject": doctor.identifier_value, "qualifier": RPPS}
        with pytest.raises(AssertionRefused, match="not signed"):
            _actor(session, clock, idp, assertion(None, clock.now(), **fields))  # type: ignore[arg-type]
        stranger = identity_provider(clock.now(), name="rogue.example")
        with pytest.raises(
            AssertionRefused, match="not signed by an identity provider Carnet trusts"
        ):
            _actor(session, clock, idp, assertion(stranger, clock.now(), **fields))  # type: ignore[arg-type]
        other = make_professional(session, clock)
        signed = assertion(idp, clock.now(), **fields)  # type: ignore[arg-type]
        name_id = signed.find(f".//{{{v.SAML2}}}NameID")
        assert name_id is not None
        name_id.text = other.identifier_value
        with pytest.raises(
            AssertionRefused, match="not signed by an identity provider Carnet trusts"
        ):
            _actor(session, clock, idp, signed)

    def test_no_assertion_or_no_trust(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider, doctor: Professional
    ) -> None:
        empty = security_header()
        with pytest.raises(AssertionRefused, match=r"No SAML 2\.0 assertion"):
            actor_from_assertion(session, empty, trust=idp.trust(), clock=clock)
        with pytest.raises(AssertionRefused, match="No WS-Security"):
            actor_from_assertion(session, None, trust=idp.trust(), clock=clock)
        signed = assertion(idp, clock.now(), subject=doctor.identifier_value, qualifier=RPPS)
        with pytest.raises(AssertionRefused, match="accepts no SAML"):
            actor_from_assertion(session, security_header(signed), trust=None, clock=clock)

    def test_an_expired_certificate(
        self, session: Session, clock: FrozenClock, doctor: Professional
    ) -> None:
        old = identity_provider(clock.now() - dt.timedelta(days=800))
        signed = assertion(old, clock.now(), subject=doctor.identifier_value, qualifier=RPPS)
        with pytest.raises(AssertionRefused, match="certificate is not valid now"):
            _actor(session, clock, old, signed)

    def test_an_inactive_professional(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider, doctor: Professional
    ) -> None:
        doctor.active = False
        session.flush()
        signed = assertion(idp, clock.now(), subject=doctor.identifier_value, qualifier=RPPS)
        with pytest.raises(AssertionRefused, match="not active"):
            _actor(session, clock, idp, signed)

    def test_a_patient_unknown_to_carnet(
        self, session: Session, clock: FrozenClock, idp: IdentityProvider
    ) -> None:
        signed = assertion(
            idp, clock.now(), subject="2800517123456", qualifier=mapping.FR_NIR_OID, role="PAT"
        )
        with pytest.raises(AssertionRefused, match="not a patient known"):
            _actor(session, clock, idp, signed)


def test_trust_from_settings(tmp_path: Path, idp: IdentityProvider) -> None:
    assert XuaTrust.from_settings(Settings()) is None
    bundle = tmp_path / "idps.pem"
    bundle.write_bytes(idp.certificate_pem)
    trust = XuaTrust.from_settings(
        Settings(xua_trusted_certs=bundle, public_url="https://carnet.example")
    )
    assert trust is not None
    assert trust.certificates == (idp.certificate,)
    assert trust.audience == "https://carnet.example/xds"
    assert dataclasses.replace(trust, audience="x").audience == "x"
