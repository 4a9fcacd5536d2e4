"""ITI-41 Provide and Register and ITI-43 Retrieve over SOAP 1.2, driven as an XDS.b Document
Source and Consumer would: raw HTTP with plain and MTOM envelopes (zeep over the WSDL:
``test_zeep_client.py``).

IHE ITI TF-2 3.41 and 3.43; the metadata-error cases are the NIST XDS Toolkit's testplans.
"""

from __future__ import annotations

import base64
import json

import pytest
from lxml import etree
from sqlalchemy import select

from carnet.audit.models import AuditAction, AuditEvent
from carnet.clinical.models import ClinicalFact, FactKind
from carnet.documents.models import (
    Document,
    DocumentAssociation,
    DocumentStatus,
    Folder,
)
from carnet.xds import mapping
from carnet.xds.vocabulary import REPOSITORY_UNIQUE_ID
from clinical.sources import synthea_document, synthea_files
from factories.actors import patient_actor
from factories.auth import bearer
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient
from factories.xds import (
    MY_DOCUMENT,
    PROVIDE,
    RETRIEVE,
    RIM,
    SOAP,
    XDSB,
    Source,
    document_unique_ids,
    entry_ids,
    nist_submission,
    patient_cx,
    plain,
    registry_status,
    response_parts,
    retrieve_request,
)

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
SINGLE = "ReposAcceptanceTest-1111__SubmitSingleDoc__single_doc.xml"
PDF = (
    b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj<<>>endobj\n\x00\xff\r\n--not-a-boundary\r\n%%EOF\r\n"
)


def status_of(source: Source, document: Document) -> DocumentStatus:
    found = source.session.get(Document, (document.patient_id, document.id))
    assert found is not None
    return found.status


def single_doc(source: Source, content: bytes = MY_DOCUMENT, **values: str) -> etree._Element:
    return nist_submission(
        SINGLE, patient=source.cx, documents={"myDocId1": content}, values=values
    )


class TestProvide:
    def test_plain_submission_is_published_as_mhd_publishes(self, source: Source) -> None:
        request = single_doc(source)
        (unique_id,) = document_unique_ids(request)
        assert registry_status(source.send(request)) == (SUCCESS, [])
        (document,) = source.session.scalars(select(Document)).all()
        assert document.master_identifier == f"urn:oid:{unique_id}"
        assert document.type_code == "11502-2"
        assert document.mime_type == "text/plain"
        assert document.author_organisation_id == source.lab.organisation_id
        # Found by ITI-67 with the XDS identifiers, retrieved by ITI-68 byte for byte.
        me = bearer(source.served, source.session, source.patient, source.clock, "patient/*.rs")
        found = source.served.client.get(
            "/fhir/DocumentReference",
            params={"patient": f"Patient/{source.patient.person_id}"},
            headers=me,
        ).json()
        (entry,) = found["entry"]
        assert entry["resource"]["masterIdentifier"]["value"] == f"urn:oid:{unique_id}"
        binary = source.served.client.get(
            entry["resource"]["content"][0]["attachment"]["url"], headers=me
        )
        assert binary.content == MY_DOCUMENT
        # And the publication is on the audit trail, as ITI-65's is.
        actions = source.session.scalars(
            select(AuditEvent.action).where(AuditEvent.patient_id == document.patient_id)
        ).all()
        assert AuditAction.PUBLISH in actions

    def test_symbolic_ids_are_replaced_and_uuids_kept(self, source: Source) -> None:
        request = single_doc(source)
        kept = "urn:uuid:0c287d32-01e3-4d87-9953-9fcc9404eb21"
        for element in request.iter():
            for attribute in (
                "id",
                "classifiedObject",
                "registryObject",
                "sourceObject",
                "targetObject",
            ):
                if element.get(attribute) == "myDocId1":
                    element.set(attribute, kept)
        next(request.iter(f"{{{XDSB}}}Document")).set("id", kept)
        assert registry_status(source.send(request))[0] == SUCCESS
        (document,) = source.session.scalars(select(Document)).all()
        assert mapping.entry_uuid(document.id) == kept

    def test_mtom_request_and_response_carry_bytes_unchanged(self, source: Source) -> None:
        request = nist_submission(SINGLE, patient=source.cx, documents={"myDocId1": PDF})
        for entry in request.iter("{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExtrinsicObject"):
            entry.set("mimeType", "application/pdf")
        (unique_id,) = document_unique_ids(request)
        answer = source.send(request, packaging="mtom")
        assert answer.headers["content-type"].startswith("multipart/related")
        assert registry_status(answer) == (SUCCESS, [])
        retrieved = source.send(
            retrieve_request(unique_id, repository=REPOSITORY_UNIQUE_ID),
            RETRIEVE,
            packaging="mtom",
            headers=source.reader(),
        )
        assert registry_status(retrieved) == (SUCCESS, [])
        parts = response_parts(retrieved)
        root = etree.fromstring(parts[0][1])
        include = next(root.iter("{http://www.w3.org/2004/08/xop/include}Include"))
        assert include.get("href") == f"cid:{parts[1][0]}"
        assert parts[1][1] == PDF
        assert next(root.iter(f"{{{XDSB}}}mimeType")).text == "application/pdf"

    def test_a_fhir_document_brings_its_facts_as_through_mhd(self, source: Source) -> None:
        """ITI-41 carrying a FHIR document Bundle records its structured facts, as ITI-65 does."""
        alva = next(path for path in synthea_files() if path.name.startswith("Alva958"))
        content = json.dumps(synthea_document(alva)).encode()
        request = single_doc(source, content)
        for entry in request.iter(f"{{{RIM}}}ExtrinsicObject"):
            entry.set("mimeType", "application/fhir+json")
        assert registry_status(source.send(request, packaging="mtom")) == (SUCCESS, [])
        (document,) = source.session.scalars(select(Document)).all()
        facts = source.session.scalars(
            select(ClinicalFact).where(ClinicalFact.document_id == document.id)
        ).all()
        kinds = {fact.kind for fact in facts}
        assert {FactKind.IMMUNIZATION, FactKind.OBSERVATION} <= kinds

    def test_replacement_supersedes_and_mhd_sees_it(self, source: Source) -> None:
        first = single_doc(source)
        assert registry_status(source.send(first))[0] == SUCCESS
        (original,) = source.session.scalars(select(Document)).all()
        replacement = nist_submission(
            "ReposAcceptanceTest-1111__SubmitRplc__single_doc.xml",
            patient=source.cx,
            documents={"myDocId1": b"corrected"},
            values={"original_doc_uuid": mapping.entry_uuid(original.id)},
        )
        assert registry_status(source.send(replacement)) == (SUCCESS, [])
        source.session.expire_all()
        documents = {d.status: d for d in source.session.scalars(select(Document))}
        assert documents[DocumentStatus.SUPERSEDED].id == original.id
        assert documents[DocumentStatus.CURRENT].replaces_id == original.id
        kinds = source.session.scalars(select(DocumentAssociation.kind)).all()
        assert sorted(kinds) == ["HasMember", "HasMember", "RPLC"]

    def test_mhd_replacement_of_an_xds_document(self, source: Source) -> None:
        assert registry_status(source.send(single_doc(source)))[0] == SUCCESS
        (original,) = source.session.scalars(select(Document)).all()
        bundle = provide_bundle(
            by_identifier(source.matricule),
            contents=[b"corrected by MHD"],
            relatesTo=[
                {
                    "code": "replaces",
                    "target": {
                        "reference": "DocumentReference/"
                        + __import__("carnet.fhir.ids", fromlist=["x"]).document_resource_id(
                            original.patient_id, original.id
                        )
                    },
                }
            ],
        )
        answer = source.served.client.post(
            "/fhir",
            json=bundle,
            headers={"Content-Type": "application/fhir+json", **source.headers()},
        )
        assert answer.status_code == 200, answer.text
        source.session.expire_all()
        assert status_of(source, original) is DocumentStatus.SUPERSEDED

    def test_append_and_transform_replace(self, source: Source) -> None:
        assert registry_status(source.send(single_doc(source)))[0] == SUCCESS
        (original,) = source.session.scalars(select(Document)).all()
        values = {"original_doc_uuid": mapping.entry_uuid(original.id)}
        addendum = nist_submission(
            "ReposAcceptanceTest-1112__SubmitApnd__single_doc.xml",
            patient=source.cx,
            documents={"myDocId1": b"addendum"},
            values=values,
        )
        assert registry_status(source.send(addendum)) == (SUCCESS, [])
        (appended,) = source.session.scalars(select(Document).where(Document.id != original.id))
        template = "ReposAcceptanceTest-1112__SubmitXfrmRplc__single_doc.xml"
        transform = nist_submission(
            template,
            patient=source.cx,
            documents={entry_ids(nist_submission(template, patient=None))[0]: b"transformed"},
            values={"apnd_doc_uuid": mapping.entry_uuid(appended.id)},
        )
        assert registry_status(source.send(transform)) == (SUCCESS, [])
        kinds = set(source.session.scalars(select(DocumentAssociation.kind)))
        assert {"APND", "XFRM_RPLC"} <= kinds
        source.session.expire_all()
        # XFRM_RPLC replaced the addendum (ITI TF-3 4.2.2.2.4); the original stays current.
        assert status_of(source, appended) is DocumentStatus.SUPERSEDED
        assert status_of(source, original) is DocumentStatus.CURRENT

    def test_folders_and_filing_an_existing_document(self, source: Source) -> None:
        folder = nist_submission(
            "ReposAcceptanceTest-1113__SubmitFolder__single_fol.xml", patient=source.cx
        )
        assert registry_status(source.send(folder)) == (SUCCESS, [])
        with_document = nist_submission(
            "ReposAcceptanceTest-1113__SubmitFolderwDoc__fol_doc.xml",
            patient=source.cx,
            documents={
                entry_ids(
                    nist_submission(
                        "ReposAcceptanceTest-1113__SubmitFolderwDoc__fol_doc.xml", patient=None
                    )
                )[0]: b"in a folder"
            },
        )
        assert registry_status(source.send(with_document)) == (SUCCESS, [])
        folders = source.session.scalars(select(Folder).order_by(Folder.created_at)).all()
        assert len(folders) == 2
        (document,) = source.session.scalars(select(Document)).all()
        associate = nist_submission(
            "ReposAcceptanceTest-1113__AssociateExistingDEwithExistingFolder__associate.xml",
            patient=source.cx,
            values={
                "fol_uuid": mapping.entry_uuid(folders[0].id),
                "doc1_uuid": mapping.entry_uuid(document.id),
            },
        )
        text = etree.tostring(associate).decode()
        assert "$" not in text, text
        assert registry_status(source.send(associate)) == (SUCCESS, [])
        memberships = source.session.scalars(
            select(DocumentAssociation).where(DocumentAssociation.source_id == folders[0].id)
        ).all()
        assert [m.target_id for m in memberships] == [document.id]


class TestRefusals:
    """Every refusal is a RegistryResponse Failure with the IHE code and the offending id."""

    @pytest.mark.parametrize(
        ("template", "documents", "code"),
        [
            (
                "11981__submit_bad_hash__single_doc.xml",
                {"Document01": MY_DOCUMENT},
                "XDSRepositoryMetadataError",
            ),
            (
                "11981__submit_bad_size__single_doc.xml",
                {"Document01": MY_DOCUMENT},
                "XDSRepositoryMetadataError",
            ),
            ("11983__submit_no_doc__single_doc.xml", {}, "XDSMissingDocument"),
            ("11983__submit_no_metadata__no_doc.xml", {"Document01": MY_DOCUMENT}, None),
            (
                "11998a__sourcePatientId__single_doc.xml",
                {"Document01": MY_DOCUMENT},
                "XDSRegistryMetadataError",
            ),
            (
                "11998a__classCode__single_doc.xml",
                {"Document01": MY_DOCUMENT},
                "XDSRegistryMetadataError",
            ),
            (
                "12376__submit__single_doc.xml",
                {"Document01": MY_DOCUMENT},
                "XDSRegistryMetadataError",
            ),
            # XDR's limited metadata (12375's testplan is an XDR transaction): a registry refuses.
            (
                "12375__submit__single_doc.xml",
                {"Document01": MY_DOCUMENT},
                "XDSRegistryMetadataError",
            ),
        ],
    )
    def test_nist_metadata_errors(
        self, source: Source, template: str, documents: dict[str, bytes], code: str | None
    ) -> None:
        request = nist_submission(
            template,
            patient=source.cx,
            documents=documents,
            values={"patientid": source.cx},
            catalogue_type=True,
        )
        status, errors = registry_status(source.send(request))
        assert status == FAILURE
        assert errors
        if code is not None:
            assert errors[0][0] == code
        assert source.session.scalars(select(Document)).all() == []

    def test_nist_baseline_with_the_catalogue_type_succeeds(self, source: Source) -> None:
        request = nist_submission(
            "11981__submit__single_doc.xml",
            patient=source.cx,
            documents={"Document01": MY_DOCUMENT},
            catalogue_type=True,
        )
        assert registry_status(source.send(request)) == (SUCCESS, [])

    def test_no_metadata_for_a_document_is_named(self, source: Source) -> None:
        request = nist_submission(
            "11983__submit_no_metadata__no_doc.xml",
            patient=source.cx,
            documents={"Document01": MY_DOCUMENT},
        )
        status, errors = registry_status(source.send(request))
        assert status == FAILURE
        assert errors[0][0] in ("XDSMissingDocumentMetadata", "XDSRegistryMetadataError")

    def test_patient_ids_that_differ(self, source: Source) -> None:
        # 11986: <NoPatientId/>, the DocumentEntry's and the SubmissionSet's patients differ.
        request = nist_submission(
            "11986__submit__single_doc.xml", patient=None, documents={"Document01": MY_DOCUMENT}
        )
        status, errors = registry_status(source.send(request))
        assert status == FAILURE
        assert errors[0][0] == "XDSPatientIdDoesNotMatch"

    def test_unknown_patient(self, source: Source) -> None:
        request = nist_submission(
            SINGLE, patient=patient_cx(make_matricule()), documents={"myDocId1": MY_DOCUMENT}
        )
        status, errors = registry_status(source.send(request))
        assert (status, errors[0][0]) == (FAILURE, "XDSUnknownPatientId")

    def test_foreign_assigning_authority(self, source: Source) -> None:
        request = nist_submission(
            SINGLE,
            patient=f"{source.matricule}^^^&1.2.3.4&ISO",
            documents={"myDocId1": MY_DOCUMENT},
        )
        _, errors = registry_status(source.send(request))
        assert errors == [("XDSUnknownPatientId", f"{source.matricule}^^^&1.2.3.4&ISO")]

    def test_the_same_unique_id_twice(self, source: Source) -> None:
        first = single_doc(source)
        (unique_id,) = document_unique_ids(first)
        assert registry_status(source.send(first))[0] == SUCCESS
        again = single_doc(source, content=b"other content")
        for identifier in again.iter(
            "{urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0}ExternalIdentifier"
        ):
            if (
                identifier.get("value", "").startswith("2.25.")
                and identifier.get("identificationScheme")
                == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
            ):
                identifier.set("value", unique_id)
        status, errors = registry_status(source.send(again))
        assert status == FAILURE
        assert errors == [("XDSNonIdenticalHash", unique_id)]

    def test_a_patient_may_not_publish_as_a_lab(self, source: Source) -> None:
        stranger = patient_actor(make_patient(source.session, source.clock))
        headers = bearer(source.served, source.session, stranger, source.clock, "patient/*.cruds")
        status, errors = registry_status(source.send(single_doc(source), headers=headers))
        assert status == FAILURE
        assert errors[0][0] in ("XDSUnknownPatientId", "XDSRegistryError")
        assert source.session.scalars(select(Document)).all() == []


class TestRetrieve:
    def test_several_documents_in_one_request_inline(self, source: Source) -> None:
        two = nist_submission(
            "ReposAcceptanceTest-1113__SubmitTwoDocs__two_doc.xml",
            patient=source.cx,
            documents={},
        )
        ids = entry_ids(two)
        contents = {ids[0]: b"first", ids[1]: b"second"}
        for document_id, content in contents.items():
            etree.SubElement(two, f"{{{XDSB}}}Document", id=document_id).text = base64.b64encode(
                content
            ).decode()
        assert registry_status(source.send(two)) == (SUCCESS, [])
        unique_ids = document_unique_ids(two)
        answer = source.send(
            retrieve_request(*unique_ids, repository=REPOSITORY_UNIQUE_ID),
            RETRIEVE,
            headers=source.reader(),
        )
        assert registry_status(answer) == (SUCCESS, [])
        root = etree.fromstring(answer.content)
        got = {
            response.findtext(f"{{{XDSB}}}DocumentUniqueId"): base64.b64decode(
                response.findtext(f"{{{XDSB}}}Document") or ""
            )
            for response in root.iter(f"{{{XDSB}}}DocumentResponse")
        }
        assert got == {unique_ids[0]: b"first", unique_ids[1]: b"second"}

    def test_an_mhd_document_is_retrieved_by_iti43(self, source: Source) -> None:
        master = "urn:oid:1.2.3.4.5.6"
        bundle = provide_bundle(
            by_identifier(source.matricule), contents=[b"from MHD"], master_identifiers=[master]
        )
        answer = source.served.client.post(
            "/fhir",
            json=bundle,
            headers={"Content-Type": "application/fhir+json", **source.headers()},
        )
        assert answer.status_code == 200, answer.text
        retrieved = source.send(
            retrieve_request("1.2.3.4.5.6", repository=REPOSITORY_UNIQUE_ID),
            RETRIEVE,
            headers=source.reader(),
        )
        assert registry_status(retrieved) == (SUCCESS, [])
        root = etree.fromstring(retrieved.content)
        assert base64.b64decode(root.findtext(f".//{{{XDSB}}}Document") or "") == b"from MHD"

    def test_a_strangers_retrieve_is_a_missing_document_and_audited(self, source: Source) -> None:
        request = single_doc(source)
        (unique_id,) = document_unique_ids(request)
        assert registry_status(source.send(request))[0] == SUCCESS
        stranger = patient_actor(make_patient(source.session, source.clock))
        answer = source.send(
            retrieve_request(unique_id, repository=REPOSITORY_UNIQUE_ID),
            RETRIEVE,
            headers=source.headers(stranger, "patient/*.rs"),
        )
        assert registry_status(answer) == (FAILURE, [("XDSMissingDocument", unique_id)])
        absent = source.send(
            retrieve_request("1.2.999", repository=REPOSITORY_UNIQUE_ID),
            RETRIEVE,
            headers=source.reader(),
        )
        assert registry_status(absent) == (FAILURE, [("XDSMissingDocument", "1.2.999")])
        refused = source.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == AuditAction.RETRIEVE, AuditEvent.outcome == "denied"
            )
        ).all()
        assert refused

    def test_partial_success_and_unknown_repository(self, source: Source) -> None:
        request = single_doc(source)
        (unique_id,) = document_unique_ids(request)
        assert registry_status(source.send(request))[0] == SUCCESS
        answer = source.send(
            retrieve_request(unique_id, "1.2.404", repository=REPOSITORY_UNIQUE_ID),
            RETRIEVE,
            headers=source.reader(),
        )
        assert registry_status(answer) == (PARTIAL, [("XDSMissingDocument", "1.2.404")])
        other = source.send(
            retrieve_request(unique_id, repository="1.2.3"), RETRIEVE, headers=source.reader()
        )
        assert registry_status(other) == (FAILURE, [("XDSUnknownRepositoryId", "1.2.3")])


class TestSoap:
    def test_without_authentication_a_soap_fault(self, source: Source) -> None:
        answer = source.send(single_doc(source), headers={})
        assert answer.status_code == 401
        assert "WWW-Authenticate" in answer.headers
        assert etree.fromstring(answer.content).find(f".//{{{SOAP}}}Fault") is not None

    def test_not_xml_and_dtd_and_unknown_action(self, source: Source) -> None:
        client, headers = source.served.client, source.headers()
        garbage = client.post(
            "/xds/repository",
            content=b"<nope",
            headers={"Content-Type": "application/soap+xml", **headers},
        )
        assert garbage.status_code == 400
        assert b"Fault" in garbage.content
        bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>'
        refused = client.post(
            "/xds/repository",
            content=bomb,
            headers={"Content-Type": "application/soap+xml", **headers},
        )
        assert refused.status_code == 400
        data, content_type = plain(single_doc(source), "urn:ihe:iti:2007:RegistryStoredQuery")
        wrong = client.post(
            "/xds/repository", content=data, headers={"Content-Type": content_type, **headers}
        )
        assert wrong.status_code == 400
        assert b"ActionNotSupported" in wrong.content

    def test_relates_to_the_request(self, source: Source) -> None:
        data, content_type = plain(single_doc(source), PROVIDE)
        message_id = etree.fromstring(data).findtext(
            ".//{http://www.w3.org/2005/08/addressing}MessageID"
        )
        answer = source.served.client.post(
            "/xds/repository",
            content=data,
            headers={"Content-Type": content_type, **source.headers()},
        )
        root = etree.fromstring(answer.content)
        assert root.findtext(".//{http://www.w3.org/2005/08/addressing}RelatesTo") == message_id
        assert (
            root.findtext(".//{http://www.w3.org/2005/08/addressing}Action") == PROVIDE + "Response"
        )


def test_the_wsdl_is_served(source: Source) -> None:
    answer = source.served.client.get("/xds/?wsdl")
    assert answer.status_code == 200
    root = etree.fromstring(answer.content)
    addresses = [
        a.get("location") for a in root.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    ]
    assert all(
        address and address.endswith(("/xds/repository", "/xds/registry")) for address in addresses
    )
