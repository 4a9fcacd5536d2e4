"""The access matrix: which document types each profession may see (``matrix.toml``)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

from carnet.catalogue import load_catalogue
from carnet.directory.models import Profession


@dataclass(frozen=True)
class AccessMatrix:
    """Profession → the document type keys it may see."""

    allowed: Mapping[str, frozenset[str]]

    def permits(self, profession: str | None, type_key: str) -> bool:
        """Whether ``profession`` may see documents of type ``type_key``."""
        if profession is None:
            return False
        keys = self.allowed.get(profession, frozenset())
        return "*" in keys or type_key in keys


def parse_matrix(text: str) -> AccessMatrix:
    """Parse and check a matrix; ``ValueError`` naming the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"access matrix: not valid TOML ({error})") from error
    professions = data.get("professions")
    if not isinstance(professions, dict):
        raise ValueError("access matrix: a [professions] table is required")
    known_types = {document_type.key for document_type in load_catalogue().types} | {"*"}
    allowed: dict[str, frozenset[str]] = {}
    for profession, keys in professions.items():
        if profession not in {p.value for p in Profession}:
            raise ValueError(f"access matrix: unknown profession {profession!r}")
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise ValueError(f"access matrix: {profession} must list document type keys")
        unknown = set(keys) - known_types
        if unknown:
            raise ValueError(
                f"access matrix: {profession} lists unknown types {', '.join(sorted(unknown))}"
            )
        allowed[profession] = frozenset(keys)
    missing = {p.value for p in Profession} - set(allowed)
    if missing:
        raise ValueError(f"access matrix: no entry for {', '.join(sorted(missing))}")
    return AccessMatrix(allowed)


@cache
def load_matrix() -> AccessMatrix:
    """The access matrix shipped with Carnet."""
    return parse_matrix((files("carnet.access") / "matrix.toml").read_text(encoding="utf-8"))
