"""The body of an unstructured CDA document (CDA R2 §4.3.2, nonXMLBody): what it embeds."""

from __future__ import annotations

import base64
import gzip
import zlib

import pytest

from carnet.cda.body import embedded_file, embedded_pdf
from carnet.cda.errors import CdaRefused
from carnet.cda.parsing import parse
from factories.cda import CCD, EMBEDDED_PDF, dataset, minimal

PDF = b"%PDF-1.4\n%%EOF\n"


def unstructured(text: str, attributes: str = "") -> bytes:
    return minimal(body=f"<nonXMLBody><text {attributes}>{text}</text></nonXMLBody>")


class TestTheDatasets:
    def test_an_embedded_pdf_is_decoded(self) -> None:
        found = embedded_file(parse(EMBEDDED_PDF.read_bytes()))
        assert found is not None
        assert found.media_type == "application/pdf"
        assert found.content.startswith(b"%PDF-")
        assert embedded_pdf(EMBEDDED_PDF.read_bytes()) == found.content

    def test_embedded_plain_text_is_decoded(self) -> None:
        path = dataset(
            "Unstructured__CDA_with_Embedded_Text_plain__CDA_Embedded_Text_Plain_Surgical_"
            "Consult.xml"
        )
        found = embedded_file(parse(path.read_bytes()))
        assert found is not None
        assert found.media_type == "text/plain"
        assert b"Chronic cervical pain, stable symptomatology." in found.content
        assert embedded_pdf(path.read_bytes()) is None

    @pytest.mark.parametrize(
        "name",
        ["Unstructured__CDA_reference_PDF__Unstructured_Document_reference.xml", "sample.ccda"],
    )
    def test_a_body_that_only_references_its_file_is_refused(self, name: str) -> None:
        with pytest.raises(CdaRefused, match=r"only references its file \(UD_sample.pdf\)") as e:
            embedded_file(parse(dataset(name).read_bytes()))
        assert e.value.reason == "body"

    def test_a_structured_body_embeds_nothing(self) -> None:
        assert embedded_file(parse(CCD.read_bytes())) is None
        assert embedded_pdf(CCD.read_bytes()) is None


class TestEncodings:
    @pytest.mark.parametrize(
        ("compression", "packed"),
        [
            ("DF", lambda b: zlib.compress(b)[2:-4]),
            ("ZL", zlib.compress),
            ("GZ", gzip.compress),
        ],
        ids=["deflate", "zlib", "gzip"],
    )
    def test_compressed_content_is_inflated(self, compression: str, packed: object) -> None:
        assert callable(packed)
        data = base64.b64encode(packed(PDF)).decode()
        content = unstructured(
            data, f'mediaType="application/pdf" representation="B64" compression="{compression}"'
        )
        assert embedded_pdf(content) == PDF

    def test_inline_text_is_kept(self) -> None:
        found = embedded_file(parse(unstructured("Tension 12/8.")))
        assert found is not None
        assert (found.media_type, found.content) == ("text/plain", b"Tension 12/8.")

    @pytest.mark.parametrize(
        ("text", "attributes", "named"),
        [
            ("%%%", 'representation="B64"', "base64"),
            (
                base64.b64encode(b"<html/>").decode(),
                'mediaType="application/pdf" representation="B64"',
                "not a PDF",
            ),
            (base64.b64encode(PDF).decode(), 'representation="B64" compression="BZ"', "BZ"),
            (
                base64.b64encode(b"junk").decode(),
                'representation="B64" compression="GZ"',
                "decompressed",
            ),
            ("a", 'representation="XML"', "neither B64 nor TXT"),
        ],
        ids=["base64", "pdf", "compression", "gzip", "representation"],
    )
    def test_what_cannot_be_read_is_named(self, text: str, attributes: str, named: str) -> None:
        with pytest.raises(CdaRefused, match=named) as caught:
            embedded_file(parse(unstructured(text, attributes)))
        assert caught.value.reason == "body"
        assert embedded_pdf(unstructured(text, attributes)) is None

    def test_a_decompression_bomb_stops_at_the_limit(self) -> None:
        bomb = base64.b64encode(zlib.compress(b"\0" * (65 * 1024 * 1024), 9)).decode()
        with pytest.raises(CdaRefused, match="decompresses to over"):
            embedded_file(parse(unstructured(bomb, 'representation="B64" compression="ZL"')))
