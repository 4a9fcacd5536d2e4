"""What a new password must be: NIST SP 800-63B section 5.1.1.2 (memorized secrets).

Length is what makes a password hard to guess, so the rules are length and a blocklist, and
nothing else: at least ``MIN_PASSWORD`` characters for everyone (patients reach their own
health record, professionals their patients', operators the country's figures: a longer floor
than NIST's 8 for all of them), at most ``MAX_PASSWORD`` (enough for a passphrase, and a bound
on the scrypt input), any characters including spaces, and no composition rules (NIST: they
make passwords worse). Refused: the 30,000 most common passwords (the list the maintained
``zxcvbn`` package ships, read locally: never a network call at sign-up), the same with digits
or symbols added at the end, repetitive or sequential characters, the service's name and the
person's own identifier. Checked only when a password is set; existing ones are not re-judged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from carnet.auth.errors import InvalidRequest

MIN_PASSWORD = 12
MAX_PASSWORD = 128
# NIST SP 800-63B 5.1.1.2: "context-specific words, such as the name of the service".
_CONTEXT_WORDS = ("carnet",)
_TRAILING = re.compile(r"[\d\W_]+$")
_SEQUENCES = "abcdefghijklmnopqrstuvwxyz 0123456789 qwertyuiop asdfghjkl zxcvbnm azertyuiop"


class PasswordRefused(InvalidRequest):
    """The new password does not meet the rules; the message says which one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="password")


@cache
def _common() -> frozenset[str]:
    # Imported here: the list is 30,000 words that only account set-up needs.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]  # noqa: PLC0415

    words: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(words)


def check_new_password(password: str, *, identifiers: Iterable[str] = ()) -> None:
    """Refuse ``password`` with ``PasswordRefused`` unless it meets the rules above.

    ``identifiers`` are the person's own: national identifier, professional identifier,
    operator name. Nothing is refused for its make-up (no "one digit, one capital").
    """
    if len(password) < MIN_PASSWORD:
        raise PasswordRefused(f"A password has at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise PasswordRefused(f"A password has at most {MAX_PASSWORD} characters.")
    folded = password.casefold()
    squeezed = re.sub(r"\s+", "", folded)
    stem = _TRAILING.sub("", squeezed)
    if squeezed in _common() or (len(stem) >= 6 and stem in _common()):
        raise PasswordRefused(
            "This password is among the most common ones, which are tried first: choose another."
        )
    if _repetitive(squeezed):
        raise PasswordRefused("A password of repeated or sequential characters is easy to guess.")
    for word in (*_CONTEXT_WORDS, *(i.casefold() for i in identifiers if i)):
        bare = re.sub(r"\s+", "", word)
        if bare and (bare in {squeezed, stem} or (len(bare) >= 6 and bare in squeezed)):
            raise PasswordRefused(
                "A password may not be, or contain, your identifier or the service's name."
            )


def _repetitive(text: str) -> bool:
    """One short unit repeated ("aaaa…", "abcabc…") or a run along the alphabet or keyboard."""
    for size in range(1, 4):
        unit = text[:size]
        if unit and unit * (len(text) // size) + unit[: len(text) % size] == text:
            return True
    forward = any(text in line for line in _SEQUENCES.split())
    backward = any(text in line[::-1] for line in _SEQUENCES.split())
    return forward or backward
