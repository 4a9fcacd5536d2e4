"""What the FHIR API supports, declared once: the routes and the CapabilityStatement both come
from it, so they cannot disagree.

Each interaction module exposes ``router`` and ``SUPPORT`` (what it serves); ``router.py`` lists
the modules; ``GET /fhir/metadata`` merges their declarations.
http://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import carnet

FHIR_VERSION = "4.0.1"


@dataclass(frozen=True)
class SearchParam:
    """One search parameter: its name and FHIR type (token, string, date, reference…)."""

    name: str
    type: str


@dataclass(frozen=True)
class ResourceSupport:
    """What Carnet does with one resource type (a module may declare part of it)."""

    type: str
    interactions: tuple[str, ...] = ()
    search_params: tuple[SearchParam, ...] = ()
    profiles: tuple[str, ...] = ()
    operations: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class SystemSupport:
    """System-level interactions (``transaction`` for ITI-65)."""

    interactions: tuple[str, ...] = ()


def capability_statement(
    declarations: Iterable[ResourceSupport | SystemSupport], *, base_url: str, issuer: str
) -> dict[str, Any]:
    """The CapabilityStatement of the declared support, nothing more."""
    merged: dict[str, dict[str, Any]] = {}
    system: list[str] = []
    for declaration in declarations:
        if isinstance(declaration, SystemSupport):
            system.extend(declaration.interactions)
            continue
        entry = merged.setdefault(
            declaration.type,
            {"interactions": [], "params": {}, "profiles": [], "operations": []},
        )
        entry["interactions"] += [
            i for i in declaration.interactions if i not in entry["interactions"]
        ]
        for param in declaration.search_params:
            entry["params"][param.name] = param.type
        entry["profiles"] += [p for p in declaration.profiles if p not in entry["profiles"]]
        entry["operations"] += [o for o in declaration.operations if o not in entry["operations"]]
    resources = []
    for type_name in sorted(merged):
        entry = merged[type_name]
        resource: dict[str, Any] = {
            "type": type_name,
            "interaction": [{"code": code} for code in entry["interactions"]],
        }
        if entry["params"]:
            resource["searchParam"] = [
                {"name": name, "type": kind} for name, kind in sorted(entry["params"].items())
            ]
        if entry["profiles"]:
            resource["supportedProfile"] = entry["profiles"]
        if entry["operations"]:
            resource["operation"] = [
                {"name": name, "definition": f"{base_url}/OperationDefinition/{name}"}
                for name in entry["operations"]
            ]
        resources.append(resource)
    rest: dict[str, Any] = {
        "mode": "server",
        "security": {
            "cors": False,
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ],
            "extension": [
                {
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "token", "valueUri": f"{issuer}/oauth/token"},
                        {"url": "authorize", "valueUri": f"{issuer}/oauth/authorize"},
                        {"url": "revoke", "valueUri": f"{issuer}/oauth/revoke"},
                    ],
                }
            ],
        },
        "resource": resources,
    }
    if system:
        rest["interaction"] = [{"code": code} for code in dict.fromkeys(system)]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "kind": "instance",
        "software": {"name": "Carnet", "version": carnet.__version__},
        "implementation": {"description": "Carnet shared health record", "url": base_url},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "implementationGuide": ["https://profiles.ihe.net/ITI/MHD/ImplementationGuide/ihe.iti.mhd"],
        "rest": [rest],
    }
