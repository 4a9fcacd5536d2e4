"""FHIR documents and resources in the viewer: a document Bundle laid out from its Composition,
any other Bundle as counts of what it holds, a lone resource as its narrative or its fields.

Narratives (XHTML) are rebuilt from the allow-list (``document_safety``), and the whole
rendition of ``document/fhir.html`` goes through it once more. JSON that is not a FHIR resource
is shown as its source; a resource that cannot be laid out falls back to its source with a note.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from lxml import etree, html
from markupsafe import Markup

from carnet.portal.document_rendition import Rendition, labels_of, readable_fhir_date
from carnet.portal.document_safety import DtdRefused, parse_xml, rebuilt, serialized, verified
from carnet.portal.i18n import environment

log = logging.getLogger(__name__)


FHIR_JSON_MIME_TYPES: Final = frozenset({"application/fhir+json", "application/json+fhir"})


FHIR_XML_MIME_TYPES: Final = frozenset({"application/fhir+xml", "application/xml+fhir"})


FHIR: Final = "http://hl7.org/fhir"


def render_json(content: bytes, language: str) -> Rendition:
    """A FHIR resource laid out as HTML; other JSON as its source, with a note saying why."""
    labels = labels_of(language)
    try:
        parsed = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return Rendition(
            "text", text=content.decode("utf-8", errors="replace"), note=labels["note_unreadable"]
        )
    source = json.dumps(parsed, indent=2, ensure_ascii=False)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("resourceType"), str):
        return Rendition("text", text=source, note=labels["note_source"])
    try:
        return Rendition("html", html=_render_fhir(parsed, language))
    except (etree.LxmlError, ValueError, TypeError, RecursionError) as error:
        log.warning("FHIR document not laid out: %s", type(error).__name__)
        return Rendition("text", text=source, note=labels["note_unreadable"])


@dataclass(frozen=True)
class Shown:
    """One value of a fact: its text, and a detail shown muted (an identifier's system)."""

    text: str
    detail: str | None = None


@dataclass(frozen=True)
class Fact:
    """A labelled line of a document's header (Patient, Author, ...), with its values."""

    label: str
    values: list[Shown]


@dataclass(frozen=True)
class FhirSection:
    """A Composition section: its title, its sanitized narrative and its subsections."""

    title: str
    narrative: Markup | None
    note: str | None = None
    sections: list[FhirSection] = field(default_factory=list)


@dataclass(frozen=True)
class FhirView:
    """What ``document/fhir.html`` lays out."""

    title: str
    facts: list[Fact] = field(default_factory=list)
    narrative: Markup | None = None
    sections: list[FhirSection] = field(default_factory=list)
    entries: list[tuple[str, int]] = field(default_factory=list)


def _render_fhir(resource: dict[str, Any], language: str) -> Markup:
    labels = labels_of(language)
    if resource["resourceType"] == "Bundle":
        bundle = _FhirBundle(resource)
        composition = bundle.composition()
        if resource.get("type") == "document" and composition is not None:
            view = _document_view(bundle, composition, labels, language)
        else:
            view = _bundle_view(bundle, labels)
    else:
        view = _resource_view(resource, labels, language)
    template = environment(language).get_template("document/fhir.html")
    return verified(template.render(view=view, labels=labels))


class _FhirBundle:
    """A Bundle's entries, with references resolved the way FHIR documents use them
    (``fullUrl``, ``urn:uuid:``, absolute URL or ``Type/id``)."""

    def __init__(self, bundle: Mapping[str, Any]) -> None:
        self.resources: list[dict[str, Any]] = []
        self._by_url: dict[str, dict[str, Any]] = {}
        self._by_type_id: dict[str, dict[str, Any]] = {}
        for entry in _list(bundle.get("entry")):
            resource = _dict(entry).get("resource")
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                continue
            self.resources.append(resource)
            full_url = _dict(entry).get("fullUrl")
            if isinstance(full_url, str):
                self._by_url[full_url] = resource
            if isinstance(resource.get("id"), str):
                self._by_type_id[f"{resource['resourceType']}/{resource['id']}"] = resource

    def composition(self) -> dict[str, Any] | None:
        """The document's Composition (FHIR puts it first; a misplaced one is still found)."""
        return next((r for r in self.resources if r["resourceType"] == "Composition"), None)

    def resolve(self, reference: Any) -> dict[str, Any] | None:
        """The entry a Reference points to, if the bundle holds it."""
        target = _dict(reference).get("reference")
        if not isinstance(target, str):
            return None
        if target in self._by_url:
            return self._by_url[target]
        match = re.search(r"([A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$", target)
        return self._by_type_id.get(match.group(1)) if match else None

    def counts(self, *, without: Any = None) -> list[tuple[str, int]]:
        """How many entries of each resource type, by type name."""
        counted = Counter(r["resourceType"] for r in self.resources if r is not without)
        return sorted(counted.items())


def _document_view(
    bundle: _FhirBundle, composition: dict[str, Any], labels: Mapping[str, str], language: str
) -> FhirView:
    facts: list[Fact] = []
    if isinstance(composition.get("date"), str):
        facts.append(
            Fact(labels["date"], [Shown(readable_fhir_date(composition["date"], language))])
        )
    status = composition.get("status")
    if isinstance(status, str) and status != "final":
        facts.append(Fact(labels["status"], [Shown(labels.get(f"status_{status}", status))]))
    subject = bundle.resolve(composition.get("subject"))
    if subject is not None and subject["resourceType"] == "Patient":
        facts.extend(_patient_facts(subject, labels, language))
    elif composition.get("subject"):
        facts.append(Fact(labels["patient"], [Shown(_party(composition["subject"], bundle))]))
    authors = [Shown(_party(author, bundle)) for author in _list(composition.get("author"))]
    if authors:
        facts.append(Fact(labels["author"], authors))
    for attester in _list(composition.get("attester")):
        if _dict(attester).get("mode") == "legal" and _dict(attester).get("party"):
            facts.append(
                Fact(labels["legal_authenticator"], [Shown(_party(attester["party"], bundle))])
            )
    if composition.get("custodian"):
        facts.append(Fact(labels["custodian"], [Shown(_party(composition["custodian"], bundle))]))
    encounter = bundle.resolve(composition.get("encounter"))
    if encounter is not None:
        shown = _encounter_text(encounter, language)
        if shown:
            facts.append(Fact(labels["encounter"], [Shown(shown)]))
    return FhirView(
        title=_text(composition.get("title"))
        or _concept(composition.get("type"))
        or labels["untitled_document"],
        facts=facts,
        sections=[_section(s, labels) for s in _list(composition.get("section"))],
        entries=bundle.counts(without=composition),
    )


def _bundle_view(bundle: _FhirBundle, labels: Mapping[str, str]) -> FhirView:
    return FhirView(title=labels["bundle"], entries=bundle.counts())


def _resource_view(resource: dict[str, Any], labels: Mapping[str, str], language: str) -> FhirView:
    kind = resource["resourceType"]
    name = _resource_name(resource)
    title = f"{kind} — {name}" if name else kind
    div = _dict(resource.get("text")).get("div")
    if isinstance(div, str) and div.strip():
        narrative = _narrative(div, labels)
        if narrative is not None:
            return FhirView(title=title, narrative=narrative)
    facts = [
        Fact(key, [Shown(_summary(value))])
        for key, value in resource.items()
        if key not in {"resourceType", "meta", "text", "contained"} and _summary(value)
    ]
    return FhirView(title=title, facts=facts)


def _section(section: Any, labels: Mapping[str, str]) -> FhirSection:
    section = _dict(section)
    title = (
        _text(section.get("title")) or _concept(section.get("code")) or labels["untitled_section"]
    )
    div = _dict(section.get("text")).get("div")
    narrative = _narrative(div, labels) if isinstance(div, str) and div.strip() else None
    note = None
    if narrative is None:
        if isinstance(div, str) and div.strip():
            note = labels["narrative_unreadable"]
        else:
            note = _concept(section.get("emptyReason")) or labels["no_narrative"]
    return FhirSection(
        title=title,
        narrative=narrative,
        note=note,
        sections=[_section(s, labels) for s in _list(section.get("section"))],
    )


def _patient_facts(
    patient: Mapping[str, Any], labels: Mapping[str, str], language: str
) -> list[Fact]:
    facts = [Fact(labels["patient"], [Shown(_human_name(patient.get("name")) or "—")])]
    if isinstance(patient.get("birthDate"), str):
        facts.append(
            Fact(labels["birth_date"], [Shown(readable_fhir_date(patient["birthDate"], language))])
        )
    gender = patient.get("gender")
    if isinstance(gender, str):
        facts.append(Fact(labels["gender"], [Shown(labels.get(gender, gender))]))
    identifiers = [
        Shown(_text(identifier.get("value")), _text(identifier.get("system")) or None)
        for identifier in map(_dict, _list(patient.get("identifier")))
        if _text(identifier.get("value"))
    ]
    if identifiers:
        facts.append(Fact(labels["identifiers"], identifiers))
    return facts


def _party(reference: Any, bundle: _FhirBundle) -> str:
    """Who a Reference names: its display, else the referenced entry's name, else the
    reference itself."""
    display = _text(_dict(reference).get("display"))
    if display:
        return display
    resolved = bundle.resolve(reference)
    name = _resource_name(resolved) if resolved is not None else ""
    return name or _text(_dict(reference).get("reference")) or "—"


def _resource_name(resource: Mapping[str, Any]) -> str:
    if resource.get("resourceType") in {"Patient", "Practitioner", "RelatedPerson", "Person"}:
        return _human_name(resource.get("name"))
    if resource.get("resourceType") == "PractitionerRole":
        return _text(_dict(resource.get("practitioner")).get("display"))
    for key in ("name", "title"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    return _concept(resource.get("code"))


def _human_name(names: Any) -> str:
    candidates = [_dict(n) for n in _list(names)]
    preferred = next((n for n in candidates if n.get("use") == "official"), None)
    name = preferred or (candidates[0] if candidates else {})
    if _text(name.get("text")):
        return _text(name.get("text"))
    parts = [
        *map(_text, _list(name.get("prefix"))),
        *map(_text, _list(name.get("given"))),
        _text(name.get("family")),
        *map(_text, _list(name.get("suffix"))),
    ]
    return " ".join(part for part in parts if part)


def _encounter_text(encounter: Mapping[str, Any], language: str) -> str:
    kinds = [_concept(kind) for kind in _list(encounter.get("type"))]
    what = next((kind for kind in kinds if kind), "") or _text(
        _dict(encounter.get("class")).get("display")
    )
    period = _dict(encounter.get("period"))
    ends = [
        readable_fhir_date(value, language) if isinstance(value, str) else ""
        for value in (period.get("start"), period.get("end"))
    ]
    when = " \N{EN DASH} ".join(ends) if any(ends) else ""
    return ", ".join(part for part in (what, when) if part)


def _concept(concept: Any) -> str:
    """A CodeableConcept's text, else its first coding's display."""
    concept = _dict(concept)
    if _text(concept.get("text")):
        return _text(concept.get("text"))
    displays = (_text(_dict(coding).get("display")) for coding in _list(concept.get("coding")))
    return next((display for display in displays if display), "")


_SUMMARY_LENGTH: Final = 300


def _summary(value: Any, depth: int = 0) -> str:
    """A top-level field of a resource as one readable line (for a resource without
    narrative): a display or text where FHIR has one, else its parts, cut to a line."""
    shown = _summary_of(value, depth)
    return shown if len(shown) <= _SUMMARY_LENGTH else shown[: _SUMMARY_LENGTH - 1] + "…"


def _summary_of(value: Any, depth: int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if depth > 3:
        return "…"
    if isinstance(value, list):
        return "; ".join(filter(None, (_summary_of(item, depth + 1) for item in value)))
    return _summary_of_mapping(value, depth) if isinstance(value, dict) else ""


def _summary_of_mapping(value: dict[str, Any], depth: int) -> str:
    """A FHIR datatype as one line: its display or text where it has one (Coding,
    CodeableConcept, Reference, Narrative), else the parts a reader knows it by."""
    for key in ("display", "text"):
        if isinstance(value.get(key), str):
            return str(value[key])
    if "family" in value or "given" in value:
        shown = _human_name([value])
    elif "reference" in value:
        shown = _text(value.get("reference"))
    elif "value" in value and ("unit" in value or "code" in value):
        unit = _text(value.get("unit") or value.get("code"))
        shown = f"{_summary_of(value['value'], depth + 1)} {unit}"
    elif "coding" in value:
        shown = _concept(value) or _summary_of(value["coding"], depth + 1)
    else:
        shown = ", ".join(
            f"{key}: {part}"
            for key, item in value.items()
            if key != "extension" and (part := _summary_of(item, depth + 1))
        )
    return shown


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _narrative(div: str, labels: Mapping[str, str]) -> Markup | None:
    """A FHIR narrative (XHTML ``div``) rebuilt from the allow-list, or None if unreadable."""
    try:
        root = parse_xml(div.encode("utf-8"))
    except DtdRefused:
        return None
    except (etree.LxmlError, ValueError):
        # Real narratives carry HTML entities (&nbsp;) that XML does not know: read them as
        # HTML instead; what comes out is rebuilt from the allow-list all the same.
        try:
            root = html.fragment_fromstring(div, create_parent="div")
        except (etree.LxmlError, ValueError):
            return None
    cleaned = rebuilt(root, narrative=True, image_label=labels["image"])
    if cleaned.tag != "div":
        holder = etree.Element("div")
        holder.append(cleaned)
        cleaned = holder
    cleaned.set("class", "doc-narrative")
    return serialized(cleaned)
