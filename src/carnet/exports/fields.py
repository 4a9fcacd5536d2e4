"""What the export file's parts share: its extensions and code systems, and reading FHIR JSON.

The readers raise ``InvalidExportFile`` naming the field at fault, so an import refuses a file
it cannot read whole rather than guessing.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zipfile
from collections.abc import Mapping
from typing import Any, TypeVar

from carnet.access.actors import Actor, ActorKind, Assurance
from carnet.access.scopes import Scope, parse_scopes
from carnet.directory.models import OrganisationKind, Profession, Professional
from carnet.lifecycle.errors import InvalidExportFile

BUNDLE = "bundle.json"
EXTENSIONS = "http://carnet.health/fhir/StructureDefinition"
SHA256_EXTENSION = f"{EXTENSIONS}/content-sha256"
MASKED_EXTENSION = f"{EXTENSIONS}/masked-from-professionals"
INSURED_SINCE_EXTENSION = f"{EXTENSIONS}/insured-since"
PROFESSION_SYSTEM = "http://carnet.health/fhir/CodeSystem/profession"
ORGANISATION_KIND_SYSTEM = "http://carnet.health/fhir/CodeSystem/organisation-kind"
LANGUAGE_SYSTEM = "urn:ietf:bcp:47"
# Re-imported documents are published by their authors' stand-ins under this client id, so the
# audit trail tells them from the authors' own publications.
IMPORT_CLIENT = "carnet-import"
PUBLISH_SCOPES = parse_scopes("user/DocumentReference.cu system/DocumentReference.cu")[0]


def instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def identifier_of(resource: dict[str, Any], kind: str) -> tuple[str, str]:
    system = json_path(resource, "identifier", 0, "system")
    value = json_path(resource, "identifier", 0, "value")
    if not system or not value:
        raise InvalidExportFile(f"{kind}/{resource.get('id')} has no identifier.", field=kind)
    return system, value


def reference_id(reference: object, kind: str) -> str | None:
    if not isinstance(reference, dict):
        return None
    value = str(reference.get("reference", ""))
    return value.removeprefix(f"{kind}/") if value.startswith(f"{kind}/") else None


_Code = TypeVar("_Code", OrganisationKind, Profession)


def known_code(kind: type[_Code], value: str, where: str) -> _Code:
    try:
        return kind(value)
    except ValueError as error:
        raise InvalidExportFile(f"{where} {value!r} is not a known code.", field=where) from error


def extension_of(resource: dict[str, Any], url: str) -> dict[str, Any]:
    return next((e for e in resource.get("extension", []) if e.get("url") == url), {})


def parse_datetime(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError as error:
        raise InvalidExportFile(
            f"{value!r} is not a FHIR instant.", field="DocumentReference"
        ) from error


def json_path(data: object, *steps: str | int) -> Any:
    """The value at ``steps`` inside nested JSON, or None where a step is missing."""
    for step in steps:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and len(data) > step else None
        else:
            data = data.get(step) if isinstance(data, dict) else None
    return data


def patient_stand_in(patient_id: uuid.UUID, scopes: frozenset[Scope]) -> Actor:
    """The patient, as the import re-enacts their own acts (their rules, their essential data)."""
    return Actor(
        kind=ActorKind.PATIENT,
        subject=f"Patient/{patient_id}",
        assurance=Assurance.HIGH,
        scopes=scopes,
        client_id=IMPORT_CLIENT,
        person_id=patient_id,
        acting_for=patient_id,
    )


def professional_stand_in(professional: Professional, scopes: frozenset[Scope]) -> Actor:
    """A professional, as the import re-enacts what they recorded in the dossier."""
    return Actor(
        kind=ActorKind.PROFESSIONAL,
        subject=f"Practitioner/{professional.id}",
        assurance=Assurance.HIGH,
        scopes=scopes,
        client_id=IMPORT_CLIENT,
        professional_id=professional.id,
        organisation_id=professional.organisation_id,
        profession=professional.profession.value,
    )


def reference_to(kind: str, value: object) -> str | None:
    """``Kind/<value>``, or None for no value."""
    return None if value is None else f"{kind}/{value}"


def referenced(
    reference: object, kind: str, ids: Mapping[str, uuid.UUID], where: str
) -> uuid.UUID | None:
    """The id here of ``Kind/<id in the export>``; None for no reference.

    ``InvalidExportFile`` naming ``where`` when the export does not hold what it names.
    """
    if reference is None:
        return None
    text = str(reference)
    found = ids.get(text.removeprefix(f"{kind}/")) if text.startswith(f"{kind}/") else None
    if found is None:
        raise InvalidExportFile(f"{text} is named but not in the bundle.", field=where)
    return found


def read_json(archive: zipfile.ZipFile, name: str) -> dict[str, Any] | None:
    """The JSON object in the zip's ``name``; None when the zip has no such file (an export
    written before it was carried)."""
    try:
        found = json.loads(archive.read(name))
    except KeyError:
        return None
    except ValueError as error:
        raise InvalidExportFile(f"{name} is not JSON: {error}.", field=name) from error
    if not isinstance(found, dict):
        raise InvalidExportFile(f"{name} is not a JSON object.", field=name)
    return found
