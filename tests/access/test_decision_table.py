"""The whole decision table, as data, checked case by case against the decision point.

Each row names a reader (actor kind and profession), the patient's rules in force for that
reader (the access state), and what the reader must get when listing the dossier: exactly which
documents, or a refusal that looks like "not found", or a demand for a stronger sign-in. The
dossier holds one document in each state the policy distinguishes. The rows go through the real
services on a real database: grants, care contacts, blocks, designations, break-the-glass and
masks are recorded exactly as the patient and professionals would record them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access import rules as access_rules
from carnet.access.actors import Actor, Assurance
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied, InsufficientScope, StrongerAuthenticationRequired
from carnet.access.models import CareContactMethod, GrantLevel, RepresentationKind
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import FrozenClock
from carnet.directory.models import OrganisationKind, Profession
from carnet.documents import publication, reading, visibility
from carnet.documents.models import Confidentiality
from carnet.storage import FilesystemDocumentStore
from factories.actors import (
    operator_actor,
    patient_actor,
    professional_actor,
    security_officer_actor,
    system_actor,
)
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata
from factories.patients import make_patient

# Document states. BY_* are written by that reader (secret, so only author and patient see them).
N, R, V = "N", "R", "V"
MASKED_ALL, MASKED_ME, HIDDEN = "masked-all", "masked-me", "hidden-from-patient"
SUPERSEDED, REPLACEMENT, ERROR = "superseded", "replacement", "entered-in-error"
IMAGING = "imaging-report"  # outside the pharmacist's matrix
BY_GP, BY_PHARMACIST, BY_EMERGENCY, BY_PATIENT = "by-gp", "by-pharmacist", "by-ep", "by-patient"

PATIENT_VIEW = frozenset(
    {N, R, V, MASKED_ALL, MASKED_ME, SUPERSEDED, REPLACEMENT, IMAGING}
    | {BY_GP, BY_PHARMACIST, BY_EMERGENCY, BY_PATIENT}
)
NORMAL_VIEW = frozenset({N, HIDDEN, SUPERSEDED, REPLACEMENT, IMAGING, BY_PATIENT})
EXTENDED_VIEW = NORMAL_VIEW | {R}
DENIED = "denied"
STEP_UP = "step-up"


@dataclass
class World:
    """One dossier with a document in every state, and the people around it."""

    session: Session
    store: FilesystemDocumentStore
    clock: FrozenClock
    actors: dict[str, Actor] = field(default_factory=dict)
    documents: dict[str, uuid.UUID] = field(default_factory=dict)

    @property
    def patient_id(self) -> uuid.UUID:
        patient_id = self.actors["patient"].person_id
        assert patient_id is not None
        return patient_id

    def professional(self, reader: str) -> uuid.UUID:
        professional_id = self.actors[reader].professional_id
        assert professional_id is not None
        return professional_id

    def names(self, ids: set[uuid.UUID]) -> frozenset[str]:
        by_id = {document_id: name for name, document_id in self.documents.items()}
        return frozenset(by_id[document_id] for document_id in ids)


@pytest.fixture
def world(session: Session, store: FilesystemDocumentStore, clock: FrozenClock) -> World:
    patient = make_patient(session, clock)
    parent = make_patient(session, clock, given="Jean", birth_date=dt.date(1950, 1, 1))
    access_representation.record_representation(
        session,
        open_dossier(
            session, operator_actor(), patient.id, purposes.RECORD_REPRESENTATION, clock=clock
        ),
        parent.id,
        kind=RepresentationKind.GUARDIAN,
    )
    lab = make_organisation(session, clock)
    hospital = make_organisation(session, clock, kind=OrganisationKind.HOSPITAL, name="CHL")
    pharmacy = make_organisation(session, clock, kind=OrganisationKind.PHARMACY, name="Gare")
    biologist = make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
    )
    gp = make_professional(session, clock, family="Generalist")
    pharmacist = make_professional(
        session, clock, profession=Profession.PHARMACIST, organisation_id=pharmacy.id
    )
    emergency = make_professional(
        session, clock, profession=Profession.EMERGENCY_PHYSICIAN, organisation_id=hospital.id
    )
    w = World(session, store, clock)
    w.actors = {
        "patient": patient_actor(patient),
        "representative": patient_actor(parent, acting_for=patient),
        "stranger": patient_actor(make_patient(session, clock, given="Zoe")),
        "biologist": professional_actor(biologist),
        "gp": professional_actor(gp),
        "pharmacist": professional_actor(pharmacist),
        "emergency": professional_actor(emergency),
        "lab-system": system_actor(lab, scopes="system/*.cruds"),
        "lab-system-for-biologist": system_actor(
            lab, scopes="system/*.cruds", professional=biologist
        ),
        "operator": operator_actor(),
        "security-officer": security_officer_actor(),
    }

    def publish(name: str, by: str = "biologist", **changes: object) -> None:
        metadata = lab_metadata(clock, **changes)
        document = publication.add_document(
            session,
            open_dossier(
                session, w.actors[by], patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock
            ),
            store,
            metadata=metadata,
            content=name.encode(),
        )
        w.documents[name] = document.id

    publish(N)
    publish(R, confidentiality=Confidentiality.RESTRICTED)
    publish(V, confidentiality=Confidentiality.VERY_RESTRICTED)
    publish(MASKED_ALL, masked_from_professionals=True)
    publish(MASKED_ME)
    publish(HIDDEN, hidden_from_patient=True)
    publish(SUPERSEDED)
    publish(ERROR)
    publish(IMAGING, type_system=LOINC_SYSTEM, type_code="18748-4")
    publish(BY_GP, by="gp", confidentiality=Confidentiality.VERY_RESTRICTED)
    publish(BY_PHARMACIST, by="pharmacist", confidentiality=Confidentiality.VERY_RESTRICTED)
    publish(BY_EMERGENCY, by="emergency", confidentiality=Confidentiality.VERY_RESTRICTED)
    publish(BY_PATIENT, by="patient")
    replacement = publication.replace_document(
        session,
        open_dossier(
            session, w.actors["biologist"], patient.id, purposes.REPLACE_DOCUMENT, clock=clock
        ),
        store,
        replaced_id=w.documents[SUPERSEDED],
        metadata=lab_metadata(clock),
        content=b"v2",
    )
    w.documents[REPLACEMENT] = replacement.id
    visibility.mark_entered_in_error(
        session,
        open_dossier(
            session, w.actors["biologist"], patient.id, purposes.MANAGE_DOCUMENT, clock=clock
        ),
        w.documents[ERROR],
    )
    for reader in ("gp", "pharmacist", "emergency"):
        access_rules.mask_document(
            session,
            open_dossier(
                session, w.actors["patient"], patient.id, purposes.MASK_DOCUMENT, clock=clock
            ),
            w.documents[MASKED_ME],
            w.professional(reader),
        )
    return w


# --- Access states: what the patient (or the professional) has recorded --------------------

Setup = Callable[[World, str], None]


def none(w: World, reader: str) -> None:
    """No rule at all."""


def grant(level: GrantLevel) -> Setup:
    def setup(w: World, reader: str) -> None:
        access_rules.grant_access(
            w.session,
            open_dossier(
                w.session, w.actors["patient"], w.patient_id, purposes.GRANT_ACCESS, clock=w.clock
            ),
            level=level,
            professional_id=w.professional(reader),
        )

    setup.__name__ = f"{level.value}_grant"
    return setup


def expired_grant(w: World, reader: str) -> None:
    access_rules.grant_access(
        w.session,
        open_dossier(
            w.session, w.actors["patient"], w.patient_id, purposes.GRANT_ACCESS, clock=w.clock
        ),
        level=GrantLevel.EXTENDED,
        professional_id=w.professional(reader),
        ends_at=w.clock.now() + dt.timedelta(days=1),
    )
    w.clock.advance(dt.timedelta(days=2))


def organisation_grant(w: World, reader: str) -> None:
    access_rules.grant_access(
        w.session,
        open_dossier(
            w.session, w.actors["patient"], w.patient_id, purposes.GRANT_ACCESS, clock=w.clock
        ),
        level=GrantLevel.NORMAL,
        organisation_id=w.actors[reader].organisation_id,
        ends_at=w.clock.now() + dt.timedelta(days=30),
    )


def care_contact_open(w: World, reader: str) -> None:
    code = access_care.issue_care_contact_code(
        w.session,
        open_dossier(
            w.session,
            w.actors["patient"],
            w.patient_id,
            purposes.ISSUE_CARE_CONTACT_CODE,
            clock=w.clock,
        ),
    )
    access_care.record_care_contact(
        w.session,
        open_dossier(
            w.session, w.actors[reader], w.patient_id, purposes.RECORD_CARE_CONTACT, clock=w.clock
        ),
        method=CareContactMethod.CODE,
        code=code,
    )


def care_contact_closed(w: World, reader: str) -> None:
    care_contact_open(w, reader)
    w.clock.advance(dt.timedelta(days=91))  # 90 days for a doctor; a pharmacist's 3 are long gone


def treating_doctor(w: World, reader: str) -> None:
    access_rules.designate_treating_doctor(
        w.session,
        open_dossier(
            w.session,
            w.actors["patient"],
            w.patient_id,
            purposes.DESIGNATE_TREATING_DOCTOR,
            clock=w.clock,
        ),
        w.professional(reader),
    )


def blocked(w: World, reader: str) -> None:
    treating_doctor(w, reader) if w.actors[reader].profession == "general-practitioner" else None
    access_rules.block_professional(
        w.session,
        open_dossier(
            w.session, w.actors["patient"], w.patient_id, purposes.BLOCK_PROFESSIONAL, clock=w.clock
        ),
        w.professional(reader),
    )


def emergency(w: World, reader: str) -> None:
    access_care.break_glass(
        w.session,
        open_dossier(
            w.session, w.actors[reader], w.patient_id, purposes.BREAK_GLASS, clock=w.clock
        ),
        reason="Unconscious on arrival, no relatives",
    )


def emergency_expired(w: World, reader: str) -> None:
    emergency(w, reader)
    w.clock.advance(dt.timedelta(hours=25))


def emergency_opposed(w: World, reader: str) -> None:
    access_rules.set_preferences(
        w.session,
        open_dossier(
            w.session,
            w.actors["patient"],
            w.patient_id,
            purposes.SET_ACCESS_PREFERENCES,
            clock=w.clock,
        ),
        access_guard.Preferences(emergency_opposed=True),
    )
    with pytest.raises(AccessDenied):
        emergency(w, reader)


def emergency_widened(w: World, reader: str) -> None:
    access_rules.set_preferences(
        w.session,
        open_dossier(
            w.session,
            w.actors["patient"],
            w.patient_id,
            purposes.SET_ACCESS_PREFERENCES,
            clock=w.clock,
        ),
        access_guard.Preferences(emergency_widened=True),
    )
    emergency(w, reader)


def blocked_then_emergency(w: World, reader: str) -> None:
    access_rules.block_professional(
        w.session,
        open_dossier(
            w.session, w.actors["patient"], w.patient_id, purposes.BLOCK_PROFESSIONAL, clock=w.clock
        ),
        w.professional(reader),
    )
    with pytest.raises(AccessDenied):
        emergency(w, reader)


def weak(w: World, reader: str) -> None:
    """The reader signed in with a password only."""
    w.actors[reader] = replace(w.actors[reader], assurance=Assurance.LOW)


def narrow_scope(w: World, reader: str) -> None:
    """The reader's app holds a token for Patient resources only."""
    w.actors[reader] = replace(w.actors[reader], scopes=frozenset())


# --- The table ----------------------------------------------------------------------------
# (reader, access state, what the reader lists: documents, DENIED, STEP_UP or "scope", withheld)
OWN = {"gp": BY_GP, "pharmacist": BY_PHARMACIST, "emergency": BY_EMERGENCY}
TABLE: list[tuple[str, Setup, frozenset[str] | str, bool]] = [
    ("patient", none, PATIENT_VIEW, False),
    ("representative", none, PATIENT_VIEW, False),
    ("patient", weak, STEP_UP, False),
    ("stranger", none, DENIED, False),
    ("gp", none, frozenset({BY_GP}), False),
    ("gp", grant(GrantLevel.NORMAL), NORMAL_VIEW | {BY_GP}, True),
    ("gp", grant(GrantLevel.EXTENDED), EXTENDED_VIEW | {BY_GP}, True),
    ("gp", expired_grant, frozenset({BY_GP}), False),
    ("gp", care_contact_open, NORMAL_VIEW | {BY_GP}, True),
    ("gp", care_contact_closed, frozenset({BY_GP}), False),
    ("gp", treating_doctor, EXTENDED_VIEW | {BY_GP}, True),
    ("gp", blocked, DENIED, False),
    ("gp", weak, STEP_UP, False),
    ("gp", narrow_scope, "scope", False),
    ("pharmacist", none, frozenset({BY_PHARMACIST}), False),
    ("pharmacist", grant(GrantLevel.NORMAL), (NORMAL_VIEW - {IMAGING}) | {BY_PHARMACIST}, True),
    ("pharmacist", grant(GrantLevel.EXTENDED), (EXTENDED_VIEW - {IMAGING}) | {BY_PHARMACIST}, True),
    ("pharmacist", organisation_grant, (NORMAL_VIEW - {IMAGING}) | {BY_PHARMACIST}, True),
    ("pharmacist", care_contact_open, (NORMAL_VIEW - {IMAGING}) | {BY_PHARMACIST}, True),
    ("pharmacist", care_contact_closed, frozenset({BY_PHARMACIST}), False),
    ("pharmacist", blocked, DENIED, False),
    ("emergency", none, frozenset({BY_EMERGENCY}), False),
    ("emergency", emergency, NORMAL_VIEW | {BY_EMERGENCY}, True),
    ("emergency", emergency_expired, frozenset({BY_EMERGENCY}), False),
    ("emergency", emergency_opposed, frozenset({BY_EMERGENCY}), False),
    ("emergency", emergency_widened, EXTENDED_VIEW | {BY_EMERGENCY}, True),
    ("emergency", blocked_then_emergency, DENIED, False),
    ("lab-system", none, DENIED, False),
    (
        "lab-system-for-biologist",
        none,
        frozenset(
            {N, R, V, MASKED_ALL, MASKED_ME, HIDDEN, SUPERSEDED, REPLACEMENT, ERROR, IMAGING}
        ),
        False,
    ),
    ("lab-system-for-biologist", blocked, DENIED, False),
    (
        "biologist",
        none,
        frozenset(
            {N, R, V, MASKED_ALL, MASKED_ME, HIDDEN, SUPERSEDED, REPLACEMENT, ERROR, IMAGING}
        ),
        False,
    ),
    ("operator", none, DENIED, False),
    ("security-officer", none, DENIED, False),
]


@pytest.mark.parametrize(
    ("reader", "setup", "expected", "withheld"),
    TABLE,
    ids=[f"{reader}-{setup.__name__}" for reader, setup, _, _ in TABLE],
)
def test_listing(
    world: World, reader: str, setup: Setup, expected: frozenset[str] | str, withheld: bool
) -> None:
    setup(world, reader)
    actor = world.actors[reader]
    everything = reading.DocumentFilter(statuses=())
    if expected == DENIED:
        with pytest.raises(AccessDenied):
            reading.list_documents(
                world.session,
                open_dossier(
                    world.session,
                    actor,
                    world.patient_id,
                    purposes.FIND_DOCUMENTS,
                    clock=world.clock,
                ),
                everything,
            )
        return
    if expected == STEP_UP:
        with pytest.raises(StrongerAuthenticationRequired):
            reading.list_documents(
                world.session,
                open_dossier(
                    world.session,
                    actor,
                    world.patient_id,
                    purposes.FIND_DOCUMENTS,
                    clock=world.clock,
                ),
                everything,
            )
        return
    if expected == "scope":
        with pytest.raises(InsufficientScope):
            reading.list_documents(
                world.session,
                open_dossier(
                    world.session,
                    actor,
                    world.patient_id,
                    purposes.FIND_DOCUMENTS,
                    clock=world.clock,
                ),
                everything,
            )
        return
    page = reading.list_documents(
        world.session,
        open_dossier(
            world.session, actor, world.patient_id, purposes.FIND_DOCUMENTS, clock=world.clock
        ),
        everything,
    )
    assert world.names({d.id for d in page.documents}) == expected
    assert page.total == len(expected)
    assert page.withheld is withheld
    # Reading one by one agrees with the listing: what is listed reads, what is not is "not found".
    for name, document_id in world.documents.items():
        if name in expected:
            reading.read_content(
                world.session,
                open_dossier(
                    world.session,
                    actor,
                    world.patient_id,
                    purposes.RETRIEVE_DOCUMENTS,
                    clock=world.clock,
                ),
                document_id,
                world.store,
            )
        else:
            with pytest.raises(AccessDenied):
                reading.get_document(
                    world.session,
                    open_dossier(
                        world.session,
                        actor,
                        world.patient_id,
                        purposes.READ_DOCUMENTS,
                        clock=world.clock,
                    ),
                    document_id,
                )


# --- Actions other than reading -----------------------------------------------------------


def _publish(w: World, reader: str) -> None:
    publication.add_document(
        w.session,
        open_dossier(
            w.session, w.actors[reader], w.patient_id, purposes.PUBLISH_DOCUMENTS, clock=w.clock
        ),
        w.store,
        metadata=lab_metadata(w.clock),
        content=b"new",
    )


def _grant(w: World, reader: str) -> None:
    access_rules.grant_access(
        w.session,
        open_dossier(
            w.session, w.actors[reader], w.patient_id, purposes.GRANT_ACCESS, clock=w.clock
        ),
        level=GrantLevel.NORMAL,
        professional_id=w.professional("gp"),
    )


def _break_glass(w: World, reader: str) -> None:
    emergency(w, reader)


def _withdraw(name: str) -> Callable[[World, str], None]:
    def act(w: World, reader: str) -> None:
        visibility.mark_entered_in_error(
            w.session,
            open_dossier(
                w.session, w.actors[reader], w.patient_id, purposes.MANAGE_DOCUMENT, clock=w.clock
            ),
            w.documents[name],
        )

    act.__name__ = f"withdraw_{name}"
    return act


def _mask(w: World, reader: str) -> None:
    visibility.set_visibility(
        w.session,
        open_dossier(
            w.session,
            w.actors[reader],
            w.patient_id,
            purposes.visibility_for(w.actors[reader]),
            clock=w.clock,
        ),
        w.documents[N],
        masked_from_professionals=True,
    )


ACTIONS: list[tuple[str, Callable[[World, str], None], bool]] = [
    ("patient", _publish, True),
    ("representative", _publish, True),
    ("gp", _publish, True),
    ("lab-system", _publish, True),
    ("stranger", _publish, False),
    ("operator", _publish, False),
    ("security-officer", _publish, False),
    ("operator", _grant, False),
    ("patient", _grant, True),
    ("representative", _grant, True),
    ("stranger", _grant, False),
    ("gp", _grant, False),
    ("lab-system", _grant, False),
    ("emergency", _break_glass, True),
    ("gp", _break_glass, False),
    ("pharmacist", _break_glass, False),
    ("biologist", _withdraw(N), True),
    ("lab-system", _withdraw(N), True),
    ("gp", _withdraw(N), False),
    ("patient", _withdraw(N), False),
    ("patient", _withdraw(BY_PATIENT), True),
    ("gp", _withdraw(BY_GP), True),
    ("patient", _mask, True),
    ("representative", _mask, True),
    ("biologist", _mask, False),
    ("gp", _mask, False),
]


@pytest.mark.parametrize(
    ("reader", "act", "allowed"), ACTIONS, ids=[f"{r}-{a.__name__}" for r, a, _ in ACTIONS]
)
def test_action(
    world: World, reader: str, act: Callable[[World, str], None], allowed: bool
) -> None:
    if allowed:
        act(world, reader)
    else:
        with pytest.raises(AccessDenied):
            act(world, reader)
