"""Reading a CDA R2 header (HL7 CDA R2 §4.2): safely, into frozen values, or a named refusal."""

from __future__ import annotations

import datetime as dt

import pytest

from carnet.cda.errors import CdaRefused
from carnet.cda.header import InstanceId, read_header, read_instant
from carnet.cda.parsing import LARGEST_CDA, claims_cda
from factories.cda import CCD, dataset, minimal

UTC = dt.UTC


def refusal(content: bytes) -> CdaRefused:
    with pytest.raises(CdaRefused) as caught:
        read_header(content)
    return caught.value


class TestTheDatasetHeaders:
    def test_a_ccd_header_is_read_whole(self) -> None:
        header = read_header(CCD.read_bytes())

        assert header.document_id == InstanceId("2.16.840.1.113883.19.5.99999.1", "TT988")
        assert (header.code.code, header.code.system_uri) == ("34133-9", "http://loinc.org")
        assert header.title == "Patient Chart Summary"
        assert header.effective_time.at == dt.datetime(2013, 8, 15, 18, 30, tzinfo=UTC)
        assert header.effective_time.precision == "minute"
        assert header.confidentiality == "N"
        assert header.language == "en-US"
        assert header.set_id == InstanceId("2.16.840.1.113883.19.5.99999.19", "sTT988")
        assert header.version == 1
        assert header.patient_ids == (InstanceId("2.16.840.1.113883.4.1", "444222222"),)
        assert header.patient_name == "Eve Betterhalf"
        assert [a.person for a in header.authors] == ["Patricia Patty Primary"]
        assert header.custodian.organisation == "Good Health HIE"
        assert header.custodian.ids == (InstanceId("2.16.840.1.113883.4.6", "321CX"),)
        assert header.replaces == ()
        assert header.body == "structured"

    def test_a_new_version_names_the_set_and_the_document_it_replaces(self) -> None:
        header = read_header(dataset("Care_Plan__Care_Plan.xml").read_bytes())

        assert header.set_id == InstanceId("004bb033-b948-4f4c-b5bf-a8dbd7d8dd40")
        assert header.version == 2
        assert header.replaces == (InstanceId("223769be-f6ee-4b04-a0ce-b56ae998c880"),)
        assert header.code.code == "52521-2"

    def test_a_very_restricted_document_without_a_set(self) -> None:
        header = read_header(dataset("170.314B2_Amb_CCD.ccda").read_bytes())

        assert header.confidentiality == "V"
        assert (header.set_id, header.version) == (None, None)
        assert header.effective_time.at == dt.datetime(2013, 1, 30, 13, 0, 51, tzinfo=UTC)
        assert len(header.authors) == 2
        assert header.custodian.organisation == "Get Well Clinic"

    def test_an_unstructured_document_with_two_authors(self) -> None:
        header = read_header(
            dataset("Unstructured__CDA_with_Embedded_PDF_2__CDA_with_Embedded_PDF.xml").read_bytes()
        )

        assert header.body == "nonxml"
        assert header.version == 16
        assert header.code.code == "81334-5"
        assert [a.person for a in header.authors] == [
            "Roger Rienman McBee",
            "MyDirectives.com v2.0",
        ]
        assert header.effective_time.at == dt.datetime(2014, 7, 31, 23, 22, tzinfo=UTC)

    def test_an_imaging_report_from_2005(self) -> None:
        header = read_header(
            dataset("Diagnostic_Imaging_Report__Diagnostic_Imaging_Report.xml").read_bytes()
        )

        assert header.code.code == "18748-4"
        assert header.effective_time.at == dt.datetime(2005, 3, 29, 22, 15, 4, tzinfo=UTC)
        assert header.patient_ids == (InstanceId("2.16.840.1.113883.19.5", "12345"),)
        assert header.custodian.organisation == "Good Health Clinic"


class TestSafeParsing:
    def test_a_doctype_is_refused_before_it_is_read(self) -> None:
        content = minimal().replace(
            b"<ClinicalDocument",
            b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<ClinicalDocument',
            1,
        )
        assert refusal(content).reason == "dtd"

    def test_a_billion_laughs_is_refused(self) -> None:
        laughs = b'<!DOCTYPE l [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
        content = minimal(header="<title>&b;</title>").replace(
            b"<ClinicalDocument", laughs + b"<ClinicalDocument", 1
        )
        assert refusal(content).reason == "dtd"

    def test_xml_that_is_not_well_formed_is_named_so(self) -> None:
        error = refusal(b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id>")
        assert error.reason == "not-xml"
        assert "not well-formed" in error.message

    def test_a_clinical_document_outside_the_v3_namespace(self) -> None:
        error = refusal(minimal().replace(b'xmlns="urn:hl7-org:v3"', b""))
        assert error.reason == "namespace"
        assert "urn:hl7-org:v3" in error.message

    def test_a_document_over_the_limit_is_not_parsed(self) -> None:
        content = minimal(header=f"<!-- {'x' * LARGEST_CDA} -->")
        assert refusal(content).reason == "too-large"

    def test_the_smallest_document_is_read(self) -> None:
        header = read_header(minimal())
        assert header.language is None
        assert header.effective_time.at == dt.datetime(2026, 5, 30, 8, 0, tzinfo=UTC)


class TestStructure:
    @pytest.mark.parametrize(
        ("change", "named"),
        [
            ((b"<typeId", b"<realmCode code='LU'/><typeId"), None),
            ((b'extension="POCD_HD000040"', b'extension="POCD_HD000041"'), "typeId"),
            ((b'<id root="1.2.3.4" extension="doc-1"/>', b""), "needs id"),
            ((b'<code code="11502-2"', b'<code nullFlavor="UNK" c="11502-2"'), "code"),
            ((b'<effectiveTime value="20260530100000+0200"/>', b""), "effectiveTime"),
            ((b'<confidentialityCode code="N"', b'<confidentialityCode code="X"'), "N, R or V"),
            ((b"author>", b"informant>"), "author"),
            ((b"custodian>", b"legalAuthenticator>"), "custodian"),
            ((b"<title>A</title>", b"<title>A</title><foo/>"), None),
        ],
        ids=[
            "realm-first",
            "type-id",
            "id",
            "code",
            "effective-time",
            "confidentiality",
            "author",
            "custodian",
            "section-inside",
        ],
    )
    def test_each_rule_is_named(self, change: tuple[bytes, bytes], named: str | None) -> None:
        content = minimal().replace(*change)
        if named is None:
            read_header(content)
            return
        error = refusal(content)
        assert named in error.message
        assert error.reason == "structure"

    def test_elements_out_of_the_schema_order_are_refused(self) -> None:
        content = minimal(header='<languageCode code="fr"/>').replace(
            b'<languageCode code="fr"/>', b""
        )
        content = content.replace(b"<typeId", b'<languageCode code="fr"/><typeId', 1)
        assert "languageCode" in refusal(content).message

    def test_a_version_without_its_set_is_refused(self) -> None:
        error = refusal(minimal(header='<versionNumber value="2"/>'))
        assert "setId and versionNumber" in error.message

    def test_a_version_that_is_no_number_is_refused(self) -> None:
        error = refusal(minimal(header='<setId root="1.2"/><versionNumber value="two"/>'))
        assert "versionNumber" in error.message

    def test_two_bodies_are_refused(self) -> None:
        body = (
            "<structuredBody><component><section/></component></structuredBody>"
            "<nonXMLBody><text>a</text></nonXMLBody>"
        )
        assert "exactly one" in refusal(minimal(body=body)).message

    def test_extensions_in_other_namespaces_are_left_to_their_schema(self) -> None:
        content = minimal(header='<sdtc:statusCode xmlns:sdtc="urn:hl7-org:sdtc" code="active"/>')
        assert read_header(content).confidentiality == "N"


class TestTimes:
    @pytest.mark.parametrize(
        ("value", "at", "precision"),
        [
            ("2013", dt.datetime(2013, 1, 1, tzinfo=UTC), "year"),
            ("20130815", dt.datetime(2013, 8, 15, tzinfo=UTC), "day"),
            ("201308151030-0800", dt.datetime(2013, 8, 15, 18, 30, tzinfo=UTC), "minute"),
            (
                "20130815103005.25+0130",
                dt.datetime(2013, 8, 15, 9, 0, 5, 250000, tzinfo=UTC),
                "second",
            ),
        ],
    )
    def test_hl7_ts_values(self, value: str, at: dt.datetime, precision: str) -> None:
        instant = read_instant(value, "effectiveTime")
        assert (instant.at, instant.precision) == (at, precision)

    @pytest.mark.parametrize("value", ["2013-08-15", "20131315", "20130815+2500", "yesterday"])
    def test_what_is_no_ts_is_named(self, value: str) -> None:
        with pytest.raises(CdaRefused, match="effectiveTime"):
            read_instant(value, "effectiveTime")

    def test_a_time_without_offset_covers_every_zone(self) -> None:
        instant = read_instant("201308151030", "effectiveTime")
        assert instant.covers(dt.datetime(2013, 8, 15, 18, 30, 30, tzinfo=UTC))
        assert not instant.covers(dt.datetime(2013, 8, 17, 10, 30, tzinfo=UTC))


class TestWhatIsTakenForCda:
    @pytest.mark.parametrize(
        ("mime_type", "content", "taken"),
        [
            ("text/xml", b'<?xml version="1.0"?>\n<ClinicalDocument xmlns="urn:hl7-org:v3">', True),
            ("application/xml; charset=utf-8", b"<cda:ClinicalDocument xmlns:cda='x'>", True),
            ("application/hl7-cda+xml", b"<ClinicalDocument/>", True),
            ("text/xml", b"<note>a ClinicalDocument is a CDA</note>", False),
            ("text/plain", b"<ClinicalDocument>", False),
            ("application/fhir+xml", b"<ClinicalDocument>", False),
        ],
    )
    def test_an_xml_type_and_a_clinical_document_tag(
        self, mime_type: str, content: bytes, taken: bool
    ) -> None:
        assert claims_cda(mime_type, content) is taken
