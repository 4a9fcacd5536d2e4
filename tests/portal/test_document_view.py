"""The document viewer's CDA renditions: CDA R2 laid out by Carnet's stylesheet, against the
shared datasets and against hostile documents.

What a reader sees is checked on the rendered HTML read back by a browser-like parser: its text,
its headings, and that nothing active (script, event attribute, style, link, image) is in it.
FHIR, HL7 v2 and plain text are ``test_document_view_fhir.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from carnet.portal import document_cda, document_rendition, document_view
from carnet.portal.document_view import render_document
from conftest import DATASETS
from factories.renditions import headings, rendered, text_of

CDA_FILES = sorted(
    [
        *(DATASETS / "hl7-c-cda-examples").glob("*.xml"),
        *(DATASETS / "ms-fhir-converter" / "ccda").glob("*.ccda"),
    ]
)


# Implementation-guide fragments that use the xsi: prefix without declaring it: not XML.
NOT_WELL_FORMED = {
    "Guide_Examples__Entry_Reference_2.16.840.1.113883.10.20.22.4.122__Entry_Reference_Example.xml",
    "Guide_Examples__Transfer_Summary__V2__2.16.840.1.113883.10.20.22.1.13__Transfer_Summary_"
    "participant__Support__Example.xml",
    "Health_Concerns__Health_Concerns_Link_to_Problems_Section__Health_Concerns_Link_to_Problems_"
    "Section_C-CDA2.1.xml",
    "Health_Concerns__Health_Concerns_Link_to_Problems_Section_with_linkHTML__Health_Concerns_"
    "Link_to_Problems_Section_with_linkHTML_C-CDA2.1.xml",
    "Plan_of_Treatment__Planned_Encounter_-_Referral__Planned_Encounter_-_Reason_for_Referral_"
    "C-CDAR2.1.xml",
}
# Unstructured documents whose nonXMLBody embeds a PDF: shown as that PDF (tests/cda).
EMBEDDED_PDF = {
    "Unstructured__CDA_with_Embedded_PDF_1__Unstructured_Document_embed.xml",
    "Unstructured__CDA_with_Embedded_PDF_2__CDA_with_Embedded_PDF.xml",
}


def cda(body: str, *, header: str = "", attributes: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xhtml="http://www.w3.org/1999/xhtml" {attributes}>
  <title>Compte rendu de consultation</title>
  <effectiveTime value="20260315123000+0100"/>
  {header}
  <component><structuredBody>{body}</structuredBody></component>
</ClinicalDocument>""".encode()


def section(title: str, text: str, nested: str = "") -> str:
    return (
        f"<component><section><title>{title}</title><text>{text}</text>{nested}</section>"
        "</component>"
    )


class TestDatasetCda:
    def test_the_datasets_hold_the_documents_these_tests_expect(self) -> None:
        names = {path.name for path in CDA_FILES}
        assert len(CDA_FILES) >= 34
        assert names >= NOT_WELL_FORMED

    @pytest.mark.parametrize(
        "path",
        [p for p in CDA_FILES if p.name not in NOT_WELL_FORMED | EMBEDDED_PDF],
        ids=lambda p: p.name[:60],
    )
    def test_every_dataset_cda_renders_its_title_and_sections(self, path: Path) -> None:
        source = etree.parse(str(path))
        title = " ".join(source.xpath("string(/*/*[local-name()='title'])").split())
        section_titles = [
            " ".join(t.split())
            for t in source.xpath(
                "//*[local-name()='section']/*[local-name()='title']/text()[normalize-space()]"
            )
        ]
        unstructured = bool(source.xpath("//*[local-name()='nonXMLBody']"))

        root = rendered(render_document("text/xml", path.read_bytes(), language="en"))

        shown = headings(root)
        if title:
            assert shown[0] == title
        for section_title in section_titles:
            assert section_title in shown
        if unstructured:
            assert "Content" in shown[1:]
        # Every section is laid out, titled or not (an untitled one is named by its code).
        sections = source.xpath("//*[local-name()='section']")
        assert len(root.findall(".//section")) == len(sections) + unstructured

    def test_the_patient_header_of_a_ccd_is_readable(self) -> None:
        path = DATASETS / "hl7-c-cda-examples" / "CCD__CCD_1__CCD.xml"

        root = rendered(render_document("application/xml", path.read_bytes(), language="en"))

        facts = {
            dt.text_content(): [dd.text_content() for dd in dt.itersiblings("dd")][:1]
            for dt in root.iter("dt")
        }
        assert facts["Patient"] == ["Eve Betterhalf"]
        assert facts["Birth date"] == ["May 1, 1975"]
        assert facts["Gender"] == ["Female"]
        assert "444222222" in facts["Identifiers"][0]
        # Babel puts a narrow no-break space before AM: compare the words.
        assert facts["Date"][0].split() == ["Aug", "15,", "2013", "10:30", "AM", "(UTC-08:00)"]
        assert "Patricia Patty Primary" in facts["Author"][0]
        assert facts["Custodian"] == ["Good Health HIE"]
        assert headings(root)[:3] == [
            "Patient Chart Summary",
            "ADVANCE DIRECTIVES",
            "ALLERGIES AND ADVERSE REACTIONS",
        ]
        assert "Penicillin" in text_of(root)

    def test_an_embedded_plain_text_body_is_decoded_and_shown(self) -> None:
        path = (
            DATASETS
            / "hl7-c-cda-examples"
            / "Unstructured__CDA_with_Embedded_Text_plain__CDA_Embedded_Text_Plain_Surgical_"
            "Consult.xml"
        )

        root = rendered(render_document("text/xml", path.read_bytes(), language="en"))

        assert "Chronic cervical pain, stable symptomatology." in text_of(root)

    def test_an_embedded_pdf_body_is_shown_as_its_pdf(self) -> None:
        path = (
            DATASETS
            / "hl7-c-cda-examples"
            / "Unstructured__CDA_with_Embedded_PDF_1__Unstructured_Document_embed.xml"
        )

        rendition = render_document("text/xml", path.read_bytes(), language="en")

        assert rendition.kind == "pages"
        assert rendition.pages
        assert rendition.html is None  # the base64 of the PDF never reaches the page as text

    @pytest.mark.parametrize("name", sorted(NOT_WELL_FORMED), ids=lambda n: n[:60])
    def test_a_dataset_fragment_that_is_not_xml_is_shown_as_its_source(self, name: str) -> None:
        content = (DATASETS / "hl7-c-cda-examples" / name).read_bytes()

        rendition = render_document("text/xml", content, language="en")

        assert rendition.kind == "text"
        assert rendition.text == content.decode("utf-8")
        assert rendition.note is not None

    def test_a_clinical_document_written_without_its_namespace_is_laid_out(self) -> None:
        path = (
            DATASETS
            / "hl7-c-cda-examples"
            / "Guide_Examples__US_Realm_Header__V3__2.16.840.1.113883.10.20.22.1.1__US_Realm_"
            "Header__V3__Example.xml"
        )

        root = rendered(render_document("text/xml", path.read_bytes(), language="en"))

        assert headings(root) == ["Patient Chart Summary"]
        assert "Sep 15, 2012" in text_of(root)


class TestCdaNarrative:
    def test_the_narrative_block_becomes_html(self) -> None:
        content = cda(
            section(
                "Examen",
                """<paragraph><caption>Motif</caption>Douleur
                   <content styleCode="Bold">aiguë</content>
                   <content styleCode="Italics Underline">gauche</content><br/>depuis hier
                   </paragraph>
                   <list listType="ordered"><item>Premier</item><item>Second</item></list>
                   <table><thead><tr><th>Analyse</th><td>Valeur</td></tr></thead>
                   <tbody><tr><th>Glycémie</th><td colspan="2">5,4 mmol/L</td></tr></tbody></table>
                   <linkHtml href="https://example.org/guide">le guide</linkHtml>
                   <linkHtml href="#problem1">le problème</linkHtml>
                   <renderMultiMedia referencedObject="IMG1">
                     <caption>Radio du thorax</caption></renderMultiMedia>""",
                nested=section("Détail", "<paragraph>Sous-section</paragraph>"),
            )
        )

        root = rendered(render_document("application/hl7-v3+xml", content, language="fr"))

        assert headings(root) == ["Compte rendu de consultation", "Examen", "Détail"]
        assert root.find(".//section/section/h4").text == "Détail"
        assert [s.text for s in root.iter("strong") if s.text] == ["Motif", "aiguë"]
        assert root.find(".//em/u").text == "gauche"
        assert root.find(".//p/br") is not None
        assert [li.text for li in root.find(".//ol")] == ["Premier", "Second"]
        table = root.find(".//div[@class='table-wrap']/table")
        assert [(th.text, th.get("scope")) for th in table.iter("th")] == [
            ("Analyse", "col"),
            ("Valeur", "col"),
            ("Glycémie", "row"),
        ]
        assert table.find(".//td").get("colspan") == "2"
        text = text_of(root)
        assert "le guide (https://example.org/guide)" in text
        assert "le problème" in text
        assert "#problem1" not in text
        assert "[Contenu multimédia non affiché: Radio du thorax]" in text
        assert "15 mars 2026 12:30 (UTC+01:00)" in text

    def test_the_encounter_and_the_author_are_in_the_header(self) -> None:
        header = """
          <recordTarget><patientRole>
            <id extension="1 84 12 75 108 123 45" root="1.2.250.1.213.1.4.8"/>
            <patient><name><given>Marie</given><given>Louise</given><family>Martin</family></name>
              <administrativeGenderCode code="F"/><birthTime value="19840229"/></patient>
          </patientRole></recordTarget>
          <author><time value="20260315"/><assignedAuthor><assignedPerson><name>
            <prefix>Dr</prefix><given>Paul</given><family>Durand</family></name></assignedPerson>
            <representedOrganization><name>Clinique du Lac</name></representedOrganization>
          </assignedAuthor></author>
          <custodian><assignedCustodian><representedCustodianOrganization><name>Hôpital Nord</name>
          </representedCustodianOrganization></assignedCustodian></custodian>
          <componentOf><encompassingEncounter><code displayName="Hospitalisation"/>
            <effectiveTime><low value="20260310"/><high value="20260315"/></effectiveTime>
            <location><healthCareFacility><location><name>Cardiologie</name></location>
            </healthCareFacility></location>
          </encompassingEncounter></componentOf>"""

        root = rendered(
            render_document("text/xml", cda(section("A", "a"), header=header), language="fr")
        )

        facts = {dt.text: dt.getnext().text_content() for dt in root.iter("dt")}
        assert facts["Patient"] == "Marie Louise Martin"
        assert facts["Date de naissance"] == "29 févr. 1984"
        assert facts["Sexe"] == "Féminin"
        assert facts["Identifiants"] == "1 84 12 75 108 123 45 (1.2.250.1.213.1.4.8)"
        assert facts["Auteur"] == "Dr Paul Durand, Clinique du Lac, 15 mars 2026"
        assert facts["Responsable de la conservation"] == "Hôpital Nord"
        assert facts["Prise en charge"] == "Hospitalisation, 10 mars 2026 \N{EN DASH} 15 mars 2026"
        assert facts["Lieu"] == "Cardiologie"

    def test_scripts_event_attributes_styles_and_javascript_links_are_not_rendered(self) -> None:
        content = cda(
            section(
                'Résultats<content onmouseover="steal()">!</content>',
                """<paragraph onclick="steal()" style="color:red" styleCode="Bold">Texte sûr
                     <script>alert('narrative')</script>
                     <xhtml:script>alert('xhtml')</xhtml:script>
                     <xhtml:img src="x" onerror="alert('img')"/>
                     <xhtml:iframe src="https://evil.example"/>
                     <linkHtml href="javascript:alert('link')" onclick="x()">cliquez ici</linkHtml>
                     <linkHtml href=" JaVaScRiPt:alert(1)">encore</linkHtml>
                   </paragraph>
                   <table style="width:1px"><tbody>
                     <tr><td onmouseover="x()">cellule</td></tr></tbody></table>""",
            ),
            attributes="onload=\"alert('root')\"",
        )

        rendition = render_document("text/xml", content, language="fr")

        root = rendered(rendition)
        markup = str(rendition.html)
        assert "alert" not in markup
        assert "steal" not in markup
        text = text_of(root)
        assert "Texte sûr" in text
        assert "cliquez ici" in text
        assert "encore" in text
        assert "cellule" in text

    def test_markup_inside_text_is_shown_as_text_never_as_markup(self) -> None:
        content = cda(
            section(
                "<![CDATA[<script>alert(1)</script><b>x</b>]]>",
                "&lt;img src=x onerror=alert(1)&gt;",
            )
        )

        rendition = render_document("text/xml", content, language="en")

        root = rendered(rendition)
        assert "<script>alert(1)</script><b>x</b>" in headings(root)
        assert "<img src=x onerror=alert(1)>" in text_of(root)

    def test_labels_follow_the_visitors_language(self) -> None:
        header = """<recordTarget><patientRole><patient><name>Jean Dupont</name>
          <administrativeGenderCode code="M"/><birthTime value="19700102"/></patient>
          </patientRole></recordTarget>"""
        content = cda(section("A", "a"), header=header)

        labels = {
            language: [
                dt.text
                for dt in rendered(render_document("text/xml", content, language=language)).iter(
                    "dt"
                )
            ]
            for language in ("en", "fr", "de")
        }

        assert labels == {
            "en": ["Date", "Patient", "Birth date", "Gender"],
            "fr": ["Date", "Patient", "Date de naissance", "Sexe"],
            "de": ["Datum", "Patient", "Geburtsdatum", "Geschlecht"],
        }
        italian = rendered(render_document("text/xml", content, language="it"))
        assert [dt.text for dt in italian.iter("dt")] == labels["en"]


class TestHostileXml:
    def test_an_external_entity_is_refused_and_no_file_content_appears(
        self, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret.txt"
        secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
        content = f"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY xxe SYSTEM "file://{secret}">]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&xxe;</title>
<component><structuredBody>{section("S", "&xxe;")}</structuredBody></component>
</ClinicalDocument>""".encode()

        rendition = render_document("text/xml", content, language="en")

        assert rendition.kind == "download"
        assert rendition.note is not None
        assert "TOP-SECRET-CONTENT" not in repr(rendition)

    def test_an_external_dtd_is_refused(self, tmp_path: Path) -> None:
        dtd = tmp_path / "evil.dtd"
        dtd.write_text('<!ENTITY leak "DTD-WAS-READ">', encoding="utf-8")
        content = f"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument SYSTEM "file://{dtd}">
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&leak;</title></ClinicalDocument>""".encode()

        rendition = render_document("application/cda+xml", content, language="en")

        assert rendition.kind == "download"
        assert "DTD-WAS-READ" not in repr(rendition)

    def test_an_entity_expansion_bomb_is_refused(self) -> None:
        entities = "".join(f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10))
        content = f"""<?xml version="1.0"?>
<!DOCTYPE ClinicalDocument [<!ENTITY e0 "lol">{entities}]>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&e9;</title></ClinicalDocument>""".encode()

        rendition = render_document("text/xml", content, language="en")

        assert rendition.kind == "download"
        assert "lollol" not in repr(rendition)

    @pytest.mark.parametrize(
        "content",
        [
            b"",
            b"<ClinicalDocument",
            b"<ClinicalDocument xmlns='urn:hl7-org:v3'><title>x</ClinicalDocument>",
            b"\xff\xfe\x00garbage",
        ],
        ids=["empty", "truncated", "mismatched", "binary"],
    )
    def test_malformed_xml_is_shown_as_its_source_with_a_note(self, content: bytes) -> None:
        rendition = render_document("text/xml", content, language="de")

        assert rendition.kind == "text"
        assert rendition.text == content.decode("utf-8", errors="replace")
        assert rendition.note == document_rendition.LABELS["de"]["note_unreadable"]

    def test_a_stylesheet_failure_falls_back_to_the_pretty_printed_source(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def failing(*_args: Any, **_kwargs: Any) -> Any:
            raise etree.XSLTApplyError("stylesheet failed")

        monkeypatch.setattr(document_cda, "_cda_transform", lambda: failing)
        content = (
            b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Lettre</title><id root="1"/>'
            b"</ClinicalDocument>"
        )

        rendition = render_document("text/xml", content, language="en")

        assert rendition.kind == "text"
        assert rendition.note == document_rendition.LABELS["en"]["note_unreadable"]
        assert rendition.text is not None
        assert rendition.text.splitlines()[1] == "  <title>Lettre</title>"

    def test_xml_that_is_not_a_clinical_document_is_shown_as_source(self) -> None:
        rendition = render_document("application/xml", b"<note><to>Tove</to></note>", language="en")

        assert rendition.kind == "text"
        assert rendition.text == "<note>\n  <to>Tove</to>\n</note>"

    def test_fhir_xml_is_offered_for_download(self) -> None:
        path = DATASETS / "ch-epr-fhir" / "examples"
        example = next(path.glob("*.xml"))

        assert render_document("text/xml", example.read_bytes(), language="en").kind == "download"
        assert render_document("application/fhir+xml", b"<x/>", language="en").kind == "download"

    def test_a_document_too_large_to_lay_out_is_offered_for_download(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(document_view, "LARGEST_RENDERED", 100)
        content = cda(section("A", "x" * 200))

        rendition = render_document("text/xml", content, language="en")

        assert rendition.kind == "download"
        assert rendition.note == document_rendition.LABELS["en"]["note_too_large"]


def test_the_stylesheet_runs_without_file_or_network_access(tmp_path: Path) -> None:
    """Carnet's stylesheets are compiled with DENY_ALL: one calling document() reads nothing."""
    secret = tmp_path / "secret.xml"
    secret.write_text("<s>READ-FROM-DISK</s>", encoding="utf-8")
    reader = f"""<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
      <xsl:template match="/"><out><xsl:value-of select="document('file://{secret}')"/></out></xsl:template>
    </xsl:stylesheet>""".encode()
    transform = document_cda.compiled_stylesheet(reader)

    try:
        output = str(transform(etree.XML(b"<x/>")))
    except etree.XSLTApplyError:
        output = ""

    assert "READ-FROM-DISK" not in output
