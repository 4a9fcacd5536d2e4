"""ITI-57 Update Document Set (IHE ITI TF-2b 3.57): status deprecation and confidentiality, as the
French DMP masks and unmasks documents — through ``update.handle`` and over SOAP.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes, rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.directory.models import Profession, Professional
from carnet.documents.models import Confidentiality, Document, DocumentStatus
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.xds import update
from carnet.xds import vocabulary as v
from carnet.xds.errors import XdsRefusal
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.patients import make_patient
from factories.xds import plain
from factories.xds_query import APPROVED, FIND_DOCUMENTS, adhoc, ask, patient_cx

RIM, LCM = v.RIM, v.LCM


def _update(cx: str) -> tuple[etree._Element, etree._Element]:
    """An empty metadata update: the request and its list, holding the SubmissionSet."""
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    listing = etree.SubElement(request, f"{{{RIM}}}RegistryObjectList")
    package = etree.SubElement(listing, f"{{{RIM}}}RegistryPackage", id="SubmissionSet01")
    etree.SubElement(
        package,
        f"{{{RIM}}}Classification",
        classifiedObject="SubmissionSet01",
        classificationNode=v.SUBMISSION_SET_CLASSIFICATION,
        id="c1",
    )
    etree.SubElement(
        package,
        f"{{{RIM}}}ExternalIdentifier",
        identificationScheme=v.SUBMISSION_SET_PATIENT_ID,
        registryObject="SubmissionSet01",
        value=cx,
        id="e1",
    )
    return request, listing


def _slot(parent: etree._Element, name: str, value: str) -> None:
    slot = etree.SubElement(parent, f"{{{RIM}}}Slot", name=name)
    etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value


def deprecation(cx: str, document_id: uuid.UUID, new_status: str = v.DEPRECATED) -> etree._Element:
    request, listing = _update(cx)
    association = etree.SubElement(
        listing,
        f"{{{RIM}}}Association",
        id="a1",
        associationType=v.UPDATE_AVAILABILITY_STATUS,
        sourceObject="SubmissionSet01",
        targetObject=f"urn:uuid:{document_id}",
    )
    _slot(association, "OriginalStatus", v.APPROVED)
    _slot(association, "NewStatus", new_status)
    return request


def new_version(cx: str, document_id: uuid.UUID, *codes: tuple[str, str]) -> etree._Element:
    """A new version of a DocumentEntry carrying ``codes`` (code, scheme) as its confidentiality."""
    request, listing = _update(cx)
    entry_id = f"urn:uuid:{uuid.uuid4()}"
    entry = etree.SubElement(
        listing,
        f"{{{RIM}}}ExtrinsicObject",
        id=entry_id,
        lid=f"urn:uuid:{document_id}",
        objectType=v.STABLE_DOCUMENT,
        mimeType="text/plain",
    )
    for index, (code, scheme) in enumerate(codes):
        classification = etree.SubElement(
            entry,
            f"{{{RIM}}}Classification",
            id=f"cc{index}",
            classifiedObject=entry_id,
            classificationScheme=v.DOCUMENT_CONFIDENTIALITY_CODE,
            nodeRepresentation=code,
        )
        _slot(classification, "codingScheme", scheme)
    member = etree.SubElement(
        listing,
        f"{{{RIM}}}Association",
        id="a1",
        associationType=v.HAS_MEMBER,
        sourceObject="SubmissionSet01",
        targetObject=entry_id,
    )
    _slot(member, "SubmissionSetStatus", "Original")
    _slot(member, "PreviousVersion", "1")
    return request


NORMAL = ("N", v.CONFIDENTIALITY_SCHEME)
RESTRICTED = ("R", v.CONFIDENTIALITY_SCHEME)
MASKED = (v.MASKED_FROM_PROFESSIONALS, v.DMP_CONFIDENTIALITY_SCHEME)


@dataclass
class Published:
    patient: Patient
    biologist: Professional
    gp: Professional
    document: Document

    @property
    def cx(self) -> str:
        return patient_cx(self.patient)


@pytest.fixture
def published(session: Session, store: FilesystemDocumentStore, clock: FrozenClock) -> Published:
    patient = make_patient(session, clock)
    lab = make_organisation(session, clock)
    biologist = make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id
    )
    gp = make_professional(session, clock)
    rules.grant_access(
        session,
        open_dossier(
            session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
        ),
        level=GrantLevel.NORMAL,
        professional_id=gp.id,
    )
    document = make_document(
        session, store, clock, actor=professional_actor(biologist), patient_id=patient.id
    )
    return Published(patient, biologist, gp, document)


def _seen_by(session: Session, actor: Actor, published: Published, clock: FrozenClock) -> int:
    query = adhoc(
        FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": f"'{published.cx}'", "$XDSDocumentEntryStatus": APPROVED},
    )
    return ask(session, actor, query, clock).counts["documents"]


class TestStatus:
    def test_the_author_deprecates_and_queries_see_it_deprecated(
        self, session: Session, clock: FrozenClock, published: Published
    ) -> None:
        author = professional_actor(published.biologist)
        response = update.handle(
            session, author, deprecation(published.cx, published.document.id), clock=clock
        )
        assert response.get("status") == v.SUCCESS
        assert published.document.status is DocumentStatus.ENTERED_IN_ERROR
        assert _seen_by(session, patient_actor(published.patient), published, clock) == 0
        (event,) = session.scalars(
            select(AuditEvent).where(AuditEvent.action == AuditAction.STATUS_CHANGE)
        ).all()
        assert event.agent_professional_id == published.biologist.id

    def test_only_the_author_deprecates(
        self, session: Session, clock: FrozenClock, published: Published
    ) -> None:
        with pytest.raises(AccessDenied):
            update.handle(
                session,
                professional_actor(published.gp),
                deprecation(published.cx, published.document.id),
                clock=clock,
            )
        assert published.document.status is DocumentStatus.CURRENT

    def test_only_approved_to_deprecated(
        self, session: Session, clock: FrozenClock, published: Published
    ) -> None:
        request = deprecation(published.cx, published.document.id, new_status=v.APPROVED)
        with pytest.raises(XdsRefusal) as refused:
            update.handle(session, professional_actor(published.biologist), request, clock=clock)
        assert refused.value.errors[0].code == "XDSMetadataUpdateOperationError"


class TestConfidentiality:
    def test_the_patient_masks_and_unmasks_as_on_the_dmp(
        self, session: Session, clock: FrozenClock, published: Published
    ) -> None:
        me, gp = patient_actor(published.patient), professional_actor(published.gp)
        assert _seen_by(session, gp, published, clock) == 1
        update.handle(
            session,
            me,
            new_version(published.cx, published.document.id, NORMAL, MASKED),
            clock=clock,
        )
        assert published.document.masked_from_professionals
        assert _seen_by(session, gp, published, clock) == 0
        update.handle(
            session, me, new_version(published.cx, published.document.id, NORMAL), clock=clock
        )
        assert not published.document.masked_from_professionals
        assert _seen_by(session, gp, published, clock) == 1
        changes = session.scalars(
            select(AuditEvent).where(AuditEvent.action == AuditAction.VISIBILITY_CHANGE)
        ).all()
        assert len(changes) == 2

    def test_the_author_restricts_but_does_not_mask(
        self, session: Session, clock: FrozenClock, published: Published
    ) -> None:
        author = professional_actor(published.biologist)
        update.handle(
            session,
            author,
            new_version(published.cx, published.document.id, RESTRICTED),
            clock=clock,
        )
        assert published.document.confidentiality is Confidentiality.RESTRICTED
        with pytest.raises(AccessDenied):
            update.handle(
                session,
                author,
                new_version(published.cx, published.document.id, RESTRICTED, MASKED),
                clock=clock,
            )

    @pytest.mark.parametrize(
        ("codes", "code"),
        [
            ((("Z", "1.2.3"),), "XDSMetadataUpdateOperationError"),
            ((), "XDSMetadataUpdateOperationError"),
            ((NORMAL, RESTRICTED), "XDSMetadataUpdateOperationError"),
        ],
    )
    def test_what_carnet_cannot_apply_is_named(
        self,
        session: Session,
        clock: FrozenClock,
        published: Published,
        codes: tuple[tuple[str, str], ...],
        code: str,
    ) -> None:
        with pytest.raises(XdsRefusal) as refused:
            update.handle(
                session,
                patient_actor(published.patient),
                new_version(published.cx, published.document.id, *codes),
                clock=clock,
            )
        assert refused.value.errors[0].code == code

    def test_unknown_document_and_other_patient(
        self, session: Session, clock: FrozenClock, published: Published
    ) -> None:
        me = patient_actor(published.patient)
        with pytest.raises(XdsRefusal) as refused:
            update.handle(session, me, new_version(published.cx, uuid.uuid4(), NORMAL), clock=clock)
        assert refused.value.errors[0].code == "XDSUnresolvedReferenceException"
        other = patient_cx(make_patient(session, clock))
        with pytest.raises(XdsRefusal) as refused:
            update.handle(
                session, me, new_version(other, published.document.id, NORMAL), clock=clock
            )
        assert refused.value.errors[0].code == "XDSPatientIdDoesNotMatch"


@pytest.fixture
def served_published(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    wrapper: MasterKeyWrapper,
    published: Published,
) -> Iterator[tuple[Published, Served]]:
    with serve(session, store, clock, wrapper) as served:
        yield published, served


def test_over_soap_the_patient_masks_and_a_stranger_is_refused_and_audited(
    session: Session, clock: FrozenClock, served_published: tuple[Published, Served]
) -> None:
    published, served = served_published
    client = served.client

    def send(actor: Actor, scope: str, body: etree._Element) -> bytes:
        data, content_type = plain(body, v.ITI57_ACTION)
        headers = {"Content-Type": content_type, **bearer(served, session, actor, clock, scope)}
        response = client.post("/xds/registry", content=data, headers=headers)
        assert response.status_code == 200, response.text
        return bytes(response.content)

    answer = send(
        patient_actor(published.patient),
        "patient/*.cruds",
        new_version(published.cx, published.document.id, NORMAL, MASKED),
    )
    assert v.SUCCESS.encode() in answer
    session.refresh(published.document)
    assert published.document.masked_from_professionals
    stranger = make_professional(session, clock)
    answer = send(
        professional_actor(stranger),
        "user/*.cruds",
        deprecation(published.cx, published.document.id),
    )
    assert v.FAILURE.encode() in answer
    refused = session.scalars(
        select(AuditEvent).where(
            AuditEvent.agent_professional_id == stranger.id,
            AuditEvent.outcome == AuditOutcome.DENIED,
        )
    ).all()
    assert [e.action for e in refused] == [AuditAction.STATUS_CHANGE]
