"""Tests of the document type catalogue (carnet/catalogue/document_types.toml and its loader)."""

import dataclasses
import math
import re

import pytest

from carnet.catalogue import (
    CLASS_SYSTEM,
    LOCAL_TYPE_SYSTEM,
    LOINC_SYSTEM,
    Catalogue,
    Labels,
    UnknownDocumentType,
    load_catalogue,
    parse_catalogue,
)

REQUIRED_KEYS = {
    "lab-report",
    "patient-summary",
    "insurer-summary",
    "imaging-report",
    "medical-certificate",
    "prescription",
    "discharge-summary",
    "emergency-visit-summary",
    "vaccination-record",
    "allergies",
    "advance-directives",
    "operative-report",
    "consultation-note",
    "emergency-liaison-file",
    "patient-provided",
    "dental-report",
    "nursing-note",
}

LOINC_CODE = re.compile(r"^\d{1,6}-\d$")


def _loinc_check_digit_ok(code: str) -> bool:
    """Validate a LOINC code's mod-10 check digit (catches most typos)."""
    body, check = code.split("-")
    digits = [int(c) for c in body]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 0:
            doubled = digit * 2
            total += doubled // 10 + doubled % 10
        else:
            total += digit
    return (10 - total % 10) % 10 == int(check)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


def _minimal(
    *,
    types: str | None = None,
    classes: str | None = None,
) -> str:
    default_classes = """
[[class]]
code = "laboratory"
labels = { fr = "Analyses", en = "Laboratory", de = "Labor" }
"""
    default_types = """
[[type]]
key = "lab-report"
loinc = "11502-2"
display = "Laboratory report"
labels = { fr = "Résultats", en = "Results", de = "Befund" }
class_code = "laboratory"
default_confidentiality = "N"
demo_mime_types = ["application/pdf"]
demo_share = 0.5

[[type]]
key = "other"
loinc = ""
local_code = "other"
display = "Other"
labels = { fr = "Autre", en = "Other", de = "Andere" }
class_code = "laboratory"
default_confidentiality = "N"
demo_mime_types = ["application/pdf"]
demo_share = 0.5
"""
    return (default_classes if classes is None else classes) + (
        default_types if types is None else types
    )


_QUOTED = {"key", "loinc", "local_code", "display", "class_code", "default_confidentiality"}


def _type(key: str, **overrides: object) -> str:
    fields: dict[str, object] = {
        "key": key,
        "loinc": "",
        "local_code": key,
        "display": key,
        "labels": '{ fr = "fr", en = "en", de = "de" }',
        "class_code": "laboratory",
        "default_confidentiality": "N",
        "demo_mime_types": '["application/pdf"]',
        "demo_share": "0.5",
    }
    fields.update(overrides)
    lines = ["[[type]]"]
    for name, value in fields.items():
        if value is None:
            continue
        text = str(value)
        lines.append(f'{name} = "{text}"' if name in _QUOTED else f"{name} = {text}")
    return "\n".join(lines) + "\n\n"


# --- the shipped file -----------------------------------------------------------


def test_shipped_catalogue_loads_and_is_cached(catalogue: Catalogue) -> None:
    assert catalogue.types
    assert catalogue.classes
    assert load_catalogue() is catalogue


def test_required_types_are_present(catalogue: Catalogue) -> None:
    keys = {document_type.key for document_type in catalogue.types}
    missing = REQUIRED_KEYS - keys
    assert not missing, f"missing document types: {sorted(missing)}"


def test_demo_shares_sum_to_one(catalogue: Catalogue) -> None:
    total = math.fsum(document_type.demo_share for document_type in catalogue.types)
    assert total == pytest.approx(1.0, abs=1e-9)
    assert all(0 <= document_type.demo_share <= 1 for document_type in catalogue.types)
    # Types received from hospitals' systems but never drawn for the demo have a share of 0.
    assert {t.key for t in catalogue.types if t.demo_share == 0} == {
        "episode-summary",
        "physician-discharge-summary",
    }


def test_demo_shares_follow_luxembourg_figures(catalogue: Catalogue) -> None:
    assert catalogue.by_key("lab-report").demo_share == pytest.approx(0.81)
    assert catalogue.by_key("patient-summary").demo_share == pytest.approx(0.09)
    assert catalogue.by_key("insurer-summary").demo_share == pytest.approx(0.06)
    assert catalogue.by_key("imaging-report").demo_share == pytest.approx(0.01)
    assert catalogue.by_key("medical-certificate").demo_share == pytest.approx(0.01)


def test_every_label_is_non_empty(catalogue: Catalogue) -> None:
    labelled = [t.labels for t in catalogue.types] + [c.labels for c in catalogue.classes]
    for labels in labelled:
        for lang in ("fr", "en", "de"):
            assert getattr(labels, lang).strip(), labels


def test_every_referenced_class_exists(catalogue: Catalogue) -> None:
    class_codes = {document_class.code for document_class in catalogue.classes}
    for document_type in catalogue.types:
        assert document_type.class_code in class_codes, document_type.key
        assert catalogue.document_class(document_type.class_code).code == document_type.class_code


def test_keys_and_codes_are_unique(catalogue: Catalogue) -> None:
    keys = [t.key for t in catalogue.types]
    codings = [(t.system, t.code) for t in catalogue.types]
    assert len(keys) == len(set(keys))
    assert len(codings) == len(set(codings))


def test_codes_are_well_formed(catalogue: Catalogue) -> None:
    for document_type in catalogue.types:
        assert document_type.system in {LOINC_SYSTEM, LOCAL_TYPE_SYSTEM}
        assert document_type.default_confidentiality in {"N", "R", "V"}
        assert document_type.demo_mime_types
        if document_type.system == LOINC_SYSTEM:
            assert LOINC_CODE.match(document_type.code), document_type.code
            assert _loinc_check_digit_ok(document_type.code), document_type.code


def test_known_loinc_codes(catalogue: Catalogue) -> None:
    expected = {
        "lab-report": ("11502-2", "Laboratory report"),
        "patient-summary": ("60591-5", "Patient summary Document"),
        "imaging-report": ("18748-4", "Diagnostic imaging study"),
        "discharge-summary": ("18842-5", "Discharge summary"),
        "emergency-visit-summary": ("59258-4", "Emergency department Discharge summary"),
        "vaccination-record": ("82593-5", "Immunization summary report"),
        "advance-directives": ("42348-3", "Advance healthcare directives"),
    }
    for key, (code, display) in expected.items():
        document_type = catalogue.by_key(key)
        assert (document_type.system, document_type.code) == (LOINC_SYSTEM, code)
        assert document_type.display == display


def test_demo_mime_types(catalogue: Catalogue) -> None:
    assert catalogue.by_key("lab-report").demo_mime_types == ("application/pdf", "text/plain")
    assert "application/fhir+json" in catalogue.by_key("patient-summary").demo_mime_types
    assert "text/xml" in catalogue.by_key("patient-summary").demo_mime_types
    assert "application/fhir+json" in catalogue.by_key("vaccination-record").demo_mime_types


def test_by_code_finds_loinc_types(catalogue: Catalogue) -> None:
    assert catalogue.by_code(LOINC_SYSTEM, "11502-2").key == "lab-report"
    assert catalogue.by_code(LOINC_SYSTEM, "60591-5").key == "patient-summary"


def test_by_code_finds_local_types(catalogue: Catalogue) -> None:
    for key in ("insurer-summary", "emergency-liaison-file", "patient-provided"):
        document_type = catalogue.by_key(key)
        assert document_type.system == LOCAL_TYPE_SYSTEM
        assert catalogue.by_code(LOCAL_TYPE_SYSTEM, document_type.code) is document_type


def test_unknown_lookups_raise(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownDocumentType, match="99999-9"):
        catalogue.by_code(LOINC_SYSTEM, "99999-9")
    with pytest.raises(UnknownDocumentType):
        # right code, wrong system
        catalogue.by_code(LOCAL_TYPE_SYSTEM, "11502-2")
    with pytest.raises(UnknownDocumentType, match="no-such-type"):
        catalogue.by_key("no-such-type")
    with pytest.raises(LookupError):
        catalogue.document_class("no-such-class")


def test_class_system_constant() -> None:
    assert CLASS_SYSTEM == "https://carnet.health/fhir/CodeSystem/document-class"


def test_dataclasses_are_frozen(catalogue: Catalogue) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalogue.types[0].key = "changed"  # type: ignore[misc]


def test_labels_in_language_falls_back_to_english() -> None:
    labels = Labels(fr="Bonjour", en="Hello", de="Hallo")
    assert labels.in_language("fr") == "Bonjour"
    assert labels.in_language("de-LU") == "Hallo"
    assert labels.in_language("FR_lu") == "Bonjour"
    assert labels.in_language("en") == "Hello"
    assert labels.in_language("lb") == "Hello"
    assert labels.in_language("") == "Hello"


# --- validation of invalid files -----------------------------------------------------


def test_minimal_catalogue_parses() -> None:
    parsed = parse_catalogue(_minimal())
    assert [t.key for t in parsed.types] == ["lab-report", "other"]
    assert parsed.by_code(LOCAL_TYPE_SYSTEM, "other").key == "other"


def test_duplicate_key_is_rejected() -> None:
    types = _type("same", local_code="a") + _type("same", local_code="b")
    with pytest.raises(ValueError, match=r"duplicate document type key 'same'"):
        parse_catalogue(_minimal(types=types))


def test_duplicate_code_is_rejected() -> None:
    types = _type("a", local_code="x") + _type("b", local_code="x")
    with pytest.raises(ValueError, match=r"duplicate document type code 'x'"):
        parse_catalogue(_minimal(types=types))


def test_missing_class_is_rejected() -> None:
    types = _type("a") + _type("b", class_code="imaging")
    with pytest.raises(ValueError, match=r"'b' references unknown document class 'imaging'"):
        parse_catalogue(_minimal(types=types))


def test_bad_share_sum_is_rejected() -> None:
    types = _type("a", demo_share="0.5") + _type("b", demo_share="0.4")
    with pytest.raises(ValueError, match=r"demo_share values sum to 0\.900000"):
        parse_catalogue(_minimal(types=types))


def test_bad_confidentiality_is_rejected() -> None:
    types = _type("a") + _type("b", default_confidentiality="X")
    with pytest.raises(ValueError, match=r"'b' has invalid default_confidentiality 'X'"):
        parse_catalogue(_minimal(types=types))


def test_empty_label_is_rejected() -> None:
    types = _type("a") + _type("b", labels='{ fr = "", en = "en", de = "de" }')
    with pytest.raises(ValueError, match=r"'b' has a missing or empty 'fr' label"):
        parse_catalogue(_minimal(types=types))


def test_missing_label_language_is_rejected() -> None:
    classes = '[[class]]\ncode = "laboratory"\nlabels = { fr = "Analyses", en = "Lab" }\n\n'
    with pytest.raises(ValueError, match=r"'laboratory' has a missing or empty 'de' label"):
        parse_catalogue(_minimal(classes=classes))


def test_local_type_without_local_code_is_rejected() -> None:
    types = _type("a") + _type("b", local_code=None)
    with pytest.raises(ValueError, match=r"'b' needs a string 'local_code'"):
        parse_catalogue(_minimal(types=types))


def test_unknown_field_is_rejected() -> None:
    types = _type("a") + _type("b", confidentiality='"N"')
    with pytest.raises(ValueError, match=r"'b' has unknown fields: \['confidentiality'\]"):
        parse_catalogue(_minimal(types=types))


def test_invalid_toml_is_rejected() -> None:
    with pytest.raises(ValueError, match="not valid TOML"):
        parse_catalogue("[[type]\nkey = ")
