"""Incoming FHIR resources, validated against the R4 structure by fhir.resources (R4B models).

An unknown element, a wrong type or a missing required element becomes ``InvalidResource``,
whose ``field`` is the FHIRPath of the fault (``Bundle.entry[2].resource.content``), which the
OperationOutcome carries in ``issue.expression``.

Bodies are read by ``read_json`` first: orjson (which stops at 1,024 levels with an error, where
the standard library's parser raises ``RecursionError`` near 1,000), then a walk that refuses
nesting deeper than ``MAX_DEPTH`` and control characters in any string, before pydantic's
recursive validation sees the document.
"""

from __future__ import annotations

from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from carnet.errors import InvalidInput, InvalidValue
from carnet.storable import check_text

# The deepest FHIR resource Carnet takes (a Bundle holding a DocumentReference's context) is
# under 15 levels; 64 leaves room for extensions without letting a recursive validator run away.
MAX_DEPTH = 64


class InvalidResource(InvalidInput):
    """A resource that is not valid FHIR R4, or not what this interaction takes."""


def read_json(body: bytes, *, root: str) -> Any:
    """The JSON document of ``body``; ``InvalidResource`` or ``InvalidValue`` naming ``root``.

    Refused: what is not JSON (or not UTF-8), nesting deeper than ``MAX_DEPTH``, and strings
    (names included) holding a character FHIR strings may not hold (below U+0020 except tab,
    CR and LF, http://hl7.org/fhir/R4/datatypes.html#string).
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        if "depth" in str(error):
            raise _too_deep(root) from None
        raise InvalidResource("The body is not JSON.", field=root) from None
    _walk(data, root)
    return data


def _walk(data: Any, root: str) -> None:
    # Iterative, so that the walk itself cannot exhaust the stack.
    pending: list[tuple[Any, str, int]] = [(data, root, 1)]
    while pending:
        value, path, depth = pending.pop()
        if isinstance(value, str):
            check_text(value, field=path)
            continue
        if depth > MAX_DEPTH and isinstance(value, dict | list):
            raise _too_deep(path)
        if isinstance(value, dict):
            for key, item in value.items():
                check_text(key, field=f"{path}.{key!r}", free_text=False)
                pending.append((item, f"{path}.{key}", depth + 1))
        elif isinstance(value, list):
            pending.extend(
                (item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)
            )


def _too_deep(path: str) -> InvalidValue:
    return InvalidValue(
        f"The JSON is nested more than {MAX_DEPTH} levels deep.", field=path, reason="structure"
    )


def validate(data: Any, *, expected: str, path: str | None = None) -> FHIRAbstractModel:
    """Validate ``data`` as a FHIR resource of type ``expected``; return its model."""
    path = path or expected
    if not isinstance(data, dict):
        raise InvalidResource(f"{path} must be a JSON object.", field=path)
    resource_type = data.get("resourceType")
    if resource_type != expected:
        raise InvalidResource(
            f"Expected a {expected}, got {resource_type or 'no resourceType'}.",
            field=f"{path}.resourceType",
        )
    try:
        model = get_fhir_model_class(expected).model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = fhir_path(path, first["loc"])
        raise InvalidResource(f"{where}: {first['msg']}", field=where) from error
    return model


def fhir_path(root: str, location: tuple[int | str, ...]) -> str:
    """A pydantic error location as a FHIRPath, e.g. ``Bundle.entry[0].resource``."""
    path = root
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.startswith(("function-", "value_error", "model_")) or " " in part:
            continue
        else:
            path += f".{part}"
    return path
