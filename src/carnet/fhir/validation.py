"""Incoming FHIR resources, validated against the R4 structure by fhir.resources (R4B models).

An unknown element, a wrong type or a missing required element becomes ``InvalidResource``,
whose ``field`` is the FHIRPath of the fault (``Bundle.entry[2].resource.content``), which the
OperationOutcome carries in ``issue.expression``.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from carnet.errors import InvalidInput


class InvalidResource(InvalidInput):
    """A resource that is not valid FHIR R4, or not what this interaction takes."""


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
