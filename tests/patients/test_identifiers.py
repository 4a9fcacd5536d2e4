"""National identifiers: building, normalising, validating and the named failures."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stdnum import exceptions as stdnum_exceptions
from stdnum import luhn, verhoeff
from stdnum.fr import nir

from carnet.patients.errors import InvalidIdentifier, PatientError
from carnet.patients.identifiers import (
    FR_NIR,
    FR_RPPS,
    LU_MATRICULE,
    NationalIdentifier,
    birth_date_of_lu_matricule,
    fr_nir,
    fr_rpps,
    lu_matricule,
    validate,
    validate_fr_nir,
    validate_fr_rpps,
    validate_lu_matricule,
)

DIGITS = "0123456789"
NIR_SEXES = (1, 2, 3, 4, 7, 8)
NIR_MONTHS = (*range(1, 13), *range(20, 43), *range(50, 100))

# The example of the OECD "Luxembourg TIN" sheet: born 1893-12-01, serial 057.
OECD_LU_MATRICULE = "1893120105732"


def with_lu_checks(first_11: str) -> str:
    """Append the Luhn and Verhoeff digits, both over the first 11, as the CNS does."""
    return first_11 + luhn.calc_check_digit(first_11) + verhoeff.calc_check_digit(first_11)


def nir_key_by_the_rule(first_13: str) -> str:
    """The NIR key as INSEE defines it: 97 - (number mod 97), 2A -> 19 and 2B -> 18."""
    digits = first_13.replace("2A", "19", 1) if first_13[5:7] == "2A" else first_13
    digits = digits.replace("2B", "18", 1) if first_13[5:7] == "2B" else digits
    return f"{97 - int(digits) % 97:02d}"


lu_birth_dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31))
lu_serials = st.integers(min_value=0, max_value=999)
lu_matricules = st.builds(lu_matricule, lu_birth_dates, lu_serials)

nir_places = st.one_of(
    st.tuples(
        st.sampled_from(["2A", "2B"]) | st.integers(1, 99).map("{:02d}".format),
        st.integers(0, 999).map("{:03d}".format),
    ),
    # Overseas departments have 3 digits and communes 2.
    st.tuples(st.integers(971, 988).map(str), st.integers(0, 99).map("{:02d}".format)),
)
nirs = st.builds(
    lambda sex, year, month, place, order: fr_nir(sex, year, month, place[0], place[1], order),
    st.sampled_from(NIR_SEXES),
    st.integers(0, 99) | st.integers(1900, 2099),
    st.sampled_from(NIR_MONTHS),
    nir_places,
    st.integers(1, 999),
)
rpps_numbers = st.builds(fr_rpps, st.integers(0, 10**10 - 1))
separators = st.lists(st.sampled_from([" ", ".", "-", "\u2013", "\u00a0", "  "]), max_size=3)


def single_digit_changes(number: str) -> list[str]:
    """Every variant of ``number`` with exactly one digit replaced by another digit."""
    return [
        number[:i] + other + number[i + 1 :]
        for i, digit in enumerate(number)
        if digit in DIGITS
        for other in DIGITS
        if other != digit
    ]


def adjacent_transpositions(number: str) -> list[str]:
    """Every variant of ``number`` with two neighbouring, different digits swapped."""
    return [
        number[:i] + number[i + 1] + number[i] + number[i + 2 :]
        for i in range(len(number) - 1)
        if number[i] != number[i + 1] and number[i] in DIGITS and number[i + 1] in DIGITS
    ]


# --- Luxembourg matricule ---------------------------------------------------------------


def test_oecd_example_matricule_is_valid() -> None:
    assert validate_lu_matricule(OECD_LU_MATRICULE) == OECD_LU_MATRICULE
    assert birth_date_of_lu_matricule(OECD_LU_MATRICULE) == dt.date(1893, 12, 1)
    assert lu_matricule(dt.date(1893, 12, 1), 57) == OECD_LU_MATRICULE


def test_verhoeff_digit_is_computed_over_11_digits_not_12() -> None:
    # Over 12 digits the OECD example would end in 9, which is refused.
    assert verhoeff.calc_check_digit(OECD_LU_MATRICULE[:12]) == "9"
    with pytest.raises(InvalidIdentifier) as refused:
        validate_lu_matricule(OECD_LU_MATRICULE[:12] + "9")
    assert refused.value.check == "verhoeff"


@given(lu_birth_dates, lu_serials)
def test_built_matricule_validates_and_round_trips(birth_date: dt.date, serial: int) -> None:
    number = lu_matricule(birth_date, serial)
    assert len(number) == 13
    assert number[:8] == birth_date.strftime("%Y%m%d")
    assert number[8:11] == f"{serial:03d}"
    assert validate_lu_matricule(number) == number
    assert validate(LU_MATRICULE, number) == NationalIdentifier(LU_MATRICULE, number)
    assert birth_date_of_lu_matricule(number) == birth_date


@given(lu_matricules)
def test_any_single_digit_change_of_a_matricule_is_refused(number: str) -> None:
    for changed in single_digit_changes(number):
        with pytest.raises(InvalidIdentifier):
            validate_lu_matricule(changed)


@given(lu_matricules)
def test_any_adjacent_transposition_in_a_matricule_is_refused(number: str) -> None:
    for swapped in adjacent_transpositions(number):
        with pytest.raises(InvalidIdentifier):
            validate_lu_matricule(swapped)


@pytest.mark.parametrize(
    ("first_11", "what"),
    [
        ("19850000123", "month and day unknown"),
        ("19850300123", "day unknown"),
        ("19850015123", "month unknown, day known"),
    ],
)
def test_matricule_accepts_00_for_unknown_birth_month_or_day(first_11: str, what: str) -> None:
    number = with_lu_checks(first_11)
    assert validate_lu_matricule(number) == number, what
    with pytest.raises(ValueError, match="only partly known"):
        birth_date_of_lu_matricule(number)


def test_matricule_accepts_a_leap_day() -> None:
    number = lu_matricule(dt.date(2000, 2, 29), 1)
    assert birth_date_of_lu_matricule(number) == dt.date(2000, 2, 29)


# --- French NIR ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_value", "compact"),
    [
        # The examples of python-stdnum's stdnum.fr.nir documentation.
        ("2 95 10 99 126 111 93", "295109912611193"),
        ("253072B07300470", "253072B07300470"),
        ("253072A07300443", "253072A07300443"),
        ("253072a07300443", "253072A07300443"),
        ("2-95-10-99-126-111-93", "295109912611193"),
        ("2.95.10.99.126.111.93", "295109912611193"),
    ],
)
def test_known_nirs_are_valid(given_value: str, compact: str) -> None:
    assert validate_fr_nir(given_value) == compact
    assert validate(FR_NIR, given_value) == NationalIdentifier(FR_NIR, compact)


def test_nir_builder_reproduces_the_known_examples() -> None:
    assert fr_nir(2, 1995, 10, "99", "126", 111) == "295109912611193"
    assert fr_nir(2, 53, 7, "2B", "073", 4) == "253072B07300470"
    assert fr_nir(2, 1953, 7, "2a", "073", 4) == "253072A07300443"


@given(nirs)
def test_built_nir_validates_round_trips_and_follows_the_key_rule(number: str) -> None:
    assert len(number) == 15
    assert validate_fr_nir(number) == number
    assert validate(FR_NIR, number.lower()) == NationalIdentifier(FR_NIR, number)
    assert number[13:] == nir_key_by_the_rule(number[:13])


@given(st.sampled_from(["2A", "2B"]), st.integers(0, 999), st.integers(1, 999))
def test_corsican_nir_validates(department: str, commune: int, order: int) -> None:
    number = fr_nir(1, 1970, 5, department, f"{commune:03d}", order)
    assert number[5:7] == department
    assert validate_fr_nir(number) == number


@given(nirs)
def test_any_single_digit_change_of_a_nir_is_refused(number: str) -> None:
    for changed in single_digit_changes(number):
        with pytest.raises(InvalidIdentifier):
            validate_fr_nir(changed)


@given(nirs)
def test_any_adjacent_transposition_of_nir_digits_is_refused(number: str) -> None:
    for swapped in adjacent_transpositions(number):
        with pytest.raises(InvalidIdentifier):
            validate_fr_nir(swapped)


@pytest.mark.parametrize("sex", NIR_SEXES)
@pytest.mark.parametrize("month", [1, 12, 20, 42, 50, 99])
def test_nir_accepts_every_allowed_sex_digit_and_month(sex: int, month: int) -> None:
    number = fr_nir(sex, 1980, month, "75", "056", 12)
    assert validate_fr_nir(number) == number


@pytest.mark.parametrize(
    ("refusal", "check"),
    [
        (stdnum_exceptions.InvalidLength(), "length"),
        (stdnum_exceptions.InvalidFormat(), "format"),
        (stdnum_exceptions.InvalidComponent(), "format"),
    ],
)
def test_other_stdnum_refusals_still_name_a_check(
    monkeypatch: pytest.MonkeyPatch, refusal: Exception, check: str
) -> None:
    def refuse(number: str) -> str:
        raise refusal

    monkeypatch.setattr(nir, "validate", refuse)
    with pytest.raises(InvalidIdentifier) as refused:
        validate_fr_nir("295109912611193")
    assert refused.value.check == check
    assert "python-stdnum refused it" in refused.value.message


# --- French RPPS --------------------------------------------------------------------------


def test_luhn_textbook_example_is_a_valid_rpps() -> None:
    # 7992739871 with its Luhn digit 3: the classic worked example of the Luhn formula.
    assert validate_fr_rpps("79927398713") == "79927398713"
    assert fr_rpps(7992739871) == "79927398713"
    assert fr_rpps(0) == "00000000000"


@given(rpps_numbers)
def test_built_rpps_validates_and_round_trips(number: str) -> None:
    assert len(number) == 11
    assert validate_fr_rpps(number) == number
    assert validate(FR_RPPS, number) == NationalIdentifier(FR_RPPS, number)
    assert fr_rpps(int(number[:10])) == number


@given(rpps_numbers)
def test_any_single_digit_change_of_an_rpps_is_refused(number: str) -> None:
    for changed in single_digit_changes(number):
        with pytest.raises(InvalidIdentifier) as refused:
            validate_fr_rpps(changed)
        assert refused.value.check == "luhn"


# --- Normalisation ------------------------------------------------------------------------


@given(
    st.sampled_from(
        [(LU_MATRICULE, lu_matricules), (FR_NIR, nirs), (FR_RPPS, rpps_numbers)]
    ).flatmap(lambda kind: st.tuples(st.just(kind[0]), kind[1])),
    st.data(),
)
def test_spaces_dots_and_dashes_anywhere_are_ignored(
    system_and_number: tuple[str, str], data: st.DataObject
) -> None:
    system, number = system_and_number
    gaps = data.draw(st.lists(separators, min_size=len(number) + 1, max_size=len(number) + 1))
    spaced = "".join("".join(gap) + character for gap, character in zip(gaps, number, strict=False))
    spaced += "".join(gaps[-1])
    assert validate(system, spaced) == NationalIdentifier(system, number)


def test_national_identifier_is_immutable() -> None:
    identifier = validate(LU_MATRICULE, OECD_LU_MATRICULE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        identifier.value = "0"  # type: ignore[misc]


# --- Named failures -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "value", "check", "shown", "says"),
    [
        (LU_MATRICULE, "", "length", "(empty)", "must have 13 digits, not 0"),
        (LU_MATRICULE, "189312010573", "length", "189312010573", "must have 13 digits, not 12"),
        (LU_MATRICULE, "1893 1201 0573 21", "length", "18931201057321", "not 14"),
        (LU_MATRICULE, "18931201O5732", "format", "18931201O5732", "character 9 is 'O'"),
        (
            LU_MATRICULE,
            with_lu_checks("18931301057"),
            "birth_date",
            with_lu_checks("18931301057"),
            "birth date YYYYMMDD, but month 13 does not exist",
        ),
        (
            LU_MATRICULE,
            with_lu_checks("18930132057"),
            "birth_date",
            with_lu_checks("18930132057"),
            "day 32 does not exist",
        ),
        (
            LU_MATRICULE,
            with_lu_checks("19000229057"),
            "birth_date",
            with_lu_checks("19000229057"),
            "1900-02-29 is not a calendar date",
        ),
        (
            LU_MATRICULE,
            with_lu_checks("00000101057"),
            "birth_date",
            with_lu_checks("00000101057"),
            "year 0000 does not exist",
        ),
        (
            LU_MATRICULE,
            "1893120105722",
            "luhn",
            "1893120105722",
            "the Luhn check digit (12th digit) is wrong",
        ),
        (
            LU_MATRICULE,
            "1893120105733",
            "verhoeff",
            "1893120105733",
            "the Verhoeff check digit (13th digit) is wrong",
        ),
        (FR_NIR, "2951099126111", "length", "2951099126111", "must have 15 characters"),
        # stdnum's own examples of a bad length, a bad format and a bad key.
        (FR_NIR, "6546546546546703", "length", "6546546546546703", "not 16"),
        (FR_NIR, "253072C07300443", "format", "253072C07300443", "or 2A/2B for Corsica"),
        (FR_NIR, "295109912611199", "nir_key", "295109912611199", "the key (last 2 digits)"),
        (FR_NIR, "29510991261X193", "format", "29510991261X193", "character 12 is 'X'"),
        (FR_NIR, "595109912611193", "format", "595109912611193", "first digit (sex)"),
        (FR_NIR, "295139912611193", "format", "295139912611193", "(month of birth)"),
        (FR_NIR, "295009912611193", "format", "295009912611193", "not 00"),
        (FR_NIR, "295459912611193", "format", "295459912611193", "not 45"),
        (FR_RPPS, "7992739871", "length", "7992739871", "must have 11 digits, not 10"),
        (FR_RPPS, "7992739871A", "format", "7992739871A", "character 11 is 'A'"),
        (FR_RPPS, "79927398710", "luhn", "79927398710", "Luhn check digit (11th digit)"),
    ],
)
def test_each_check_fails_with_its_name_and_a_plain_message(
    system: str, value: str, check: str, shown: str, says: str
) -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        validate(system, value)
    error = refused.value
    compact = "" if shown == "(empty)" else shown
    assert (error.system, error.value, error.check) == (system, compact, check)
    kind = {
        LU_MATRICULE: "Luxembourg matricule",
        FR_NIR: "French NIR",
        FR_RPPS: "French RPPS number",
    }[system]
    assert str(error) == error.message
    assert error.message.startswith(f"{kind} {shown}: ")
    assert says in error.message


def test_verhoeff_message_matches_the_documented_wording() -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        validate_lu_matricule("1893120105733")
    assert str(refused.value).startswith(
        "Luxembourg matricule 1893120105733: the Verhoeff check digit (13th digit) is wrong"
    )


def test_unknown_system_is_named() -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        validate("urn:oid:9.9.9", "123")
    assert refused.value.check == "unknown_system"
    assert refused.value.system == "urn:oid:9.9.9"
    assert "Unknown identifier system 'urn:oid:9.9.9'" in str(refused.value)
    assert LU_MATRICULE in str(refused.value)


def test_invalid_identifier_is_a_patient_error_and_survives_pickling() -> None:
    with pytest.raises(PatientError) as refused:
        validate(FR_NIR, "295109912611199")
    copy = pickle.loads(pickle.dumps(refused.value))
    assert isinstance(copy, InvalidIdentifier)
    assert (copy.system, copy.value, copy.check, copy.message) == (
        FR_NIR,
        "295109912611199",
        "nir_key",
        str(refused.value),
    )


# --- Builders refuse impossible input ------------------------------------------------------


@pytest.mark.parametrize("serial", [-1, 1000])
def test_lu_matricule_refuses_a_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError, match="serial is 0-999"):
        lu_matricule(dt.date(1985, 3, 15), serial)


@pytest.mark.parametrize("serial", [-1, 10**10])
def test_fr_rpps_refuses_a_serial_out_of_range(serial: int) -> None:
    with pytest.raises(ValueError, match="at most 10 digits"):
        fr_rpps(serial)


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        ((5, 1995, 10, "99", "126", 111), "sex digit"),
        ((2, -1, 10, "99", "126", 111), "birth year"),
        ((2, 1995, 13, "99", "126", 111), "NIR month"),
        ((2, 1995, 0, "99", "126", 111), "NIR month"),
        ((2, 1995, 10, "2C", "126", 111), "5 characters"),
        ((2, 1995, 10, "99", "12", 111), "5 characters"),
        ((2, 1995, 10, "99", "12X", 111), "5 characters"),
        ((2, 1995, 10, "9", "1266", 111), "5 characters"),
        ((2, 1995, 10, "99", "126", 0), "order number"),
        ((2, 1995, 10, "99", "126", 1000), "order number"),
    ],
)
def test_fr_nir_refuses_impossible_fields(
    arguments: tuple[int, int, int, str, str, int], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        fr_nir(*arguments)
