"""``GET /fhir/Patient/{id}/$summary``: the International Patient Summary of a dossier.

http://hl7.org/fhir/uv/ips/OperationDefinition-summary.html — answers an IPS document Bundle
(``carnet.fhir.mapping.ips``) built from what the caller may see: the patient's demographics
(read and recorded as a PDQm read is), and the facts of each section's kinds the token's scopes
cover, each only if the caller sees its source document (``carnet.clinical.facts``). A section
the caller sees nothing of says so (``emptyReason``), without telling whether something is kept
from them.
"""

from __future__ import annotations

import email.utils

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet.access import identification as access_identification
from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.errors import AccessDenied
from carnet.clinical import facts as clinical
from carnet.fhir.capability import ResourceSupport
from carnet.fhir.dependencies import BaseUrl, CurrentPlatform, transaction
from carnet.fhir.mapping.ips import SUMMARY_KINDS, patient_summary
from carnet.fhir.mapping.patient import patient_resource
from carnet.fhir.outcome import FhirResponse
from carnet.fhir.patient_reference import InvalidPatientReference, patient_id
from carnet.web.authentication import CurrentActor

router = APIRouter()
SUPPORT = (ResourceSupport("Patient", operations=("summary",)),)


@router.get("/Patient/{resource_id}/$summary", summary="IPS $summary", tags=["Clinical data"])
def summary(
    resource_id: str, actor: CurrentActor, platform: CurrentPlatform, base: BaseUrl
) -> JSONResponse:
    """The patient's IPS document, from what the actor may see (404 for a dossier it may not)."""
    try:
        wanted = patient_id(resource_id, field="id")
    except InvalidPatientReference:
        raise AccessDenied("malformed id") from None
    with transaction(platform) as session:
        patient = access_identification.read_demographics(
            session, actor, wanted, clock=platform.clock
        )
        dossier = open_dossier(
            session, actor, wanted, purposes.READ_CLINICAL_FACTS, clock=platform.clock
        )
        kinds = clinical.kinds_in_scope(dossier, SUMMARY_KINDS)
        page = clinical.find_facts(session, dossier, kinds) if kinds else None
        bundle = patient_summary(
            patient_resource(patient, full=False),
            page.facts if page else [],
            base_url=base,
            now=platform.clock.now(),
        )
    modified = email.utils.format_datetime(platform.clock.now(), usegmt=True)
    return FhirResponse(bundle, headers={"Last-Modified": modified})
