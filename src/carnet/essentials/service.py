"""Essential data services: read, record and withdraw the facts a doctor needs first.

Policy, through ``carnet.access`` like every other read and write of the dossier:

- reading is ``READ_DOCUMENTS`` on the dossier, and for a professional a live basis besides
  (grant, care contact, treating doctor, emergency access): essential data summarises the
  dossier, so the "own documents only" that documents allow a professional without a basis
  does not reach it. Each fact is then judged as the document type that carries the same
  information (``CARRIED_BY``), so the access matrix says which professions see which
  categories — a physiotherapist sees allergies, not advance directives;
- recording and withdrawing is ``PUBLISH``: a professional records any category; the patient
  (or their representative) records blood group, allergies, emergency contacts and advance
  directives, and withdraws what the patient side recorded, and their emergency contacts and
  advance directives whoever wrote them down (their own contacts and will). A feeding system
  records nothing here;
- the token's SMART scopes bound all of it, each category on the FHIR resource it would be
  exchanged as (``FHIR_RESOURCE``): scopes only narrow.

Every read and write is on the dossier's audit trail; refusals carry their audit record, as
elsewhere. Nothing is deleted: a withdrawn fact keeps its row, stamped.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carnet.access import guard as access_guard
from carnet.access import purposes
from carnet.access.actors import Actor, ActorKind
from carnet.access.door import OpenedDossier, open_dossier
from carnet.access.matrix import AccessMatrix, load_matrix
from carnet.access.policy import (
    Action,
    DocumentFacts,
    DossierAccess,
    decide_document,
    decide_dossier,
    scope_allows,
)
from carnet.access.scopes import Interaction
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.catalogue import load_catalogue
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.documents import guard, reading
from carnet.documents.models import Confidentiality, DocumentStatus
from carnet.essentials.errors import FactConflict, FactNotFound, InvalidFact
from carnet.essentials.models import Category, EssentialFact
from carnet.patients.models import DossierState

MAX_TEXT = 500
MAX_PART = 200
BLOOD_GROUPS = ("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-")
# FHIR AllergyIntolerance.reaction.severity.
SEVERITIES = ("mild", "moderate", "severe")
DIRECTIVE_KINDS = (
    "living-will",
    "do-not-resuscitate",
    "health-care-proxy",
    "organ-donation",
    "other",
)
PATIENT_CATEGORIES = frozenset(
    {Category.BLOOD_GROUP, Category.ALLERGY, Category.EMERGENCY_CONTACT, Category.ADVANCE_DIRECTIVE}
)
# The patient's own contacts and will: theirs to withdraw, whoever wrote them down.
PATIENT_OWNED = frozenset({Category.EMERGENCY_CONTACT, Category.ADVANCE_DIRECTIVE})
# The document type that carries the same information: the access matrix then decides which
# professions see a category, and no second matrix has to be kept in step with the first.
CARRIED_BY = {
    Category.BLOOD_GROUP: "patient-summary",
    Category.ALLERGY: "allergies",
    Category.TREATMENT: "prescription",
    Category.VACCINATION: "vaccination-record",
    Category.EMERGENCY_CONTACT: "patient-summary",
    Category.ADVANCE_DIRECTIVE: "advance-directives",
}
# The FHIR resource each category is exchanged as (IPS): a token's scopes on it bound access.
FHIR_RESOURCE = {
    Category.BLOOD_GROUP: "Observation",
    Category.ALLERGY: "AllergyIntolerance",
    Category.TREATMENT: "MedicationStatement",
    Category.VACCINATION: "Immunization",
    Category.EMERGENCY_CONTACT: "RelatedPerson",
    Category.ADVANCE_DIRECTIVE: "Consent",
}
# Shown beside the facts: the latest document of each of these types the reader may see.
ESSENTIAL_DOCUMENT_TYPES = (
    "allergies",
    "vaccination-record",
    "advance-directives",
    "patient-summary",
)
_NO_BASIS = "no grant, care contact, designation or emergency access"
_PHONE = re.compile(r"^\+?[0-9][0-9 ./()-]{4,28}[0-9]$")
_MIN_PHONE_DIGITS = 6
_EARLIEST = dt.date(1900, 1, 1)


class EssentialDocument(NamedTuple):
    """A document shown beside the facts, for a link: its id, title and date."""

    id: uuid.UUID
    title: str
    date: dt.datetime


@dataclass(frozen=True)
class RecordedFact:
    """A live fact as one reader sees it.

    ``author_role`` is ``professional``, ``patient`` or ``representative``; ``author`` names
    the professional (None for the patient side). ``withdrawable``: this reader may withdraw it.
    """

    id: uuid.UUID
    category: Category
    text: str
    details: Mapping[str, str]
    recorded_at: dt.datetime
    author_role: str
    author: str | None
    source_document_id: uuid.UUID | None
    withdrawable: bool
    # Who recorded it, for the dossier's export (its re-import records it as them again).
    author_professional_id: uuid.UUID | None = None

    def day(self, name: str) -> dt.date | None:
        """A dated part (``date``, ``since``) as a date, for display; None when absent."""
        value = self.details.get(name)
        return dt.date.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Essentials:
    """A dossier's essential data as one reader may see it.

    ``categories`` are those this reader may see, in reading order (a category left out is not
    "nothing recorded": it is not theirs to see); ``recordable`` those they may add a fact to;
    ``documents`` the latest essential documents they may open, newest first.
    """

    patient_id: uuid.UUID
    categories: tuple[Category, ...]
    facts: tuple[RecordedFact, ...]
    documents: tuple[EssentialDocument, ...] = ()
    recordable: frozenset[Category] = field(default_factory=frozenset)

    # The closed lists, for the forms that add a fact.
    blood_groups: ClassVar[tuple[str, ...]] = BLOOD_GROUPS
    severities: ClassVar[tuple[str, ...]] = SEVERITIES
    directive_kinds: ClassVar[tuple[str, ...]] = DIRECTIVE_KINDS

    def of(self, category: Category | str) -> list[RecordedFact]:
        """The live facts of ``category``, newest first."""
        return [fact for fact in self.facts if fact.category == category]

    @property
    def blood_group(self) -> RecordedFact | None:
        """The live blood group, if one is recorded and visible."""
        found = self.of(Category.BLOOD_GROUP)
        return found[0] if found else None


def read_essentials(session: Session, dossier: OpenedDossier) -> Essentials:
    """The dossier's live essential facts and latest essential documents, as its actor may see.

    Serves a dossier opened to ``READ_ESSENTIALS``. Raises ``AccessDenied`` when the actor is a
    professional without a live basis. The read is recorded on the dossier's trail, and a
    professional's first look at the dossier is told to the patient.
    """
    dossier.require(purposes.READ_ESSENTIALS)
    actor, patient_id, access, clock = (
        dossier.actor,
        dossier.patient_id,
        dossier.access,
        dossier.clock,
    )
    if not access.acts_as_patient and not access.bases:
        raise dossier.refuse(_NO_BASIS)
    matrix = load_matrix()
    rows = list(
        session.scalars(
            select(EssentialFact)
            .where(EssentialFact.patient_id == patient_id, EssentialFact.withdrawn_at.is_(None))
            .order_by(EssentialFact.recorded_at.desc(), EssentialFact.id)
        )
    )
    in_scope = {
        category
        for category in Category
        if scope_allows(actor, FHIR_RESOURCE[category], Interaction.READ, patient_id)
    }
    visible = [
        row for row in rows if row.category in in_scope and _sees(actor, access, row, matrix)
    ]
    categories = tuple(
        category
        for category in Category
        if category in in_scope
        and (
            _sees_category(actor, access, category, matrix)
            or any(row.category is category for row in visible)
        )
    )
    _record_read(session, actor, access, [row.id for row in visible], clock=clock)
    return Essentials(
        patient_id=patient_id,
        categories=categories,
        facts=tuple(_as_seen(session, actor, access, row, matrix) for row in visible),
        documents=_essential_documents(session, actor, patient_id, clock),
        recordable=_recordable(actor, access, patient_id, rows),
    )


def record_fact(
    session: Session,
    dossier: OpenedDossier,
    *,
    category: Category | str,
    text: str,
    details: Mapping[str, object] | None,
    source_document_id: uuid.UUID | None = None,
) -> EssentialFact:
    """Record one fact, as the dossier's actor wrote it, in a dossier opened to
    ``RECORD_ESSENTIALS``.

    ``details`` holds the structured parts of the category: ``group`` (required, one of
    ``BLOOD_GROUPS``) for a blood group; ``substance``, ``reaction``, ``severity`` (one of
    ``SEVERITIES``) for an allergy; ``medication``, ``dosage``, ``since`` (ISO date) for a
    treatment; ``vaccine``, ``date`` (ISO date) for a vaccination; ``name`` and ``phone``
    (required) and ``relationship`` for an emergency contact; ``kind`` (one of
    ``DIRECTIVE_KINDS``) and ``held_by`` for an advance directive. A new blood group withdraws
    the previous one. ``source_document_id`` names a document of the dossier the fact was taken
    from, which the actor must be able to see.

    Raises ``InvalidFact`` naming the field at fault, ``FactConflict`` (the patient side
    replacing a blood group a professional recorded), ``InsufficientScope``,
    ``StrongerAuthenticationRequired`` and ``AccessDenied``; in every case nothing is written.
    """
    fact = NewFact(category, text, details, source_document_id)
    (recorded,) = record_facts(session, dossier, [fact])
    return recorded


@dataclass(frozen=True)
class NewFact:
    """A fact to record (see ``record_fact`` for the structured parts of each category)."""

    category: Category | str
    text: str
    details: Mapping[str, object] | None = None
    source_document_id: uuid.UUID | None = None


def record_facts(
    session: Session, dossier: OpenedDossier, facts: Sequence[NewFact]
) -> list[EssentialFact]:
    """Record several facts by one author at once (a summary taken in), as ``record_fact`` does
    one: the policy is asked once, at the door (``RECORD_ESSENTIALS``), and one event on the
    trail names them all.

    All or nothing: the first fact at fault raises (as ``record_fact``), and nothing is written.
    One blood group at most per call.
    """
    dossier.require(purposes.RECORD_ESSENTIALS)
    actor, patient_id, access, clock = (
        dossier.actor,
        dossier.patient_id,
        dossier.access,
        dossier.clock,
    )
    categories = [_category(fact.category) for fact in facts]
    if not categories:
        return []
    for category in dict.fromkeys(categories):
        # Each category is exchanged as its own FHIR resource: the token must cover each.
        access_guard.check_scope(
            actor,
            FHIR_RESOURCE[category],
            Interaction.CREATE,
            patient_id,
            audit=AuditAction.PUBLISH,
        )
    for category in dict.fromkeys(categories):
        refusal = _why_not_record(actor, access, category)
        if refusal is not None:
            raise dossier.refuse(refusal)
    if categories.count(Category.BLOOD_GROUP) > 1:
        raise InvalidFact("Record one blood group at a time.", field="group")
    checked = [
        _checked(category, fact.text, fact.details, clock.now().date())
        for category, fact in zip(categories, facts, strict=True)
    ]
    sources = {fact.source_document_id for fact in facts if fact.source_document_id is not None}
    if sources:
        # A fact cites a document the actor may read: asked at the door as a read would be.
        cited = open_dossier(session, actor, patient_id, purposes.READ_DOCUMENTS, clock=clock)
        for source in sorted(sources, key=str):
            reading.get_document(session, cited, source)
    replaced = (
        _withdraw_blood_group(session, actor, access, clock)
        if Category.BLOOD_GROUP in categories
        else None
    )
    agent = actor.agent
    rows = [
        EssentialFact(
            patient_id=patient_id,
            id=uuid.uuid4(),
            category=category,
            text=written,
            details=parts,
            recorded_at=clock.now(),
            recorded_by=agent.subject,
            recorded_by_kind=_side(actor),
            recorded_by_professional_id=actor.professional_id,
            source_document_id=fact.source_document_id,
        )
        for category, fact, (written, parts) in zip(categories, facts, checked, strict=True)
    ]
    session.add_all(rows)
    session.flush()
    audit_trail.record(
        session,
        agent=agent,
        action=AuditAction.PUBLISH,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[row.id for row in rows] + ([replaced.id] if replaced else []),
        details={
            "resource": "essential-fact",
            "categories": [category.value for category in categories],
            "replaces": replaced.id if replaced else None,
        },
    )
    return rows


def withdraw_fact(session: Session, dossier: OpenedDossier, fact_id: uuid.UUID) -> EssentialFact:
    """Withdraw a live fact now; its row stays, stamped, in the dossier's history.

    Serves a dossier opened to ``WITHDRAW_ESSENTIALS``. Raises ``FactNotFound`` unless the fact
    is live, ``InsufficientScope`` and ``AccessDenied`` (the actor may not withdraw this fact:
    see the module's policy).
    """
    dossier.require(purposes.WITHDRAW_ESSENTIALS)
    actor, patient_id, access, clock = (
        dossier.actor,
        dossier.patient_id,
        dossier.access,
        dossier.clock,
    )
    now = clock.now()
    fact = session.get(EssentialFact, (patient_id, fact_id))
    if fact is None or fact.withdrawn_at is not None:
        raise FactNotFound()
    access_guard.check_scope(
        actor,
        FHIR_RESOURCE[fact.category],
        Interaction.UPDATE,
        patient_id,
        audit=AuditAction.STATUS_CHANGE,
    )
    refusal = _why_not_withdraw(actor, access, fact, load_matrix())
    if refusal is not None:
        raise dossier.refuse(refusal, (fact_id,))
    _stamp_withdrawn(fact, actor, now)
    session.flush()
    audit_trail.record(
        session,
        agent=actor.agent,
        action=AuditAction.STATUS_CHANGE,
        clock=clock,
        patient_id=patient_id,
        entity_ids=[fact.id],
        details={"resource": "essential-fact", "category": fact.category.value, "withdrawn": True},
    )
    return fact


def purge_facts(
    session: Session, patient_id: uuid.UUID
) -> int:  # patient-data: a job's: the retention purge
    """Delete every fact of a dossier, withdrawn ones included; how many were deleted.

    For the retention purge of a closed dossier only, which decides and records it: no policy
    check here.
    """
    result = session.execute(delete(EssentialFact).where(EssentialFact.patient_id == patient_id))
    return int(getattr(result, "rowcount", 0) or 0)


# --- policy ---------------------------------------------------------------------------------


def _as_document(fact: EssentialFact) -> DocumentFacts:
    """The fact as the policy judges it: a current, normal document of the type carrying it."""
    return DocumentFacts(
        document_id=fact.id,
        type_key=CARRIED_BY[fact.category],
        status=DocumentStatus.CURRENT,
        confidentiality=Confidentiality.NORMAL,
        masked_from_professionals=False,
        hidden_from_patient=False,
        author_professional_id=fact.recorded_by_professional_id,
        author_organisation_id=None,
        authored_by_patient=fact.recorded_by_kind != "professional",
    )


def _sees(actor: Actor, access: DossierAccess, fact: EssentialFact, matrix: AccessMatrix) -> bool:
    return bool(decide_document(actor, access, _as_document(fact), matrix))


def _sees_category(
    actor: Actor, access: DossierAccess, category: Category, matrix: AccessMatrix
) -> bool:
    if access.acts_as_patient:
        return True
    return access.dossier_state is DossierState.ACTIVE and matrix.permits(
        actor.profession, CARRIED_BY[category]
    )


def _why_not_record(actor: Actor, access: DossierAccess, category: Category) -> str | None:
    """Why ``actor`` may not record a fact of ``category`` (None: they may)."""
    if actor.kind is ActorKind.FEEDING_SYSTEM:
        return "a feeding system records no essential data"
    if access.acts_as_patient and category not in PATIENT_CATEGORIES:
        return f"the patient side does not record {category.value}"
    return None


def _why_not_withdraw(
    actor: Actor, access: DossierAccess, fact: EssentialFact, matrix: AccessMatrix
) -> str | None:
    """Why ``actor`` may not withdraw ``fact`` (None: they may)."""
    refusal = _why_not_record(actor, access, fact.category)
    if refusal is not None:
        return refusal
    if access.acts_as_patient:
        if fact.recorded_by_kind == "professional" and fact.category not in PATIENT_OWNED:
            return "only a professional withdraws what a professional recorded"
        return None
    if not _sees(actor, access, fact, matrix):
        return "the professional may not see this fact"
    return None


def _recordable(
    actor: Actor, access: DossierAccess, patient_id: uuid.UUID, live: list[EssentialFact]
) -> frozenset[Category]:
    if not decide_dossier(actor, access, Action.PUBLISH):
        return frozenset()
    professional_blood_group = any(
        row.category is Category.BLOOD_GROUP and row.recorded_by_kind == "professional"
        for row in live
    )
    return frozenset(
        category
        for category in Category
        if _why_not_record(actor, access, category) is None
        and scope_allows(actor, FHIR_RESOURCE[category], Interaction.CREATE, patient_id)
        and not (
            access.acts_as_patient and category is Category.BLOOD_GROUP and professional_blood_group
        )
    )


# --- writing --------------------------------------------------------------------------------


def _side(actor: Actor) -> str:
    if actor.kind is ActorKind.PATIENT:
        return "representative" if actor.represents_someone_else else "patient"
    return "professional"


def _stamp_withdrawn(fact: EssentialFact, actor: Actor, now: dt.datetime) -> None:
    fact.withdrawn_at = now
    fact.withdrawn_by = actor.agent.subject


def _withdraw_blood_group(
    session: Session, actor: Actor, access: DossierAccess, clock: Clock
) -> EssentialFact | None:
    """Withdraw the live blood group a new one replaces; the patient side keeps off a
    professional's (a laboratory's finding outweighs a recollection)."""
    previous = session.scalar(
        select(EssentialFact).where(
            EssentialFact.patient_id == access.patient_id,
            EssentialFact.category == Category.BLOOD_GROUP,
            EssentialFact.withdrawn_at.is_(None),
        )
    )
    if previous is None:
        return None
    if access.acts_as_patient and previous.recorded_by_kind == "professional":
        raise FactConflict(
            "A professional recorded the blood group; only a professional can change it.",
            field="group",
        )
    _stamp_withdrawn(previous, actor, clock.now())
    # Flushed before the new fact goes in: the database keeps one live blood group per dossier.
    session.flush()
    return previous


def _category(value: Category | str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise InvalidFact(
            f"Choose a category: {', '.join(c.value for c in Category)}.", field="category"
        ) from None


def _checked(
    category: Category, text: str, details: Mapping[str, object] | None, today: dt.date
) -> tuple[str, dict[str, str]]:
    """The fact's text and structured parts, cleaned; ``InvalidFact`` naming what is wrong."""
    written = text.strip() if isinstance(text, str) else ""
    if not written:
        raise InvalidFact("Write the fact down.", field="text")
    if len(written) > MAX_TEXT:
        raise InvalidFact(f"Keep the fact under {MAX_TEXT} characters.", field="text")
    rules = _PARTS[category]
    parts: dict[str, str] = {}
    for name, given in (details or {}).items():
        if name not in rules:
            raise InvalidFact(f"A {category.value} has no {name!r}.", field=name)
        if isinstance(given, dt.date):
            given = given.isoformat()  # noqa: PLW2901 — a date is accepted as its ISO text
        if not isinstance(given, str):
            raise InvalidFact(f"The {name} must be text.", field=name)
        value = given.strip()
        if not value:
            continue
        if len(value) > MAX_PART:
            raise InvalidFact(f"Keep the {name} under {MAX_PART} characters.", field=name)
        _required, check = rules[name]
        parts[name] = check(name, value, today)
    for name, (required, _check) in rules.items():
        if required and name not in parts:
            raise InvalidFact(f"A {category.value} needs its {name}.", field=name)
    return written, parts


_Check = Callable[[str, str, dt.date], str]


def _free(_name: str, value: str, _today: dt.date) -> str:
    return value


def _one_of(choices: tuple[str, ...], *, upper: bool = False) -> _Check:
    def check(name: str, value: str, _today: dt.date) -> str:
        normal = value.replace(" ", "").upper() if upper else value.lower()
        if normal not in choices:
            raise InvalidFact(f"Choose the {name} among {', '.join(choices)}.", field=name)
        return normal

    return check


def _past_date(name: str, value: str, today: dt.date) -> str:
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidFact(f"Give the {name} as a date (YYYY-MM-DD).", field=name) from None
    if not _EARLIEST <= day <= today:
        raise InvalidFact(f"The {name} must be a past date.", field=name)
    return day.isoformat()


def _phone(name: str, value: str, _today: dt.date) -> str:
    if not _PHONE.match(value) or sum(c.isdigit() for c in value) < _MIN_PHONE_DIGITS:
        raise InvalidFact("Give a telephone number, such as +352 621 123 456.", field=name)
    return value


# Per category: each structured part, whether it is required, and how it is checked.
_PARTS: dict[Category, dict[str, tuple[bool, _Check]]] = {
    Category.BLOOD_GROUP: {"group": (True, _one_of(BLOOD_GROUPS, upper=True))},
    Category.ALLERGY: {
        "substance": (False, _free),
        "reaction": (False, _free),
        "severity": (False, _one_of(SEVERITIES)),
    },
    Category.TREATMENT: {
        "medication": (False, _free),
        "dosage": (False, _free),
        "since": (False, _past_date),
    },
    Category.VACCINATION: {"vaccine": (False, _free), "date": (False, _past_date)},
    Category.EMERGENCY_CONTACT: {
        "name": (True, _free),
        "relationship": (False, _free),
        "phone": (True, _phone),
    },
    Category.ADVANCE_DIRECTIVE: {
        "kind": (False, _one_of(DIRECTIVE_KINDS)),
        "held_by": (False, _free),
    },
}

# The structured parts each category takes, by name (what a form may send).
DETAIL_PARTS: Mapping[Category, tuple[str, ...]] = {
    category: tuple(parts) for category, parts in _PARTS.items()
}


# --- reading --------------------------------------------------------------------------------


def _as_seen(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    fact: EssentialFact,
    matrix: AccessMatrix,
) -> RecordedFact:
    author = None
    if fact.recorded_by_professional_id is not None:
        person = directory.get_professional(session, fact.recorded_by_professional_id)
        author = f"{person.given} {person.family}"
    withdrawable = decide_dossier(actor, access, Action.PUBLISH) and (
        scope_allows(actor, FHIR_RESOURCE[fact.category], Interaction.UPDATE, fact.patient_id)
        and _why_not_withdraw(actor, access, fact, matrix) is None
    )
    return RecordedFact(
        id=fact.id,
        category=fact.category,
        text=fact.text,
        details=dict(fact.details or {}),
        recorded_at=fact.recorded_at,
        author_role=fact.recorded_by_kind,
        author=author,
        source_document_id=fact.source_document_id,
        withdrawable=bool(withdrawable),
        author_professional_id=fact.recorded_by_professional_id,
    )


def _record_read(
    session: Session,
    actor: Actor,
    access: DossierAccess,
    fact_ids: list[uuid.UUID],
    *,
    clock: Clock,
) -> None:
    """Record the read; a professional's first look at the dossier is told to the patient."""
    access_guard.record_consultation(
        session,
        actor,
        access,
        access.patient_id,
        action=AuditAction.READ,
        clock=clock,
        entity_ids=fact_ids,
        details={"resource": "essentials"},
    )


def _essential_documents(
    session: Session, actor: Actor, patient_id: uuid.UUID, clock: Clock
) -> tuple[EssentialDocument, ...]:
    """The latest document of each essential type the actor may see, through the documents
    service (its policy, masks and audit apply); none when the token may not search them."""
    if not scope_allows(actor, "DocumentReference", Interaction.SEARCH, patient_id):
        return ()
    catalogue = load_catalogue()
    codes = {catalogue.by_key(key).code: key for key in ESSENTIAL_DOCUMENT_TYPES}
    found = open_dossier(session, actor, patient_id, purposes.FIND_DOCUMENTS, clock=clock)
    page = reading.list_documents(
        session, found, reading.DocumentFilter(type_codes=tuple(codes), limit=1000)
    )
    latest: dict[str, EssentialDocument] = {}
    for document in page.documents:  # newest first
        key = guard.facts(document).type_key
        if key in ESSENTIAL_DOCUMENT_TYPES and key not in latest:
            latest[key] = EssentialDocument(document.id, document.title, document.created_at)
    return tuple(sorted(latest.values(), key=lambda found: found.date, reverse=True))
