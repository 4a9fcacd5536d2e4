"""The document viewer's renditions: CDA R2 laid out by Carnet's stylesheet, FHIR documents and
resources, HL7 v2 and plain text, against the shared datasets and against hostile documents.

What a reader sees is checked on the rendered HTML read back by a browser-like parser: its text,
its headings, and that nothing active (script, event attribute, style, link, image) is in it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree, html  # type: ignore[import-untyped]  # lxml ships no type hints

from carnet.portal import document_cda, document_rendition, document_view
from carnet.portal.document_rendition import Rendition, readable_fhir_date, readable_timestamp
from carnet.portal.document_view import render_document
from conftest import DATASETS

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
FHIR_JSON_FILES = sorted(
    [
        *(DATASETS / "hl7-fhir-r4-examples").glob("*.json"),
        *(DATASETS / "ihe-iti-mhd" / "json").glob("*.json"),
        *(DATASETS / "ans-pdsm" / "json").glob("*.json"),
        *(DATASETS / "ch-epr-fhir" / "examples").glob("*.json"),
        # One large Synthea transaction bundle stands for the thirty.
        min((DATASETS / "synthea-fhir-r4").glob("*.json"), key=lambda p: p.stat().st_size),
    ]
)
FHIR_DOCUMENTS = [
    DATASETS / "ihe-iti-mhd" / "json" / "fdoc.json",
    DATASETS / "hl7-fhir-r4-examples" / "Bundle-father.json",
]


def rendered(rendition: Rendition) -> Any:
    """The rendition's HTML as a browser would read it, after checking it is inert."""
    assert rendition.kind == "html", rendition
    assert rendition.html is not None
    assert_inert(str(rendition.html))
    root = html.fragment_fromstring(str(rendition.html))
    assert root.tag == "article"
    assert "rendered-document" in root.get("class", "").split()
    return root


def assert_inert(markup: str) -> None:
    """No script, event handler, inline style, URL or embedded object anywhere."""
    root = html.fragment_fromstring(markup, create_parent="div")
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        assert element.tag not in {"script", "style", "iframe", "object", "embed", "img", "a"}
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
            assert attribute.lower() not in {"style", "href", "src", "srcdoc", "action"}
    assert "javascript:" not in markup.lower()


def text_of(root: Any) -> str:
    return " ".join(root.text_content().split())


def headings(root: Any) -> list[str]:
    return [
        " ".join(h.text_content().split()) for h in root.iter("h1", "h2", "h3", "h4", "h5", "h6")
    ]


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
        [p for p in CDA_FILES if p.name not in NOT_WELL_FORMED],
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

    def test_an_embedded_pdf_body_is_a_placeholder_asking_for_the_download(self) -> None:
        path = (
            DATASETS
            / "hl7-c-cda-examples"
            / "Unstructured__CDA_with_Embedded_PDF_1__Unstructured_Document_embed.xml"
        )

        root = rendered(render_document("text/xml", path.read_bytes(), language="en"))

        assert "download the document to read it" in text_of(root)
        assert "JVBER" not in text_of(root)  # the base64 of a PDF never reaches the page

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


class TestFhir:
    @pytest.mark.parametrize("path", FHIR_DOCUMENTS, ids=lambda p: p.name)
    def test_a_dataset_fhir_document_renders_its_composition_and_sections(self, path: Path) -> None:
        bundle = json.loads(path.read_text(encoding="utf-8-sig"))
        composition = bundle["entry"][0]["resource"]

        root = rendered(render_document("application/fhir+json", path.read_bytes(), language="en"))

        shown = headings(root)
        assert shown[0] == composition["title"]
        assert [s["title"] for s in composition["section"]] == shown[1:4]
        text = text_of(root)
        assert "Acute Asthmatic attack. Was wheezing for days prior to admission." in text
        assert "Theophylline 200mg BD after meals" in text
        assert "Doxycycline" in text
        facts = {dt.text: dt.getnext().text_content() for dt in root.iter("dt")}
        assert facts["Patient"] == "Eve Everywoman"
        assert facts["Date"].startswith("Feb 1, 2013")
        entries = {th.text: th.getnext().text for th in root.iter("th") if th.get("scope") == "row"}
        assert entries["AllergyIntolerance"] == "1"
        assert "Composition" not in entries

    @pytest.mark.parametrize("path", FHIR_JSON_FILES, ids=lambda p: p.name[:60])
    def test_every_dataset_fhir_resource_renders_to_inert_html(self, path: Path) -> None:
        resource = json.loads(path.read_text(encoding="utf-8-sig"))
        if resource["resourceType"] != "Bundle":
            title = resource["resourceType"]
        elif resource.get("type") == "document":
            title = resource["entry"][0]["resource"]["title"]
        else:
            title = "Ensemble de données"

        root = rendered(render_document("application/fhir+json", path.read_bytes(), language="fr"))

        assert headings(root)[0].startswith(title)

    def test_an_author_is_found_in_the_bundle_when_the_reference_has_no_display(self) -> None:
        path = DATASETS / "ihe-iti-mhd" / "json" / "fdoc.json"

        root = rendered(render_document("application/json", path.read_bytes(), language="en"))

        facts = {dt.text: dt.getnext().text_content() for dt in root.iter("dt")}
        assert facts["Author"] == "Dr Adam Careful"

    def test_a_narrative_is_rebuilt_without_anything_active(self) -> None:
        narrative = (
            '<div xmlns="http://www.w3.org/1999/xhtml"><h1 onclick="x()">Titre</h1>'
            '<p style="color:red" class="emergency">Tension <b>normale</b>'
            '<script>alert(\'s\')</script><img src="x" onerror="alert(\'i\')" alt="courbe"/>'
            '<a href="javascript:alert(1)">lien</a> <a href="https://example.org">site</a></p>'
            '<form action="https://evil.example"><input name="pin"/></form>'
            '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(2)"><text>s</text></svg>'
            "<table><tr><td>A</td></tr></table></div>"
        )
        document = self.document_with(narrative)

        rendition = render_document("application/fhir+json", document, language="fr")

        root = rendered(rendition)
        markup = str(rendition.html)
        assert "alert" not in markup
        assert "emergency" not in markup
        text = text_of(root)
        assert "Tension normale" in text
        assert "[Image non affichée: courbe]" in text
        assert "lien site (https://example.org)" in text
        assert root.find(".//b").text == "normale"
        # The narrative's own h1 would break the page outline: it is a strong line.
        assert "Titre" not in headings(root)
        assert root.find(".//p[@class='doc-narrative-heading']/strong").text == "Titre"
        assert root.find(".//div[@class='table-wrap']/table") is not None

    def test_a_narrative_with_html_entities_is_still_shown(self) -> None:
        document = self.document_with("<div>Poids&nbsp;: 72&nbsp;kg<style>p{}</style></div>")

        root = rendered(render_document("application/fhir+json", document, language="en"))

        assert "Poids\xa0: 72\xa0kg" in root.text_content()
        assert "p{}" not in root.text_content()

    def test_a_section_without_narrative_says_so(self) -> None:
        document = json.dumps(
            {
                "resourceType": "Bundle",
                "type": "document",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Composition",
                            "status": "preliminary",
                            "title": "Synthèse",
                            "section": [
                                {"title": "Allergies", "emptyReason": {"text": "Non recherché"}},
                                {"code": {"coding": [{"display": "Traitements"}]}},
                            ],
                        }
                    }
                ],
            }
        ).encode()

        root = rendered(render_document("application/fhir+json", document, language="fr"))

        assert headings(root) == ["Synthèse", "Allergies", "Traitements"]
        text = text_of(root)
        assert "Non recherché" in text
        assert "Pas de texte dans cette section." in text
        assert "Provisoire" in text

    def test_a_lone_resource_shows_its_narrative(self) -> None:
        path = DATASETS / "hl7-fhir-r4-examples" / "Patient-example.json"

        root = rendered(render_document("application/fhir+json", path.read_bytes(), language="en"))

        assert headings(root) == ["Patient — Peter James Chalmers"]
        assert "534 Erewhon, Pleasantville" in text_of(root)

    def test_a_lone_resource_without_narrative_lists_its_fields(self) -> None:
        resource = {
            "resourceType": "Observation",
            "status": "final",
            "code": {
                "coding": [
                    {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
                ]
            },
            "valueQuantity": {"value": 72, "unit": "beats/minute"},
            "subject": {"reference": "Patient/example"},
        }

        root = rendered(
            render_document("application/fhir+json", json.dumps(resource).encode(), language="en")
        )

        facts = {dt.text: dt.getnext().text_content() for dt in root.iter("dt")}
        assert facts == {
            "status": "final",
            "code": "Heart rate",
            "valueQuantity": "72 beats/minute",
            "subject": "Patient/example",
        }
        assert headings(root) == ["Observation — Heart rate"]

    def test_a_bundle_that_is_not_a_document_summarises_its_entries(self) -> None:
        path = DATASETS / "hl7-fhir-r4-examples" / "Bundle-xds.json"

        root = rendered(render_document("application/fhir+json", path.read_bytes(), language="de"))

        entries = {th.text: th.getnext().text for th in root.iter("th") if th.get("scope") == "row"}
        assert entries == {
            "Binary": "1",
            "DocumentReference": "1",
            "Patient": "1",
            "Practitioner": "2",
        }
        assert "Anzahl" in text_of(root)

    @pytest.mark.parametrize(
        ("content", "note"),
        [
            (b"{not json", "note_unreadable"),
            (b'{"resourceType": 42}', "note_source"),
            (b"[1, 2]", "note_source"),
        ],
        ids=["malformed", "no-resource-type", "not-an-object"],
    )
    def test_json_that_is_not_a_fhir_resource_is_shown_as_text(
        self, content: bytes, note: str
    ) -> None:
        rendition = render_document("application/json", content, language="en")

        assert rendition.kind == "text"
        assert rendition.note == document_rendition.LABELS["en"][note]

    def test_an_unexpected_shape_falls_back_without_an_error(self) -> None:
        document = json.dumps(
            {
                "resourceType": "Bundle",
                "type": "document",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Composition",
                            "section": ["x", 3, None],
                            "author": "me",
                            "title": ["t"],
                        }
                    },
                    "junk",
                ],
            }
        ).encode()

        root = rendered(render_document("application/fhir+json", document, language="en"))

        assert headings(root)[0] == "Clinical document"

    def test_labels_follow_the_visitors_language(self) -> None:
        path = DATASETS / "ihe-iti-mhd" / "json" / "fdoc.json"

        labels = {
            language: [
                dt.text
                for dt in rendered(
                    render_document("application/fhir+json", path.read_bytes(), language=language)
                ).iter("dt")
            ][:3]
            for language in ("en", "fr", "de")
        }

        assert labels == {
            "en": ["Date", "Patient", "Birth date"],
            "fr": ["Date", "Patient", "Date de naissance"],
            "de": ["Datum", "Patient", "Geburtsdatum"],
        }

    @staticmethod
    def document_with(narrative: str) -> bytes:
        return json.dumps(
            {
                "resourceType": "Bundle",
                "type": "document",
                "entry": [
                    {
                        "resource": {
                            "resourceType": "Composition",
                            "title": "Note",
                            "section": [
                                {
                                    "title": "Constantes",
                                    "text": {"status": "generated", "div": narrative},
                                }
                            ],
                        }
                    }
                ],
            }
        ).encode()


class TestOtherKinds:
    def test_pdf_is_framed_and_images_are_shown(self) -> None:
        assert render_document("application/pdf", b"%PDF-1.7", language="en") == Rendition("frame")
        png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
        assert render_document("image/png", png, language="en") == Rendition("image")

    @pytest.mark.parametrize(
        ("mime_type", "content"),
        [
            ("image/png", b"<html><script>alert(1)</script></html>"),
            ("image/jpeg", b"\x89PNG\r\n\x1a\n"),
            ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'),
            ("application/pdf", b"<html>not a PDF</html>"),
        ],
    )
    def test_what_is_not_the_passive_type_it_claims_is_only_offered_for_download(
        self, mime_type: str, content: bytes
    ) -> None:
        rendition = render_document(mime_type, content, language="en")

        assert rendition.kind == "download"
        assert rendition.note == "This kind of document cannot be shown here: download it."

    def test_plain_text_is_unchanged(self) -> None:
        content = b"Tension 12/8\r\n  <b>pas de HTML</b>\n"

        rendition = render_document("text/plain; charset=utf-8", content, language="en")

        assert rendition == Rendition("text", text="Tension 12/8\r\n  <b>pas de HTML</b>\n")

    def test_plain_text_in_its_declared_charset(self) -> None:
        rendition = render_document(
            "text/plain; charset=ISO-8859-1", "Fièvre".encode("latin-1"), language="en"
        )

        assert rendition.text == "Fièvre"

    @pytest.mark.parametrize(
        "path",
        [
            DATASETS / "node-hl7-complete-hl7v2" / "valid__cerner__cerner_en.hl7",
            DATASETS / "cdc-prime-reportstream-hl7v2" / "hl7_test_files__batch_message.hl7",
            DATASETS / "ms-fhir-converter" / "hl7v2" / "ORU-R01-01.hl7",
        ],
        ids=lambda p: p.name,
    )
    def test_an_hl7_v2_message_shows_one_segment_a_line(self, path: Path) -> None:
        content = path.read_bytes()
        framed = b"\x0b" + content + b"\x1c\r"

        rendition = render_document("x-application/hl7-v2+er7", framed, language="en")

        assert rendition.kind == "text"
        assert rendition.text is not None
        lines = rendition.text.split("\n")
        expected = [
            s
            for s in content.decode().replace("\r\n", "\r").replace("\n", "\r").split("\r")
            if s.strip()
        ]
        assert lines == expected
        assert all(line[:3].isalnum() and line[3] == "|" for line in lines)

    def test_anything_else_is_offered_for_download(self) -> None:
        assert render_document("application/zip", b"PK", language="en") == Rendition("download")
        assert render_document("text/html", b"<script>x</script>", language="en") == Rendition(
            "download"
        )


class TestReadableDates:
    @pytest.mark.parametrize(
        ("value", "language", "expected"),
        [
            ("2026", "en", "2026"),
            ("202603", "fr", "mars 2026"),
            ("20260315", "de", "15.03.2026"),
            ("20260315123000+0100", "fr", "15 mars 2026 12:30 (UTC+01:00)"),
            ("20260315123000.250+0000", "de", "15.03.2026 12:30 (UTC)"),
            ("2026031512", "fr", "15 mars 2026 12:00"),
            ("20261315", "en", "20261315"),
            ("not a date", "en", "not a date"),
        ],
    )
    def test_an_hl7_timestamp(self, value: str, language: str, expected: str) -> None:
        assert readable_timestamp(value, language) == expected

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("2013", "2013"),
            ("2013-02", "février 2013"),
            ("2013-02-01", "1 févr. 2013"),
            ("2013-02-01T12:30:02Z", "1 févr. 2013 12:30 (UTC)"),
            ("2013-02-01T12:30:02.5-05:00", "1 févr. 2013 12:30 (UTC-05:00)"),
            ("yesterday", "yesterday"),
        ],
    )
    def test_a_fhir_date(self, value: str, expected: str) -> None:
        assert readable_fhir_date(value, "fr") == expected


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
