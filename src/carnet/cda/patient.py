"""Who a CDA document is about: the recordTarget's ids as Carnet's national identifiers.

A CDA II names its assigning authority by an OID (its ``root``) and the number by its
``extension``. The French INS-NIR has its own OID (1.2.250.1.213.1.4.8, ANS). The Luxembourg
matricule has none published, so Carnet names it, in CDA, by the OID derived from its FHIR system
URI under the UUID arc 2.25 (ITU-T X.667: the UUID v5 of the URI) — what Carnet's own CDA
documents carry. Any other root (a hospital's local ids, a US SSN) names no dossier.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Final

from carnet.cda.errors import CdaRefused
from carnet.cda.header import CdaHeader
from carnet.patients import identifiers
from carnet.patients.errors import InvalidIdentifier
from carnet.patients.identifiers import NationalIdentifier


def oid_of(system: str) -> str:
    """The OID that names identifier ``system`` in a CDA II root (see the module's docstring)."""
    if system.startswith("urn:oid:"):
        return system.removeprefix("urn:oid:")
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, system).int}"


# The roots that carry a patient's national identifier, and the system each names.
PATIENT_ROOTS: Final = {
    oid_of(system): system for system in (identifiers.LU_MATRICULE, identifiers.FR_NIR)
}


def national_identifiers(header: CdaHeader) -> tuple[NationalIdentifier, ...]:
    """The recordTarget's ids that are national identifiers Carnet knows, validated.

    Raises ``CdaRefused`` (reason ``patient``, field ``subject``) for one whose number fails its
    check (a matricule's check digits, a NIR's key): a typing error is not another patient.
    """
    found = []
    for element in header.patient_ids:
        system = PATIENT_ROOTS.get(element.root or "")
        if system is None or not element.extension:
            continue
        try:
            found.append(identifiers.validate(system, element.extension))
        except InvalidIdentifier as error:
            raise CdaRefused(
                f"The recordTarget's id {element} is not a valid identifier: {error.message}.",
                reason="patient",
                field="subject",
            ) from error
    return tuple(found)


def check_patient(header: CdaHeader, dossier: Collection[NationalIdentifier]) -> None:
    """Refuse a document whose patient is not the dossier's (``CdaRefused``, reason ``patient``,
    field ``subject``): one recordTarget, named by at least one national identifier, every one
    of which is the dossier patient's."""
    if header.record_targets != 1:
        raise CdaRefused(
            f"The document has {header.record_targets} recordTargets; a dossier's document is "
            "about one patient.",
            reason="patient",
            field="subject",
        )
    named = national_identifiers(header)
    if not named:
        shown = ", ".join(str(i) for i in header.patient_ids) or "none"
        raise CdaRefused(
            f"The recordTarget names its patient by no national identifier Carnet knows (ids: "
            f"{shown}). Name them by their Luxembourg matricule (root "
            f"{oid_of(identifiers.LU_MATRICULE)}) or French INS-NIR (root "
            f"{oid_of(identifiers.FR_NIR)}).",
            reason="patient",
            field="subject",
        )
    for identifier in named:
        if identifier not in dossier:
            raise CdaRefused(
                f"The recordTarget's patient ({identifier.value}, {identifier.system}) is not "
                "the patient of this dossier.",
                reason="patient",
                field="subject",
            )
