"""Text for PDFs drawn with the core fonts (Helvetica, Times), which know latin-1 only.

Shared by the demo's documents and the invitation letters: names such as "Łukasz" or words
such as "œuvre" are transliterated rather than refused.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Final

# Characters outside latin-1 that have a conventional ASCII spelling.
_LATIN1_FALLBACK: Final = {
    "\u0141": "L", "\u0142": "l", "\u0152": "OE", "\u0153": "oe", "\u0110": "D", "\u0111": "d",
    "\u20ac": "EUR", "\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"',
    "\u201d": '"', "\u2026": "...", "\u2264": "<=", "\u2265": ">=", "\u2212": "-",
}  # fmt: skip


@functools.lru_cache(maxsize=1024)
def _latin1_char(char: str) -> str:
    """Spell one character with latin-1 characters."""
    if ord(char) < 256:
        return char
    if char in _LATIN1_FALLBACK:
        return _LATIN1_FALLBACK[char]
    base = "".join(
        c
        for c in unicodedata.normalize("NFKD", char)
        if ord(c) < 256 and not unicodedata.combining(c)
    )
    return base or "?"


def latin1(text: str) -> str:
    """``text`` with every character outside latin-1 transliterated."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return "".join(_latin1_char(c) for c in text)
    return text
