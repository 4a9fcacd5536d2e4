"""The access matrix file: loads, covers every profession, refuses a broken file."""

from __future__ import annotations

import pytest

from carnet.access.matrix import load_matrix, parse_matrix
from carnet.catalogue import load_catalogue
from carnet.directory.models import Profession


def test_every_profession_has_an_entry() -> None:
    matrix = load_matrix()
    assert set(matrix.allowed) == {p.value for p in Profession}


def test_doctors_see_every_type_others_a_subset() -> None:
    matrix = load_matrix()
    for document_type in load_catalogue().types:
        assert matrix.permits("general-practitioner", document_type.key)
        assert matrix.permits("emergency-physician", document_type.key)
    assert matrix.permits("pharmacist", "prescription")
    assert not matrix.permits("pharmacist", "imaging-report")
    assert not matrix.permits("physiotherapist", "lab-report")
    assert not matrix.permits(None, "lab-report")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[professions]\nastrologer = ['*']", "unknown profession"),
        ("[professions]\nnurse = ['horoscope']", "unknown types horoscope"),
        ("[professions]\nnurse = 'lab-report'", "must list"),
        ("nothing = 1", r"\[professions\] table"),
        ("[professions]\nnurse = ['*']", "no entry for"),
        ("[professions", "not valid TOML"),
    ],
)
def test_broken_matrix_is_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_matrix(text)
