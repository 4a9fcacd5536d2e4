"""Feeding systems: registered for an organisation, recognised by MSH-3/MSH-4 and certificate."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy.orm import Session

from carnet.access.actors import ActorKind
from carnet.clock import FrozenClock
from carnet.directory.errors import OrganisationNotFound
from carnet.feeds import service as feeds
from carnet.feeds.errors import FeedingSystemExists, InvalidFeedingSystem, UnknownSender
from carnet.patients import identifiers
from factories.directory import make_organisation


def _certificate() -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lab.example.lu")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def test_a_registered_system_is_recognised_by_its_facility_and_acts_for_its_organisation(
    session: Session, clock: FrozenClock
) -> None:
    lab = make_organisation(session, clock)
    system = feeds.register(
        session,
        organisation_id=lab.id,
        sending_facility="2.16.840.1.113883.19.4.6",
        authorities={"CNS": "lu-matricule", "ASIP": "fr-ins"},
        clock=clock,
    )
    found = feeds.identify(
        session,
        facility=("ABC Lab", "2.16.840.1.113883.19.4.6"),
        application=("LIS", ""),
        certificate_sha256=None,
    )
    assert found.id == system.id
    actor = feeds.actor_of(found)
    assert (actor.kind, actor.organisation_id) == (ActorKind.FEEDING_SYSTEM, lab.id)
    assert feeds.authorities_of(session, system) == {
        "1.2.250.1.213.1.4.8": identifiers.FR_NIR,
        "CNS": identifiers.LU_MATRICULE,
        "ASIP": identifiers.FR_NIR,
    }


def test_an_application_of_its_own_is_preferred_to_the_whole_facility(
    session: Session, clock: FrozenClock
) -> None:
    lab = make_organisation(session, clock)
    whole = feeds.register(session, organisation_id=lab.id, sending_facility="LAB", clock=clock)
    lis = feeds.register(
        session,
        organisation_id=lab.id,
        sending_facility="LAB",
        sending_application="LIS",
        clock=clock,
    )
    assert (
        feeds.identify(session, facility=["LAB"], application=["LIS"], certificate_sha256=None).id
        == lis.id
    )
    assert (
        feeds.identify(session, facility=["LAB"], application=["PACS"], certificate_sha256=None).id
        == whole.id
    )


def test_unknown_deactivated_and_unpinned_senders_are_not_recognised(
    session: Session, clock: FrozenClock
) -> None:
    lab = make_organisation(session, clock)
    certificate = _certificate()
    fingerprint = feeds.certificate_fingerprint(certificate.public_bytes(Encoding.PEM))
    assert fingerprint == feeds.certificate_fingerprint(certificate.public_bytes(Encoding.DER))
    system = feeds.register(
        session,
        organisation_id=lab.id,
        sending_facility="LAB",
        sending_application="LIS",
        certificate_sha256=fingerprint,
        clock=clock,
    )
    with pytest.raises(UnknownSender) as unknown:
        feeds.identify(session, facility=["OTHER"], application=["LIS"], certificate_sha256=None)
    assert unknown.value.field == "MSH-4"
    with pytest.raises(UnknownSender) as application:
        feeds.identify(
            session, facility=["LAB"], application=["PACS"], certificate_sha256=fingerprint
        )
    assert application.value.field == "MSH-3"
    with pytest.raises(UnknownSender):
        feeds.identify(session, facility=["LAB"], application=["LIS"], certificate_sha256=None)
    assert (
        feeds.identify(
            session,
            facility=["LAB"],
            application=["LIS"],
            certificate_sha256=None,
            certificate_required=False,
        ).id
        == system.id
    )
    feeds.deactivate(session, system.id, clock=clock)
    with pytest.raises(UnknownSender):
        feeds.identify(
            session, facility=["LAB"], application=["LIS"], certificate_sha256=fingerprint
        )
    [(listed, organisation)] = [
        row for row in feeds.list_feeding_systems(session) if row[0].id == system.id
    ]
    assert listed.deactivated_at == clock.now()
    assert organisation.id == lab.id


def test_registration_refuses_what_it_cannot_use(session: Session, clock: FrozenClock) -> None:
    lab = make_organisation(session, clock)
    feeds.register(session, organisation_id=lab.id, sending_facility="LAB", clock=clock)
    with pytest.raises(FeedingSystemExists):
        feeds.register(session, organisation_id=lab.id, sending_facility="LAB", clock=clock)
    with pytest.raises(InvalidFeedingSystem) as empty:
        feeds.register(session, organisation_id=lab.id, sending_facility="  ", clock=clock)
    assert empty.value.field == "sending_facility"
    with pytest.raises(InvalidFeedingSystem) as authority:
        feeds.register(
            session,
            organisation_id=lab.id,
            sending_facility="B",
            authorities={"X": "ssn"},
            clock=clock,
        )
    assert authority.value.field == "authority"
    with pytest.raises(InvalidFeedingSystem) as pin:
        feeds.register(
            session,
            organisation_id=lab.id,
            sending_facility="C",
            certificate_sha256="xyz",
            clock=clock,
        )
    assert pin.value.field == "certificate"
    with pytest.raises(InvalidFeedingSystem):
        feeds.certificate_fingerprint(b"not a certificate")
    with pytest.raises(OrganisationNotFound):
        feeds.organisation_named(session, "00000000-0000-0000-0000-000000000000")
    assert feeds.organisation_named(session, lab.identifier_value).id == lab.id
