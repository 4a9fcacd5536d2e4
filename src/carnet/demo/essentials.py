"""The demo patients' essential data as pure data: who records which fact, in which words.

Each patient's facts are drawn from a generator of their own (seeded by the demo seed and the
patient's place), not from the population's: adding them left every earlier draw — names,
identifiers, documents — as it was, so a database loaded before essential data existed gets
the same people and documents, and only the facts are added.

Who writes what follows life: a laboratory's biologist (or the patient, from their card)
records the blood group; the general practitioner treatments, vaccinations and most
allergies; the patient their emergency contacts and, past seventy, their advance directives.
Children's facts are all recorded by professionals. Every name and number is fictitious.
"""

from __future__ import annotations

import datetime as dt
import random  # synthetic data, not secrets: S311 does not apply
from dataclasses import dataclass

from carnet.demo.professionals import ProfessionalSpec
from carnet.directory.models import Profession
from carnet.essentials.models import Category

# (group, share of the population): Western European frequencies.
_BLOOD_GROUPS = (
    ("O+", 35),
    ("A+", 34),
    ("B+", 9),
    ("AB+", 3),
    ("O-", 7),
    ("A-", 7),
    ("B-", 2),
    ("AB-", 1),
)
_LAB_CARD = {
    "fr": "{group} — carte de groupe sanguin du laboratoire",
    "de": "{group} — Blutgruppenkarte des Labors",
    "en": "{group} — laboratory blood group card",
}
# (substance in fr, de, en; reaction in fr, de, en; severity)
_ALLERGIES = (
    (
        ("Pénicilline", "Penicillin", "Penicillin"),
        ("urticaire", "Nesselsucht", "hives"),
        "moderate",
    ),
    (
        ("Amoxicilline", "Amoxicillin", "Amoxicillin"),
        ("éruption cutanée", "Hautausschlag", "rash"),
        "mild",
    ),
    (
        ("Produits de contraste iodés", "Jodhaltiges Kontrastmittel", "Iodinated contrast"),
        ("choc anaphylactique", "anaphylaktischer Schock", "anaphylaxis"),
        "severe",
    ),
    (("Latex", "Latex", "Latex"), ("eczéma de contact", "Kontaktekzem", "contact eczema"), "mild"),
    (
        ("Arachide", "Erdnuss", "Peanut"),
        ("œdème de Quincke", "Quincke-Ödem", "angioedema"),
        "severe",
    ),
    (
        ("Venin de guêpe", "Wespengift", "Wasp venom"),
        ("réaction généralisée", "generalisierte Reaktion", "generalised reaction"),
        "severe",
    ),
    (
        ("Pollens de graminées", "Gräserpollen", "Grass pollen"),
        ("rhinite", "Heuschnupfen", "hay fever"),
        "mild",
    ),
    (
        ("Acide acétylsalicylique", "Acetylsalicylsäure", "Aspirin"),
        ("bronchospasme", "Bronchospasmus", "bronchospasm"),
        "moderate",
    ),
)
# (text in fr, de, en), for adults; the elderly draw from the first ones more often.
_TREATMENTS = (
    (
        "Ramipril 5 mg, 1 comprimé le matin",
        "Ramipril 5 mg, 1 Tablette morgens",
        "Ramipril 5 mg, one tablet in the morning",
    ),
    (
        "Atorvastatine 20 mg, 1 le soir",
        "Atorvastatin 20 mg, 1 abends",
        "Atorvastatin 20 mg, one in the evening",
    ),
    (
        "Metformine 850 mg, matin et soir",
        "Metformin 850 mg, morgens und abends",
        "Metformin 850 mg, morning and evening",
    ),
    (
        "Apixaban 5 mg, matin et soir (anticoagulant)",
        "Apixaban 5 mg, morgens und abends (Gerinnungshemmer)",
        "Apixaban 5 mg, morning and evening (anticoagulant)",
    ),
    ("Lévothyroxine 75 µg, à jeun", "Levothyroxin 75 µg, nüchtern", "Levothyroxine 75 µg, fasting"),
    (
        "Salbutamol spray, si besoin",
        "Salbutamol-Spray, bei Bedarf",
        "Salbutamol inhaler, as needed",
    ),
    (
        "Oméprazole 20 mg, 1 le matin",
        "Omeprazol 20 mg, 1 morgens",
        "Omeprazole 20 mg, one in the morning",
    ),
)
# (text in fr, de, en; youngest age in years; given within this many days)
_VACCINES = (
    (
        (
            "Rappel diphtérie-tétanos-polio",
            "Auffrischung Diphtherie-Tetanus-Polio",
            "Diphtheria-tetanus-polio booster",
        ),
        6,
        3650,
    ),
    (
        (
            "Grippe saisonnière 2025-2026",
            "Saisonale Grippe 2025-2026",
            "Seasonal influenza 2025-2026",
        ),
        50,
        60,
    ),
    (("COVID-19, rappel", "COVID-19, Auffrischimpfung", "COVID-19 booster"), 18, 900),
    (
        (
            "Rougeole-oreillons-rubéole (2 doses)",
            "Masern-Mumps-Röteln (2 Dosen)",
            "Measles-mumps-rubella (2 doses)",
        ),
        1,
        3650,
    ),
    (("Hépatite B (3 doses)", "Hepatitis B (3 Dosen)", "Hepatitis B (3 doses)"), 1, 3650),
    (
        ("Papillomavirus (HPV)", "Humane Papillomviren (HPV)", "Human papillomavirus (HPV)"),
        11,
        1800,
    ),
)
_RELATIONSHIPS = {
    "spouse": ("conjoint(e)", "Ehepartner(in)", "spouse"),
    "daughter": ("fille", "Tochter", "daughter"),
    "son": ("fils", "Sohn", "son"),
    "sister": ("sœur", "Schwester", "sister"),
    "parent": ("parent", "Elternteil", "parent"),
}
# (kind, text in fr, de, en, who keeps the original in fr, de, en)
_DIRECTIVES = (
    (
        "living-will",
        "Pas d'acharnement thérapeutique ; soins de confort privilégiés.",
        "Keine lebensverlängernden Maßnahmen um jeden Preis; Vorrang für Palliativpflege.",
        "No aggressive life-prolonging treatment; comfort care first.",
        ("mon médecin traitant", "mein Hausarzt", "my general practitioner"),
    ),
    (
        "do-not-resuscitate",
        "Ne pas réanimer en cas d'arrêt cardiaque.",
        "Keine Wiederbelebung bei Herzstillstand.",
        "Do not resuscitate in case of cardiac arrest.",
        ("ma fille", "meine Tochter", "my daughter"),
    ),
    (
        "health-care-proxy",
        "Personne de confiance désignée pour les décisions médicales.",
        "Vertrauensperson für medizinische Entscheidungen benannt.",
        "A trusted person is named for medical decisions.",
        ("mon notaire", "mein Notar", "my notary"),
    ),
    (
        "organ-donation",
        "J'accepte le don de mes organes.",
        "Ich stimme der Organspende zu.",
        "I consent to organ donation.",
        ("dans mon portefeuille", "in meiner Brieftasche", "in my wallet"),
    ),
)
_PEOPLE = ("Anne", "Marc", "Sophie", "Luc", "Claire", "Paul", "Nathalie", "Jean", "Julie", "Tom")
_ADULT = 18
_MIDLIFE = 40  # long-term treatments start here
_ELDERLY = 70


@dataclass(frozen=True)
class FactPlan:
    """One essential fact to record: what, in which words, and by whom (None: the patient)."""

    category: Category
    text: str
    details: tuple[tuple[str, str], ...]
    author: ProfessionalSpec | None


def draw_essentials(
    seed: str,
    *,
    birth_date: dt.date,
    family: str,
    language: str,
    country: str,
    today: dt.date,
    professionals: list[ProfessionalSpec],
) -> tuple[FactPlan, ...]:
    """The essential facts of one patient, the same for the same ``seed``."""
    rng = random.Random(seed)  # noqa: S311 — synthetic data
    age = (today - birth_date).days // 365
    words = ("fr", "de", "en").index(language) if language in ("fr", "de", "en") else 2
    gps = [p for p in professionals if p.profession is Profession.GENERAL_PRACTITIONER]
    biologists = [p for p in professionals if p.profession is Profession.BIOLOGIST]
    doctor = rng.choice(gps)
    # A child's facts are written by professionals; an adult writes some of their own.
    patient = None if age >= _ADULT else doctor
    plans: list[FactPlan] = []
    if rng.random() < 0.8:
        group = rng.choices([g for g, _ in _BLOOD_GROUPS], weights=[w for _, w in _BLOOD_GROUPS])[0]
        if rng.random() < 0.6:
            text = _LAB_CARD[("fr", "de", "en")[words]].format(group=group)
            plans.append(
                _plan(Category.BLOOD_GROUP, text, {"group": group}, rng.choice(biologists))
            )
        else:
            plans.append(_plan(Category.BLOOD_GROUP, group, {"group": group}, patient))
    for substance, reaction, severity in rng.sample(_ALLERGIES, k=_some(rng, (0.62, 0.3, 0.08))):
        details = {"substance": substance[words], "reaction": reaction[words], "severity": severity}
        text = f"{substance[words]} ({reaction[words]})"
        plans.append(_plan(Category.ALLERGY, text, details, rng.choice((doctor, patient))))
    if age >= _MIDLIFE:
        shares = (0.4, 0.35, 0.25) if age >= _ELDERLY - 10 else (0.6, 0.3, 0.1)
        for treatment in rng.sample(_TREATMENTS, k=_some(rng, shares)):
            plans.append(_plan(Category.TREATMENT, treatment[words], {}, doctor))
    due = [v for v in _VACCINES if age >= v[1]]
    for names, youngest, within in rng.sample(
        due, k=min(len(due), _some(rng, (0.35, 0.35, 0.2, 0.1)))
    ):
        of_age = birth_date + dt.timedelta(days=365 * youngest)
        earliest = min(max(of_age, today - dt.timedelta(days=within)), today)
        day = earliest + dt.timedelta(days=rng.randrange((today - earliest).days + 1))
        details = {"vaccine": names[words], "date": day.isoformat()}
        plans.append(_plan(Category.VACCINATION, names[words], details, doctor))
    if rng.random() < (0.9 if age < _ADULT else 0.5):
        relation = "parent" if age < _ADULT else rng.choice(("spouse", "daughter", "son", "sister"))
        name = f"{rng.choice(_PEOPLE)} {family}"
        label = _RELATIONSHIPS[relation][words]
        details = {"name": name, "relationship": label, "phone": _phone(rng, country)}
        plans.append(_plan(Category.EMERGENCY_CONTACT, f"{name} ({label})", details, patient))
    if age >= _ELDERLY and rng.random() < 0.6:
        kind, *texts, held_by = rng.choice(_DIRECTIVES)
        details = {"kind": kind, "held_by": held_by[words]}
        plans.append(
            _plan(Category.ADVANCE_DIRECTIVE, texts[words], details, rng.choice((doctor, patient)))
        )
    return tuple(plans)


def _plan(
    category: Category, text: str, details: dict[str, str], author: ProfessionalSpec | None
) -> FactPlan:
    return FactPlan(category, text, tuple(sorted(details.items())), author)


def _some(rng: random.Random, shares: tuple[float, ...]) -> int:
    """How many (0, 1, 2, ...) with these shares."""
    return rng.choices(range(len(shares)), weights=shares)[0]


def _phone(rng: random.Random, country: str) -> str:
    if country == "FR":
        return "+33 6 " + " ".join(f"{rng.randrange(100):02d}" for _ in range(4))
    return f"+352 6{rng.choice('2569')}1 {rng.randrange(1000):03d} {rng.randrange(1000):03d}"
