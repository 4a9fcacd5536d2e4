"""The demo's sign-in guide names people the demo really has, and how they sign in."""

from __future__ import annotations

import re

from carnet.demo.guide import sign_in_guide
from carnet.demo.population import build_population

SEED = 20261123


def test_the_guide_names_an_adult_patient_of_the_population_and_the_demo_secrets() -> None:
    lines = sign_in_guide(SEED, "http://127.0.0.1:8000")
    text = "\n".join(lines)
    assert "http://127.0.0.1:8000/portal" in text
    assert "'carnet-demo'" in text
    found = re.search(r"matricule (\d{13})", text)
    assert found is not None
    [patient] = [
        spec
        for spec in build_population(SEED).patients
        if (spec.identifiers and found.group(1) in dict(spec.identifiers).values())
    ]
    assert patient.birth_date.year < 2008
    assert "PIN 1234" in text
    assert "operator:agency" in text


def test_the_guide_follows_the_seed() -> None:
    assert sign_in_guide(1, "http://x") != sign_in_guide(2, "http://x")
