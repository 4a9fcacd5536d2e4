"""Registering feeding systems and recognising the sender of a message.

A feeding system is an organisation's sender: the MLLP listener and ``carnet hl7 import`` name
it from MSH-3/MSH-4 (and, over TLS, the client certificate) and act as it — an ``Actor`` of kind
``FEEDING_SYSTEM`` for its organisation, which the policy lets publish to active dossiers and
manage the documents its organisation wrote, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import parse_scopes
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.directory.models import Organisation
from carnet.feeds.errors import (
    FeedingSystemExists,
    FeedingSystemNotFound,
    InvalidFeedingSystem,
    UnknownSender,
)
from carnet.feeds.models import FeedingSystem, FeedMessage, IdentifierAuthority
from carnet.patients import identifiers

# What a sender may do, at most: publish reports and replace or withdraw its own. The policy
# still decides (``access.policy._feeding_system_dossier``).
_SCOPES = "system/DocumentReference.cu"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# Short names an operator types for the national identifier systems.
SYSTEM_NAMES: Mapping[str, str] = {
    "lu-matricule": identifiers.LU_MATRICULE,
    "fr-nir": identifiers.FR_NIR,
    "fr-ins": identifiers.FR_NIR,
}
# Authorities every sender may use without registering them. The INS is carried in PID-3 with
# the INS-NIR OID as CX.4's universal id (ANS, "Guide d'implémentation de l'INS", HL7 v2 PID-3).
NATIONAL_AUTHORITIES: Mapping[str, str] = {
    "1.2.250.1.213.1.4.8": identifiers.FR_NIR,
}


def register(
    session: Session,
    *,
    organisation_id: uuid.UUID,
    sending_facility: str,
    clock: Clock,
    sending_application: str = "",
    certificate_sha256: str | None = None,
    authorities: Mapping[str, str] | None = None,
) -> FeedingSystem:
    """Register a sender for an organisation of the directory.

    ``authorities`` maps an assigning authority of PID-3 (CX.4's namespace or universal id) to a
    national identifier system (a URI, or ``lu-matricule``, ``fr-nir``, ``fr-ins``). Raises
    ``InvalidFeedingSystem`` naming the option at fault, ``FeedingSystemExists`` when another
    system already sends as this facility and application, ``OrganisationNotFound``.
    """
    facility = _name(sending_facility, "sending_facility")
    application = _name(sending_application, "sending_application", required=False)
    fingerprint = _fingerprint(certificate_sha256)
    mapped = {
        _name(authority, "authority"): system_named(system)
        for authority, system in (authorities or {}).items()
    }
    directory.get_organisation(session, organisation_id)
    if session.scalar(
        select(FeedingSystem.id).where(
            FeedingSystem.sending_facility == facility,
            FeedingSystem.sending_application == application,
        )
    ):
        raise FeedingSystemExists(facility, application)
    system = FeedingSystem(
        id=uuid.uuid4(),
        organisation_id=organisation_id,
        sending_facility=facility,
        sending_application=application,
        certificate_sha256=fingerprint,
        registered_at=clock.now(),
    )
    session.add(system)
    session.flush()
    for authority, national in mapped.items():
        session.add(
            IdentifierAuthority(feeding_system_id=system.id, authority=authority, system=national)
        )
    session.flush()
    return system


def list_feeding_systems(session: Session) -> list[tuple[FeedingSystem, Organisation]]:
    """Every feeding system, active or not, with its organisation, by facility."""
    rows = session.execute(
        select(FeedingSystem, Organisation)
        .join(Organisation, Organisation.id == FeedingSystem.organisation_id)
        .order_by(FeedingSystem.sending_facility, FeedingSystem.sending_application)
    )
    return [(system, organisation) for system, organisation in rows]


def get_feeding_system(session: Session, feeding_system_id: uuid.UUID) -> FeedingSystem:
    """The feeding system with this id; ``FeedingSystemNotFound`` otherwise."""
    system = session.get(FeedingSystem, feeding_system_id)
    if system is None:
        raise FeedingSystemNotFound()
    return system


def deactivate(session: Session, feeding_system_id: uuid.UUID, *, clock: Clock) -> FeedingSystem:
    """Stop accepting messages from this system (its past messages and documents stay)."""
    system = get_feeding_system(session, feeding_system_id)
    if system.deactivated_at is None:
        system.deactivated_at = clock.now()
        session.flush()
    return system


def authorities_of(session: Session, system: FeedingSystem) -> dict[str, str]:
    """The assigning authorities this sender may use, with the national system each issues."""
    registered = session.scalars(
        select(IdentifierAuthority).where(IdentifierAuthority.feeding_system_id == system.id)
    )
    return {**NATIONAL_AUTHORITIES, **{row.authority: row.system for row in registered}}


def identify(
    session: Session,
    *,
    facility: Iterable[str],
    application: Iterable[str],
    certificate_sha256: str | None,
    certificate_required: bool = True,
) -> FeedingSystem:
    """The active feeding system that sent a message naming ``facility`` and ``application``.

    ``facility`` and ``application`` are the names a message gives in MSH-4 and MSH-3 (HD's
    namespace id and universal id); a system registered for one application is preferred to one
    registered for the whole facility. A system pinned to a certificate is recognised only when
    the connection presented that certificate, unless ``certificate_required`` is false (a file
    an operator imports vouches for its sender). Raises ``UnknownSender``.
    """
    facilities = {name for name in facility if name}
    applications = {name for name in application if name}
    if not facilities:
        raise UnknownSender("The message names no sending facility.", field="MSH-4")
    candidates = list(
        session.scalars(
            select(FeedingSystem).where(
                FeedingSystem.sending_facility.in_(sorted(facilities)),
                FeedingSystem.deactivated_at.is_(None),
            )
        )
    )
    chosen = next(
        (s for s in candidates if s.sending_application in applications),
        next((s for s in candidates if not s.sending_application), None),
    )
    if chosen is None:
        field = "MSH-3" if candidates else "MSH-4"
        raise UnknownSender("The sender is not a registered feeding system.", field=field)
    if (
        certificate_required
        and chosen.certificate_sha256 is not None
        and chosen.certificate_sha256 != (certificate_sha256 or "").lower()
    ):
        raise UnknownSender(
            "The sender did not present the certificate registered for it.", field="MSH-4"
        )
    return chosen


def actor_of(system: FeedingSystem, *, network_address: str | None = None) -> Actor:
    """The actor a feeding system is on Carnet: its organisation's system, nobody's doctor."""
    return Actor(
        kind=ActorKind.FEEDING_SYSTEM,
        subject=f"feeding-system:{system.id}",
        # A registered sender over a pinned connection, or a file its operator imports.
        assurance=Assurance.HIGH,
        scopes=parse_scopes(_SCOPES)[0],
        organisation_id=system.organisation_id,
        client_id=f"hl7:{system.sending_facility}"[:200],
        network_address=network_address,
    )


def recall(session: Session, system: FeedingSystem, control_id: str) -> FeedMessage | None:
    """The accepted message this system sent with control id ``control_id``, if any."""
    return session.get(FeedMessage, (system.id, control_id))


def remember(
    session: Session,
    system: FeedingSystem,
    *,
    control_id: str,
    message_type: str,
    ack_code: str,
    ack_text: str,
    document_ids: Sequence[uuid.UUID],
    clock: Clock,
) -> FeedMessage:
    """Remember an accepted message in the transaction that stored what it brought.

    Two copies of one message processed at once both try this insert: the second's transaction
    fails on the primary key, and the way in answers it from the first's record.
    """
    message = FeedMessage(
        feeding_system_id=system.id,
        control_id=control_id,
        message_type=message_type[:20],
        received_at=clock.now(),
        ack_code=ack_code,
        ack_text=ack_text[:200],
        document_ids=json.dumps([str(document) for document in document_ids]),
    )
    session.add(message)
    session.flush()
    return message


def remembered_documents(message: FeedMessage) -> list[uuid.UUID]:
    """The ids of the documents a remembered message published, replaced or withdrew."""
    return [uuid.UUID(value) for value in json.loads(message.document_ids)]


def organisation_named(session: Session, reference: str) -> Organisation:
    """The organisation named by its Carnet id or by its directory identifier value."""
    try:
        organisation_id = uuid.UUID(reference.strip())
    except ValueError:
        organisation_id = None
    if organisation_id is not None:
        return directory.get_organisation(session, organisation_id)
    found = directory.find_organisations(session, identifier=(None, reference.strip()), limit=2)
    if len(found) != 1:
        raise InvalidFeedingSystem(
            f"No single organisation of the directory has the identifier {reference!r}.",
            field="organisation",
        )
    return found[0]


def system_named(name: str) -> str:
    """The national identifier system named by its URI or its short name."""
    system = SYSTEM_NAMES.get(name.strip().lower(), name.strip())
    if system not in SYSTEM_NAMES.values():
        known = ", ".join(SYSTEM_NAMES)
        raise InvalidFeedingSystem(
            f"{name!r} is not a national identifier system (one of {known}).", field="authority"
        )
    return system


def certificate_fingerprint(data: bytes) -> str:
    """The SHA-256 (lowercase hex) of a certificate's DER, from a PEM or DER file's bytes."""
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if b"-----BEGIN" in data
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as error:
        raise InvalidFeedingSystem(
            "The certificate file is neither a PEM nor a DER X.509 certificate.",
            field="certificate",
        ) from error
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def _fingerprint(value: str | None) -> str | None:
    if value is None:
        return None
    fingerprint = value.strip().lower().replace(":", "")
    if not _SHA256.match(fingerprint):
        raise InvalidFeedingSystem(
            "The certificate's SHA-256 is 64 hexadecimal digits.", field="certificate"
        )
    return fingerprint


def _name(value: str, field: str, *, required: bool = True) -> str:
    name = value.strip()
    if required and not name:
        raise InvalidFeedingSystem(f"The {field.replace('_', ' ')} is empty.", field=field)
    if len(name) > 200 or any(ord(c) < 32 for c in name):
        raise InvalidFeedingSystem(
            f"The {field.replace('_', ' ')} is over 200 characters or holds control characters.",
            field=field,
        )
    return name
