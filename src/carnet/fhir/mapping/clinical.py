"""A clinical fact as the FHIR R4 resource of its kind (Observation, Immunization…).

The id carries the dossier (``carnet.fhir.ids``); ``meta.source`` names the DocumentReference
the fact was taken from — its provenance, which the policy judges it by — and the subject is the
dossier's Patient. The rest is the elements Carnet kept of the source resource.
http://hl7.org/fhir/R4/resource.html#Meta (``meta.source``: "a uri that identifies the source
system of the resource").
"""

from __future__ import annotations

from typing import Any

from carnet.clinical.facts import Fact
from carnet.clinical.models import FactKind
from carnet.fhir.ids import document_resource_id

# The resources whose subject element is named ``patient`` in R4.
_PATIENT_ELEMENT = (FactKind.IMMUNIZATION, FactKind.ALLERGY)


def fact_resource_id(fact: Fact) -> str:
    """The FHIR id of a fact (the dossier and the fact, as for documents)."""
    return document_resource_id(fact.patient_id, fact.id)


def source_reference(fact: Fact, *, base_url: str) -> str:
    """The DocumentReference the fact came from, as an absolute URL."""
    return f"{base_url}/DocumentReference/{document_resource_id(fact.patient_id, fact.document_id)}"


def clinical_resource(fact: Fact, *, base_url: str) -> dict[str, Any]:
    """The fact as a FHIR R4 resource of its kind."""
    subject = "patient" if fact.kind in _PATIENT_ELEMENT else "subject"
    return {
        "resourceType": fact.kind.value,
        "id": fact_resource_id(fact),
        "meta": {"source": source_reference(fact, base_url=base_url)},
        **fact.resource,
        subject: {"reference": f"Patient/{fact.patient_id}"},
    }
