"""ITI-18 Registry Stored Query through ``carnet.xds.stored_query.handle`` (IHE ITI TF-2a 3.18).

The handler is driven as the SOAP router drives it, with requests built as a consumer builds
them; the same policy and audit trail as MHD's ITI-67 decide what comes back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes, rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.directory.models import Organisation, Profession, Professional
from carnet.documents import publication
from carnet.documents.metadata import SubmissionSetMetadata
from carnet.documents.models import Confidentiality, Document
from carnet.patients.identifiers import LU_MATRICULE
from carnet.patients.models import Patient
from carnet.storage import FilesystemDocumentStore
from carnet.xds import mapping
from carnet.xds import vocabulary as v
from factories.actors import patient_actor, professional_actor
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata, make_document
from factories.patients import make_matricule, make_patient
from factories.xds_query import (
    APPROVED,
    APPROVED_OR_DEPRECATED,
    FIND_DOCUMENTS,
    FIND_SUBMISSION_SETS,
    GET_ALL,
    GET_ASSOCIATIONS,
    GET_DOCUMENTS,
    GET_DOCUMENTS_AND_ASSOCIATIONS,
    GET_RELATED_DOCUMENTS,
    GET_SUBMISSION_SET_AND_CONTENTS,
    GET_SUBMISSION_SETS,
    adhoc,
    ask,
    patient_cx,
    quoted,
    submit,
)


@dataclasses.dataclass
class Dossier:
    """A patient, the biologist who published for them, a GP under a normal grant."""

    patient: Patient
    biologist: Professional
    gp: Professional
    lab: Organisation

    @property
    def author(self) -> Actor:
        return professional_actor(self.biologist)

    @property
    def me(self) -> Actor:
        return patient_actor(self.patient)


@pytest.fixture
def dossier(session: Session, clock: FrozenClock) -> Dossier:
    patient = make_patient(session, clock)
    lab = make_organisation(session, clock)
    biologist = make_professional(
        session, clock, profession=Profession.BIOLOGIST, organisation_id=lab.id, family="Hoffmann"
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
    return Dossier(patient, biologist, gp, lab)


def _find(patient: Patient, **slots: str) -> dict[str, str]:
    return {
        "$XDSDocumentEntryPatientId": f"'{patient_cx(patient)}'",
        "$XDSDocumentEntryStatus": APPROVED,
        **slots,
    }


class TestFindDocuments:
    def test_the_patient_finds_their_document_with_its_metadata(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        submission, (document,) = submit(
            session, store, clock, actor=dossier.author, patient_id=dossier.patient.id
        )
        answer = ask(session, dossier.me, adhoc(FIND_DOCUMENTS, _find(dossier.patient)), clock)
        assert (answer.status, answer.errors) == ("Success", [])
        assert answer.counts == {"documents": 1}
        (entry,) = answer.element.iter(f"{{{v.RIM}}}ExtrinsicObject")
        assert entry.get("id") == f"urn:uuid:{document.id}"
        assert entry.get("status") == v.APPROVED
        assert entry.get("objectType") == v.STABLE_DOCUMENT
        assert entry.get("mimeType") == "text/plain"
        assert answer.unique_ids() == [mapping.unique_id(document.master_identifier)]
        schemes = {
            c.get("classificationScheme"): c for c in entry.iter(f"{{{v.RIM}}}Classification")
        }
        assert schemes[v.DOCUMENT_TYPE_CODE].get("nodeRepresentation") == "11502-2"
        assert schemes[v.DOCUMENT_CLASS_CODE].get("nodeRepresentation") == document.class_code
        assert schemes[v.DOCUMENT_CONFIDENTIALITY_CODE].get("nodeRepresentation") == "N"
        author = schemes[v.DOCUMENT_AUTHOR]
        person = author.find(f"{{{v.RIM}}}Slot[@name='authorPerson']/{{{v.RIM}}}ValueList")
        assert person is not None
        assert person[0].text == (
            f"{dossier.biologist.identifier_value}^Hoffmann^Marc^^^^^^&1.2.250.1.71.4.2.1&ISO"
        )
        patient_ids = [
            e.get("value")
            for e in entry.iter(f"{{{v.RIM}}}ExternalIdentifier")
            if e.get("identificationScheme") == v.DOCUMENT_PATIENT_ID
        ]
        assert patient_ids == [patient_cx(dossier.patient)]
        assert submission.id != document.id

    def test_object_ref_names_the_entry_uuids(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        _, documents = submit(
            session,
            store,
            clock,
            actor=dossier.author,
            patient_id=dossier.patient.id,
            documents=[lab_metadata(clock), lab_metadata(clock, title="Second")],
        )
        request = adhoc(FIND_DOCUMENTS, _find(dossier.patient), return_type="ObjectRef")
        answer = ask(session, dossier.me, request, clock)
        assert answer.counts == {"refs": 2}
        assert sorted(answer.ids("ObjectRef")) == sorted(f"urn:uuid:{d.id}" for d in documents)

    def test_codes_times_and_statuses_narrow_the_search(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        old = make_document(
            session,
            store,
            clock,
            actor=dossier.author,
            patient_id=dossier.patient.id,
            created_at=dt.datetime(2020, 1, 5, tzinfo=dt.UTC),
            service_start=dt.datetime(2020, 1, 4, 8, tzinfo=dt.UTC),
        )
        new = make_document(
            session, store, clock, actor=dossier.author, patient_id=dossier.patient.id
        )

        def found(**slots: str) -> list[str]:
            return ask(
                session, dossier.me, adhoc(FIND_DOCUMENTS, _find(dossier.patient, **slots)), clock
            ).ids("ExtrinsicObject")

        assert found(**{"$XDSDocumentEntryCreationTimeTo": "2021"}) == [f"urn:uuid:{old.id}"]
        assert found(**{"$XDSDocumentEntryCreationTimeFrom": "2021"}) == [f"urn:uuid:{new.id}"]
        assert found(
            **{
                "$XDSDocumentEntryServiceStartTimeFrom": "20200104",
                "$XDSDocumentEntryServiceStartTimeTo": "20200105",
            }
        ) == [f"urn:uuid:{old.id}"]
        assert (
            len(found(**{"$XDSDocumentEntryTypeCode": quoted("11502-2^^2.16.840.1.113883.6.1")}))
            == 2
        )
        assert (
            found(**{"$XDSDocumentEntryTypeCode": quoted("60591-5^^2.16.840.1.113883.6.1")}) == []
        )
        assert (
            found(**{"$XDSDocumentEntryConfidentialityCode": quoted("R^^2.16.840.1.113883.5.25")})
            == []
        )
        assert found(**{"$XDSDocumentEntryEventCodeList": quoted("T-D3000^^SNM3")}) == []
        assert len(found(**{"$XDSDocumentEntryAuthorPerson": "'%Hoffmann%'"})) == 2
        assert found(**{"$XDSDocumentEntryAuthorPerson": "'%Nobody%'"}) == []
        # A replaced document is Deprecated: found only when Deprecated is asked for.
        newer = _replace(session, store, clock, dossier, old)
        assert f"urn:uuid:{old.id}" not in found()
        deprecated = found(**{"$XDSDocumentEntryStatus": f"('{v.DEPRECATED}')"})
        assert deprecated == [f"urn:uuid:{old.id}"]
        assert f"urn:uuid:{newer.id}" in found()

    def test_a_professional_is_told_something_is_withheld(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        make_document(session, store, clock, actor=dossier.author, patient_id=dossier.patient.id)
        make_document(
            session,
            store,
            clock,
            actor=dossier.author,
            patient_id=dossier.patient.id,
            confidentiality=Confidentiality.RESTRICTED,
        )
        gp = professional_actor(dossier.gp)
        answer = ask(session, gp, adhoc(FIND_DOCUMENTS, _find(dossier.patient)), clock)
        assert answer.status == "Success"
        assert answer.counts == {"documents": 1}
        assert answer.errors == [("XDSRegistryError", "Warning", "")]

    def test_a_stranger_finds_nothing_and_the_refusal_is_audited(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        make_document(session, store, clock, actor=dossier.author, patient_id=dossier.patient.id)
        stranger = make_professional(session, clock, family="Fremen")
        answer = ask(
            session,
            professional_actor(stranger),
            adhoc(FIND_DOCUMENTS, _find(dossier.patient)),
            clock,
        )
        assert (answer.status, answer.errors, answer.counts) == ("Success", [], {})
        refusals = session.scalars(
            select(AuditEvent).where(
                AuditEvent.agent_professional_id == stranger.id,
                AuditEvent.outcome == AuditOutcome.DENIED,
            )
        ).all()
        assert [(e.action, e.patient_id) for e in refusals] == [
            (AuditAction.SEARCH, dossier.patient.id)
        ]

    def test_an_unknown_patient_looks_like_an_empty_dossier(
        self, session: Session, clock: FrozenClock, dossier: Dossier
    ) -> None:
        cx = mapping.patient_cx(LU_MATRICULE, make_matricule())
        request = adhoc(
            FIND_DOCUMENTS,
            {"$XDSDocumentEntryPatientId": f"'{cx}'", "$XDSDocumentEntryStatus": APPROVED},
        )
        answer = ask(session, dossier.me, request, clock)
        assert (answer.status, answer.counts) == ("Success", {})

    def test_the_search_is_audited_as_mhd_does(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        document = make_document(
            session, store, clock, actor=dossier.author, patient_id=dossier.patient.id
        )
        ask(
            session,
            professional_actor(dossier.gp),
            adhoc(FIND_DOCUMENTS, _find(dossier.patient)),
            clock,
        )
        (event,) = session.scalars(
            select(AuditEvent).where(
                AuditEvent.agent_professional_id == dossier.gp.id,
                AuditEvent.action == AuditAction.SEARCH,
            )
        ).all()
        assert event.outcome == AuditOutcome.ALLOWED
        assert str(document.id) in event.entity_ids


class TestParameters:
    @pytest.mark.parametrize(
        ("slots", "code", "location"),
        [
            (
                {"$XDSDocumentEntryStatus": APPROVED},
                "XDSStoredQueryParamNumber",
                "$XDSDocumentEntryPatientId",
            ),
            (
                {"$XDSDocumentEntryPatientId": "'x^^^&1.2&ISO'"},
                "XDSStoredQueryParamNumber",
                "$XDSDocumentEntryStatus",
            ),
            (
                {"$XDSDocumentEntryPatientId": "('a', 'b')", "$XDSDocumentEntryStatus": APPROVED},
                "XDSStoredQueryParamNumber",
                "$XDSDocumentEntryPatientId",
            ),
            (
                {
                    "$XDSDocumentEntryPatientId": "'x^^^&1.2&ISO'",
                    "$XDSDocumentEntryStatus": APPROVED,
                    "$XDSDocumentEntryCreationTimeFrom": "yesterday",
                },
                "XDSRegistryError",
                "$XDSDocumentEntryCreationTimeFrom",
            ),
            (
                {
                    "$XDSDocumentEntryPatientId": "'x^^^&1.2&ISO'",
                    "$XDSDocumentEntryStatus": APPROVED,
                    "$XDSDocumentEntryClassCode": "('DEMO-Lab^^1.3.6.1.4.1.21367.100.1', 'a^^')",
                },
                "XDSRegistryError",
                "$XDSDocumentEntryClassCode",
            ),
            (
                {
                    "$XDSDocumentEntryPatientId": "'x^^^&1.2&ISO'",
                    "$XDSDocumentEntryStatus": "(unquoted)",
                },
                "XDSRegistryError",
                "$XDSDocumentEntryStatus",
            ),
            (
                {
                    "$XDSDocumentEntryPatientId": "'x^^^&1.2&ISO'",
                    "$XDSDocumentEntryStatus": APPROVED,
                    "$Nonsense": "'1'",
                },
                "XDSRegistryError",
                "$Nonsense",
            ),
            (
                {"$XDSDocumentEntryPatientId": "'not a cx'", "$XDSDocumentEntryStatus": APPROVED},
                "XDSRegistryError",
                "patientId",
            ),
            (
                {
                    "$XDSDocumentEntryPatientId": "'x^^^&1.2&ISO'",
                    "$XDSDocumentEntryStatus": APPROVED,
                },
                "XDSUnknownPatientId",
                "x^^^&1.2&ISO",
            ),
        ],
    )
    def test_bad_parameters_are_a_failure_naming_them(
        self,
        session: Session,
        clock: FrozenClock,
        dossier: Dossier,
        slots: dict[str, str],
        code: str,
        location: str,
    ) -> None:
        answer = ask(session, dossier.me, adhoc(FIND_DOCUMENTS, slots), clock)
        assert answer.status == "Failure"
        assert answer.errors == [(code, "Error", location)]
        assert answer.counts == {}

    def test_unknown_query_and_return_type(
        self, session: Session, clock: FrozenClock, dossier: Dossier
    ) -> None:
        answer = ask(
            session, dossier.me, adhoc("urn:uuid:00000000-0000-0000-0000-000000000000", {}), clock
        )
        assert answer.errors[0][0] == "XDSUnknownStoredQuery"
        answer = ask(
            session, dossier.me, adhoc(GET_DOCUMENTS, {}, return_type="RegistryObject"), clock
        )
        assert answer.errors[0][0] == "XDSRegistryError"

    def test_get_documents_needs_exactly_one_kind_of_name(
        self, session: Session, clock: FrozenClock, dossier: Dossier
    ) -> None:
        both = {
            "$XDSDocumentEntryEntryUUID": quoted(f"urn:uuid:{uuid.uuid4()}"),
            "$XDSDocumentEntryUniqueId": quoted("1.2.3"),
        }
        answer = ask(session, dossier.me, adhoc(GET_DOCUMENTS, both), clock)
        assert answer.errors[0][0] == "XDSStoredQueryParamNumber"


class TestGetQueries:
    def test_get_documents_by_unique_id_and_entry_uuid(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        document = make_document(
            session,
            store,
            clock,
            actor=dossier.author,
            patient_id=dossier.patient.id,
            master_identifier="urn:oid:1.2.250.1.999.1.42",
        )
        by_unique = adhoc(
            GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": quoted("1.2.250.1.999.1.42")}
        )
        assert ask(session, dossier.me, by_unique, clock).ids("ExtrinsicObject") == [
            f"urn:uuid:{document.id}"
        ]
        by_uuid = adhoc(
            GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": quoted(f"urn:uuid:{document.id}")}
        )
        assert ask(session, dossier.me, by_uuid, clock).counts == {"documents": 1}
        stranger = professional_actor(make_professional(session, clock))
        assert ask(session, stranger, by_uuid, clock).counts == {}
        nowhere = adhoc(
            GET_DOCUMENTS, {"$XDSDocumentEntryEntryUUID": quoted(f"urn:uuid:{uuid.uuid4()}")}
        )
        assert ask(session, dossier.me, nowhere, clock).counts == {}

    def test_submission_set_and_its_contents(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        submission, documents = submit(
            session,
            store,
            clock,
            actor=dossier.author,
            patient_id=dossier.patient.id,
            documents=[lab_metadata(clock), lab_metadata(clock, title="Autre")],
        )
        by_uuid = {"$XDSSubmissionSetEntryUUID": f"'urn:uuid:{submission.id}'"}
        answer = ask(session, dossier.me, adhoc(GET_SUBMISSION_SET_AND_CONTENTS, by_uuid), clock)
        assert answer.counts == {"submission_sets": 1, "documents": 2, "associations": 2}
        by_unique = {
            "$XDSSubmissionSetUniqueId": f"'{mapping.unique_id(submission.master_identifier)}'"
        }
        answer = ask(session, dossier.me, adhoc(GET_SUBMISSION_SET_AND_CONTENTS, by_unique), clock)
        assert answer.counts == {"submission_sets": 1, "documents": 2, "associations": 2}
        sets = ask(
            session,
            dossier.me,
            adhoc(
                FIND_SUBMISSION_SETS,
                {
                    "$XDSSubmissionSetPatientId": f"'{patient_cx(dossier.patient)}'",
                    "$XDSSubmissionSetStatus": APPROVED,
                },
            ),
            clock,
        )
        assert sets.ids("RegistryPackage") == [f"urn:uuid:{submission.id}"]
        of_document = adhoc(GET_SUBMISSION_SETS, {"$uuid": quoted(f"urn:uuid:{documents[0].id}")})
        assert ask(session, dossier.me, of_document, clock).counts == {
            "submission_sets": 1,
            "associations": 1,
        }
        associations = adhoc(GET_ASSOCIATIONS, {"$uuid": quoted(f"urn:uuid:{submission.id}")})
        assert ask(session, dossier.me, associations, clock).counts == {"associations": 2}

    def test_related_documents_and_get_all(
        self, session: Session, store: FilesystemDocumentStore, clock: FrozenClock, dossier: Dossier
    ) -> None:
        old = make_document(
            session, store, clock, actor=dossier.author, patient_id=dossier.patient.id
        )
        new = _replace(session, store, clock, dossier, old)
        related = adhoc(
            GET_RELATED_DOCUMENTS,
            {
                "$XDSDocumentEntryEntryUUID": f"'urn:uuid:{old.id}'",
                "$AssociationTypes": quoted(v.HAS_MEMBER, v.RPLC),
            },
        )
        answer = ask(session, dossier.me, related, clock)
        assert answer.counts == {"documents": 2, "associations": 1}
        (association,) = answer.element.iter(f"{{{v.RIM}}}Association")
        assert (association.get("sourceObject"), association.get("targetObject")) == (
            f"urn:uuid:{new.id}",
            f"urn:uuid:{old.id}",
        )
        with_associations = adhoc(
            GET_DOCUMENTS_AND_ASSOCIATIONS, {"$XDSDocumentEntryEntryUUID": f"'urn:uuid:{new.id}'"}
        )
        # The replacement's RPLC, and its submission set's HasMember.
        assert ask(session, dossier.me, with_associations, clock).counts == {
            "documents": 1,
            "associations": 2,
        }
        everything = adhoc(
            GET_ALL,
            {
                "$patientId": f"'{patient_cx(dossier.patient)}'",
                "$XDSDocumentEntryStatus": APPROVED_OR_DEPRECATED,
                "$XDSSubmissionSetStatus": APPROVED,
                "$XDSFolderStatus": APPROVED,
            },
        )
        assert ask(session, dossier.me, everything, clock).counts == {
            "documents": 2,
            "submission_sets": 1,
            "associations": 2,
        }


def _replace(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    dossier: Dossier,
    old: Document,
) -> Document:
    """A new version of ``old`` under a submission set of its own."""
    _, (new,) = publication.submit(
        session,
        open_dossier(
            session, dossier.author, dossier.patient.id, purposes.PUBLISH_DOCUMENTS, clock=clock
        ),
        store,
        submission_set=SubmissionSetMetadata(source_id="1.2.3.4"),
        documents=[(lab_metadata(clock, replaces_id=old.id, title="Corrigé"), b"Hemoglobine 13.9")],
    )
    return new
