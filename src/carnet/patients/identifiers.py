"""National identifiers of patients and health professionals: normalise, validate, build.

Each identifier kind is named by a FHIR ``Identifier.system`` URI:

* ``LU_MATRICULE`` — Luxembourg national identification number (the 13-digit
  "matricule" used by the CNS). No official FHIR system URI is published for it, so
  Carnet names it under its own namespace.
* ``FR_NIR`` — French NIR used as INS (Identifiant National de Santé), under the
  INS-NIR OID 1.2.250.1.213.1.4.8 that the ANS specifies.
* ``FR_RPPS`` — French RPPS number of a health professional, under the OID
  1.2.250.1.71.4.2.1 used by the ANS implementation guides.

Every refusal is an :class:`~carnet.patients.errors.InvalidIdentifier` whose ``check``
names the rule that failed and whose message says so in plain words. Check digits
are computed with python-stdnum (``stdnum.luhn``, ``stdnum.verhoeff``,
``stdnum.fr.nir``) rather than re-implemented here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from stdnum import exceptions as stdnum_exceptions
from stdnum import luhn, verhoeff
from stdnum.fr import nir

from carnet.patients.errors import InvalidIdentifier

__all__ = [
    "FR_NIR",
    "FR_RPPS",
    "LU_MATRICULE",
    "NationalIdentifier",
    "birth_date_of_lu_matricule",
    "fr_nir",
    "fr_rpps",
    "lu_matricule",
    "validate",
    "validate_fr_nir",
    "validate_fr_rpps",
    "validate_lu_matricule",
]

LU_MATRICULE: Final = "http://carnet.health/fhir/sid/lu-matricule"
_NIR_LENGTH: Final = 15
FR_NIR: Final = "urn:oid:1.2.250.1.213.1.4.8"
FR_RPPS: Final = "urn:oid:1.2.250.1.71.4.2.1"

_KIND: Final[Mapping[str, str]] = {
    LU_MATRICULE: "Luxembourg matricule",
    FR_NIR: "French NIR",
    FR_RPPS: "French RPPS number",
}

# People copy numbers from cards and letters that group digits with spaces, dots or
# dashes, including typographic dashes and the minus sign pasted from word processors.
_SEPARATORS: Final = re.compile(r"[\s.\-\u2010-\u2015\u2212]+")
_DIGITS: Final = frozenset("0123456789")

# INSEE: 1 and 2 are the sex of a person registered from a civil-status record;
# 3, 4, 7 and 8 mark provisional numbers (people born abroad whose registration is
# still pending).
_NIR_SEX_DIGITS: Final = frozenset("123478")
# INSEE: months 20-42 and 50-99 are given when the civil-status record does not
# state the month of birth; 01-12 are the real months.
_NIR_MONTHS: Final = frozenset([*range(1, 13), *range(20, 43), *range(50, 100)])
_CORSICA: Final = frozenset({"2A", "2B"})


@dataclass(frozen=True, slots=True)
class NationalIdentifier:
    """A validated national identifier; build it with :func:`validate`.

    ``value`` is the compact, canonical form: digits only, except that a French NIR
    keeps the Corsican department codes ``2A``/``2B`` in upper case.
    """

    system: str
    value: str


def validate(system: str, value: str) -> NationalIdentifier:
    """Normalise and validate ``value`` as an identifier of kind ``system``.

    Spaces, dots and dashes are removed and letters upper-cased before checking.
    Raises :class:`InvalidIdentifier` naming the failed check, including
    ``"unknown_system"`` when ``system`` is not one of ``LU_MATRICULE``, ``FR_NIR``
    or ``FR_RPPS``.
    """
    validator = _VALIDATORS.get(system)
    if validator is None:
        known = ", ".join(_VALIDATORS)
        raise InvalidIdentifier(
            system=system,
            value=_normalise(value),
            check="unknown_system",
            message=f"Unknown identifier system {system!r}: expected one of {known}",
        )
    return NationalIdentifier(system=system, value=validator(value))


def validate_lu_matricule(value: str) -> str:
    """Validate a Luxembourg matricule and return its 13 digits.

    Layout: ``YYYYMMDD`` birth date, 3-digit serial, a Luhn check digit and a
    Verhoeff check digit, both computed over the first 11 digits. A month or day of
    ``00`` is accepted: the national register uses it for people whose exact birth
    date is unknown. Checks, in order: ``length``, ``format``, ``birth_date``,
    ``luhn``, ``verhoeff``.
    """
    number = _normalise(value)
    if len(number) != 13:
        raise _refused(LU_MATRICULE, number, "length", f"it must have 13 digits, not {len(number)}")
    _require_digits(LU_MATRICULE, number)
    problem = _lu_birth_date_problem(number[:8])
    if problem is not None:
        raise _refused(
            LU_MATRICULE,
            number,
            "birth_date",
            f"the first 8 digits must be a birth date YYYYMMDD, but {problem}",
        )
    if luhn.calc_check_digit(number[:11]) != number[11]:
        raise _refused(
            LU_MATRICULE,
            number,
            "luhn",
            "the Luhn check digit (12th digit) is wrong; look for a mistyped or swapped digit",
        )
    if verhoeff.calc_check_digit(number[:11]) != number[12]:
        raise _refused(
            LU_MATRICULE,
            number,
            "verhoeff",
            "the Verhoeff check digit (13th digit) is wrong; look for a mistyped digit",
        )
    return number


def validate_fr_nir(value: str) -> str:
    """Validate a French NIR (INS-NIR) and return its 15 characters.

    Layout: sex digit, 2-digit birth year, 2-digit birth month, 5-character place of
    birth (department ``2A``/``2B`` allowed for Corsica), 3-digit order number and a
    2-digit key ``97 - (first 13 as a number mod 97)``, where ``2A``/``2B`` count as
    ``19``/``18``. Checks: ``length``, ``format`` (characters, sex digit, month),
    ``nir_key``.
    """
    number = _normalise(value)
    if len(number) != 15:
        raise _refused(
            FR_NIR,
            number,
            "length",
            f"it must have 15 characters (13 plus a 2-digit key), not {len(number)}",
        )
    department = number[5:7]
    if department not in _CORSICA and not _is_digits(department):
        raise _refused(
            FR_NIR,
            number,
            "format",
            "characters 6-7 (department of birth) must be digits, or 2A/2B for Corsica, "
            f"not {department!r}",
        )
    _require_digits(FR_NIR, number[:5] + "00" + number[7:], shown=number)
    if number[0] not in _NIR_SEX_DIGITS:
        raise _refused(
            FR_NIR,
            number,
            "format",
            "the first digit (sex) must be 1 or 2, or 3, 4, 7 or 8 for a provisional "
            f"number, not {number[0]}",
        )
    if int(number[3:5]) not in _NIR_MONTHS:
        raise _refused(
            FR_NIR,
            number,
            "format",
            "digits 4-5 (month of birth) must be 01-12, or 20-42 or 50-99 when the month "
            f"is unknown, not {number[3:5]}",
        )
    try:
        nir.validate(number)
    except stdnum_exceptions.InvalidChecksum as exc:
        raise _refused(
            FR_NIR,
            number,
            "nir_key",
            "the key (last 2 digits) does not match the first 13 characters; "
            "look for a mistyped or swapped digit",
        ) from exc
    except stdnum_exceptions.ValidationError as exc:
        # The checks above already cover what stdnum refuses; should a later stdnum
        # grow stricter, its refusal still surfaces as an InvalidIdentifier.
        check = "length" if isinstance(exc, stdnum_exceptions.InvalidLength) else "format"
        raise _refused(FR_NIR, number, check, f"python-stdnum refused it: {exc}") from exc
    return number


def validate_fr_rpps(value: str) -> str:
    """Validate a French RPPS number and return its 11 digits.

    Layout: 10-digit serial and a Luhn check digit (the Luhn sum over all 11 digits
    is 0). Checks, in order: ``length``, ``format``, ``luhn``.
    """
    number = _normalise(value)
    if len(number) != 11:
        raise _refused(FR_RPPS, number, "length", f"it must have 11 digits, not {len(number)}")
    _require_digits(FR_RPPS, number)
    if not luhn.is_valid(number):
        raise _refused(
            FR_RPPS,
            number,
            "luhn",
            "the Luhn check digit (11th digit) is wrong; look for a mistyped or swapped digit",
        )
    return number


def lu_matricule(birth_date: dt.date, serial: int) -> str:
    """Build a valid Luxembourg matricule from a birth date and a serial (0-999)."""
    if not 0 <= serial <= 999:
        raise ValueError(f"a matricule serial is 0-999, not {serial}")
    body = f"{birth_date.year:04d}{birth_date.month:02d}{birth_date.day:02d}{serial:03d}"
    return body + luhn.calc_check_digit(body) + verhoeff.calc_check_digit(body)


def fr_nir(  # noqa: PLR0913, PLR0917, RUF100 - arguments are the NIR's fields, in order
    sex: int, birth_year: int, birth_month: int, department: str, commune: str, order: int
) -> str:
    """Build a valid French NIR, key included.

    ``birth_year`` may be the full year (1995) or its last two digits (95).
    ``department`` + ``commune`` form the 5-character place of birth: ``"75"`` +
    ``"056"``, ``"2A"`` + ``"004"``, ``"971"`` + ``"01"``, or ``"99"`` + a country code
    for people born abroad. ``order`` is 1-999.
    """
    if str(sex) not in _NIR_SEX_DIGITS:
        raise ValueError(f"a NIR sex digit is 1, 2, 3, 4, 7 or 8, not {sex}")
    if not 0 <= birth_year <= 9999:
        raise ValueError(f"a birth year is 0-9999, not {birth_year}")
    if birth_month not in _NIR_MONTHS:
        raise ValueError(f"a NIR month is 01-12, 20-42 or 50-99, not {birth_month}")
    department = department.upper()
    place = department + commune
    if (
        len(place) != 5
        or not _is_digits(commune)
        or not (department in _CORSICA or (len(department) in (2, 3) and _is_digits(department)))
    ):
        raise ValueError(
            "department and commune must form 5 characters of digits (2A/2B allowed as "
            f"the department), not {department!r} + {commune!r}"
        )
    if not 1 <= order <= 999:
        raise ValueError(f"a NIR order number is 1-999, not {order}")
    body = f"{sex}{birth_year % 100:02d}{birth_month:02d}{place}{order:03d}"
    key: str = nir.calc_check_digits(body)
    return body + key


def fr_rpps(serial: int) -> str:
    """Build a valid French RPPS number from a 10-digit serial (0 to 9 999 999 999)."""
    if not 0 <= serial < 10**10:
        raise ValueError(f"an RPPS serial has at most 10 digits, not {serial}")
    body = f"{serial:010d}"
    return body + luhn.calc_check_digit(body)


def birth_date_of_lu_matricule(value: str) -> dt.date:
    """The birth date encoded in a Luxembourg matricule.

    Raises :class:`InvalidIdentifier` if ``value`` is not a valid matricule, and
    ``ValueError`` if its month or day is ``00`` (birth date not exactly known): no
    made-up date is returned in that case.
    """
    number = validate_lu_matricule(value)
    year, month, day = int(number[:4]), int(number[4:6]), int(number[6:8])
    if month == 0 or day == 0:
        raise ValueError(
            f"Luxembourg matricule {number}: the birth date is only partly known "
            f"({number[:4]}-{number[4:6]}-{number[6:8]}, 00 = unknown)"
        )
    return dt.date(year, month, day)


_VALIDATORS: Final[Mapping[str, Callable[[str], str]]] = {
    LU_MATRICULE: validate_lu_matricule,
    FR_NIR: validate_fr_nir,
    FR_RPPS: validate_fr_rpps,
}


def system_of_typed(value: str) -> str:
    """The system of a patient's identifier as a person typed it, with no system chosen.

    A French NIR has 15 characters (13 and a 2-digit key), a Luxembourg matricule 13 digits;
    ``validate`` then says what is wrong with either.
    """
    return FR_NIR if len(_normalise(value)) == _NIR_LENGTH else LU_MATRICULE


def _normalise(value: str) -> str:
    return _SEPARATORS.sub("", value).upper()


def _is_digits(text: str) -> bool:
    # str.isdigit() also accepts non-ASCII digits such as "²" or "٣".
    return bool(text) and all(character in _DIGITS for character in text)


def _require_digits(system: str, number: str, *, shown: str | None = None) -> None:
    for position, character in enumerate(number, start=1):
        if character not in _DIGITS:
            raise _refused(
                system,
                shown if shown is not None else number,
                "format",
                f"it must contain only digits, but character {position} is {character!r}",
            )


def _lu_birth_date_problem(yyyymmdd: str) -> str | None:
    year, month, day = int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8])
    if year == 0:
        return "year 0000 does not exist"
    if month > 12:
        return f"month {yyyymmdd[4:6]} does not exist (00 means unknown)"
    if day > 31:
        return f"day {yyyymmdd[6:8]} does not exist (00 means unknown)"
    if month and day:
        try:
            dt.date(year, month, day)
        except ValueError:
            return f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:8]} is not a calendar date"
    return None


def _refused(system: str, number: str, check: str, problem: str) -> InvalidIdentifier:
    return InvalidIdentifier(
        system=system,
        value=number,
        check=check,
        message=f"{_KIND[system]} {number or '(empty)'}: {problem}",
    )
