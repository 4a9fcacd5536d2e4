"""The texts and value tables demo documents draw from, read from ``carnet/demo/data/``.

Content is data, not code: headings and labels in three languages, a laboratory panel with
reference ranges, ATC medicines, SNOMED CT problems, allergens and reactions, CVX vaccines,
LOINC displays, insurer tariffs, imaging examinations, certificate wordings, clinical
scenarios and short notes. Each file is read once, when this module is first imported (the
demo package is only imported by ``carnet demo`` and its tests), and turned into the frozen
types below so the builders never handle raw JSON. A translatable text (:data:`Tr`) is
(English, French, German); a shorter list falls back to English.

The files ship inside the package (``[tool.setuptools.package-data]`` in pyproject.toml),
so an installed wheel carries them; :mod:`importlib.resources` finds them either way.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Final

from carnet.demo.documents.model import Tr, tr

# A scenario maps section keys to texts; "medicines" lists medicine keys.
Scenario = dict[str, Tr]


def _read(name: str) -> Any:
    """The parsed content of ``carnet/demo/data/<name>``."""
    return json.loads(files("carnet.demo").joinpath("data", name).read_text(encoding="utf-8"))


def _tr(value: list[str]) -> Tr:
    """A translatable text from its JSON list."""
    return tuple(str(text) for text in value)


def _trs(values: list[list[str]]) -> tuple[Tr, ...]:
    """Several translatable texts from their JSON lists."""
    return tuple(_tr(value) for value in values)


# --- Headings and labels -------------------------------------------------------------

_HEADINGS: Final[dict[str, Tr]] = {key: _tr(text) for key, text in _read("headings.json").items()}


def term(key: str, lang: str, **values: object) -> str:
    """Return the heading or label ``key`` in ``lang``, formatted with ``values``."""
    text = tr(_HEADINGS[key], lang)
    return text.format(**values) if values else text


# --- Laboratory ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Analyte:
    """A laboratory analysis with per-sex reference ranges and a value distribution."""

    name: Tr
    unit: str
    female: tuple[float | None, float | None]
    male: tuple[float | None, float | None] | None
    decimals: int
    mean: float | None = None
    sd: float | None = None
    floor: float = 0.0

    def reference(self, sex: str) -> tuple[float | None, float | None]:
        """Reference range (low, high) for ``sex``; ``None`` for an open bound."""
        return self.male if sex == "male" and self.male is not None else self.female

    def draw(self, sex: str, rng: random.Random) -> float:
        """A plausible value: mostly within range, sometimes just outside."""
        low, high = self.reference(sex)
        if self.mean is not None and self.sd is not None:
            mean, sd = self.mean, self.sd
        elif low is not None and high is not None:
            mean, sd = (low + high) / 2, (high - low) / 3.6
        else:
            raise ValueError(f"analyte {self.name[0]!r} needs a mean and sd")
        return round(max(self.floor, rng.gauss(mean, sd)), self.decimals)


def _range(value: list[float | None]) -> tuple[float | None, float | None]:
    """A reference range (low, high); JSON null is an open bound."""
    low, high = value
    return low, high


ANALYTES: Final = tuple(
    Analyte(
        _tr(a["name"]),
        a["unit"],
        _range(a["female"]),
        None if a["male"] is None else _range(a["male"]),
        a["decimals"],
        a["mean"],
        a["sd"],
        a["floor"],
    )
    for a in _read("laboratory.json")["analytes"]
)


# --- Medicines -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Medicine:
    """A medicine (ATC code) with its usual dosage instructions."""

    atc: str
    name: Tr
    dosage: Tr


_MEDICINE_FILE: Final = _read("medicines.json")
MEDICINES: Final[dict[str, Medicine]] = {
    key: Medicine(m["atc"], _tr(m["name"]), _tr(m["dosage"]))
    for key, m in _MEDICINE_FILE["medicines"].items()
}
# (medicine key, possible durations in days) for prescriptions
PRESCRIPTION_ITEMS: Final = tuple(
    (str(item["medicine"]), tuple(int(days) for days in item["durations"]))
    for item in _MEDICINE_FILE["prescription_items"]
)


# --- Terminology: problems, allergies, vaccines, LOINC ------------------------------------


@dataclass(frozen=True, slots=True)
class Coded:
    """A coded concept: code, display in its code system, patient-facing label."""

    code: str
    display: str
    label: Tr


@dataclass(frozen=True, slots=True)
class Problem:
    """A chronic condition (SNOMED CT), its usual medicines and minimum onset age."""

    concept: Coded
    medicines: tuple[str, ...]
    min_age: int


@dataclass(frozen=True, slots=True)
class Allergen:
    """An allergy substance (SNOMED CT), its FHIR category and usual reactions."""

    concept: Coded
    category: str
    reactions: tuple[str, ...]


def _coded(value: dict[str, Any]) -> Coded:
    return Coded(value["code"], value["display"], _tr(value["label"]))


_TERMINOLOGY: Final = _read("terminology.json")
PROBLEMS: Final = tuple(
    Problem(_coded(p["concept"]), tuple(p["medicines"]), p["min_age"])
    for p in _TERMINOLOGY["problems"]
)
REACTIONS: Final[dict[str, Coded]] = {
    key: _coded(value) for key, value in _TERMINOLOGY["reactions"].items()
}
ALLERGENS: Final = tuple(
    Allergen(_coded(a["concept"]), a["category"], tuple(a["reactions"]))
    for a in _TERMINOLOGY["allergens"]
)
NO_KNOWN_ALLERGY: Final = _coded(_TERMINOLOGY["no_known_allergy"])
VACCINES: Final[dict[str, Coded]] = {
    key: _coded(value) for key, value in _TERMINOLOGY["vaccines"].items()
}
# Document and section LOINC codes with their LOINC displays.
LOINC_DISPLAY: Final[dict[str, str]] = dict(_TERMINOLOGY["loinc_display"])
DOCUMENT_LOINC: Final[dict[str, str]] = dict(_TERMINOLOGY["document_loinc"])


# --- Insurer tariffs -------------------------------------------------------------------

_SERVICE_FILE: Final = _read("insurer.json")["services"]
# (tariff code, provider kind, amount range in EUR, reimbursement rate)
SERVICES: Final = tuple(
    (
        str(s["tariff_code"]),
        _tr(s["provider"]),
        (float(s["amount"][0]), float(s["amount"][1])),
        float(s["rate"]),
    )
    for s in _SERVICE_FILE
)
# How often each service appears in a year of reimbursements, in the order of SERVICES.
SERVICE_WEIGHTS: Final = tuple(int(s["weight"]) for s in _SERVICE_FILE)


# --- Imaging ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exam:
    """An imaging examination with indications and (findings, conclusion) outcomes."""

    name: Tr
    indications: tuple[Tr, ...]
    technique: Tr
    outcomes: tuple[tuple[Tr, Tr], ...]


EXAMS: Final = tuple(
    Exam(
        _tr(e["name"]),
        _trs(e["indications"]),
        _tr(e["technique"]),
        tuple((_tr(o["findings"]), _tr(o["conclusion"])) for o in e["outcomes"]),
    )
    for e in _read("imaging.json")["exams"]
)


# --- Certificates ----------------------------------------------------------------------

_CERTIFICATES: Final = _read("certificates.json")
SPORTS: Final = _trs(_CERTIFICATES["sports"])
SPORT_CERTIFICATE: Final = _tr(_CERTIFICATES["sport_certificate"])
SICK_LEAVE: Final = _tr(_CERTIFICATES["sick_leave"])
OUTINGS: Final = _trs(_CERTIFICATES["outings"])
CERTIFICATE_CLOSING: Final = _tr(_CERTIFICATES["closing"])
UNDERSIGNED: Final = _tr(_CERTIFICATES["undersigned"])


# --- Clinical scenarios ------------------------------------------------------------------


def _scenario(value: dict[str, list[str]]) -> Scenario:
    return {key: _tr(text) for key, text in value.items()}


_SCENARIOS: Final = _read("scenarios.json")
DISCHARGES: Final = tuple(
    (_scenario(d["sections"]), tuple(str(key) for key in d["medicines"]))
    for d in _SCENARIOS["discharges"]
)
CONSULTATIONS: Final = tuple(_scenario(s) for s in _SCENARIOS["consultations"])
EMERGENCIES: Final = tuple(_scenario(s) for s in _SCENARIOS["emergencies"])
OPERATIONS: Final = tuple(_scenario(s) for s in _SCENARIOS["operations"])


# --- Short notes ---------------------------------------------------------------------------

_NOTES: Final = _read("notes.json")
NURSING_OBSERVATIONS: Final = _trs(_NOTES["nursing_observations"])
NURSING_CARE: Final = _trs(_NOTES["nursing_care"])
NURSING_PLAN: Final = _trs(_NOTES["nursing_plan"])
# (finding, treatment) pairs; "{tooth}" is an FDI tooth number
DENTAL: Final = tuple((_tr(d["finding"]), _tr(d["treatment"])) for d in _NOTES["dental"])
_FIRST_NAMES: Final = {sex: tuple(names) for sex, names in _NOTES["first_names"].items()}
# (relationship, first names to draw from)
RELATIVES: Final = tuple(
    (_tr(r["relationship"]), _FIRST_NAMES[r["names"]]) for r in _NOTES["relatives"]
)
AUTONOMY: Final = _trs(_NOTES["autonomy"])
COGNITION: Final = _trs(_NOTES["cognition"])
DIRECTIVE_STATUS: Final = _trs(_NOTES["directive_status"])
WISHES: Final = _trs(_NOTES["wishes"])
