"""The document viewer's other renditions: FHIR documents and resources, HL7 v2 and plain text,
and the readable dates they show.

Checked, as the CDA renditions are, on the rendered HTML read back by a browser-like parser.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from carnet.portal import document_rendition
from carnet.portal.document_rendition import Rendition, readable_fhir_date, readable_timestamp
from carnet.portal.document_view import render_document
from conftest import DATASETS
from factories.pdf import text_pdf
from factories.renditions import headings, rendered, text_of

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
    def test_pdf_is_drawn_page_by_page_and_images_are_shown(self) -> None:
        assert render_document("application/pdf", text_pdf("Result"), language="en").kind == (
            "pages"
        )
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
