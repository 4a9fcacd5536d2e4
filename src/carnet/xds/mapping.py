"""How XDS metadata values map onto Carnet's, the same way MHD's do (both directions).

The IHE MHD specification (ITI TF-2 3.65.4.1.3, "XDS and MHD mapping") is the reference, so a
document published by either way in reads the same through the other:

* ``uniqueId`` ↔ ``masterIdentifier``: an OID ``1.2.3`` is ``urn:oid:1.2.3``; any other value
  (a ``urn:uuid:``, an ``OID^extension``) is kept as it is.
* ``entryUUID`` ↔ ``DocumentReference.identifier`` (``urn:uuid:<the document's id>``).
* ``patientId`` (an HL7 v2 CX, ``value^^^&OID&ISO``) ↔ the patient's national identifier: the
  assigning authority's OID names the identifier system (``ASSIGNING_AUTHORITIES``).
* A code's ``codingScheme`` ↔ a FHIR ``system``: an OID is ``urn:oid:<oid>`` except for the
  terminologies FHIR names by URL (LOINC, SNOMED CT, the HL7 v3 confidentiality codes).
* XDS times (``DTM``: ``YYYY[MM[DD[hh[mm[ss]]]]]``, always UTC) ↔ timezone-aware instants.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Final

from carnet.patients import identifiers

# OIDs of the assigning authorities of the patient identifiers Carnet's dossiers carry. The INS
# (NIR) OID is the ANS's; the Luxembourg matricule has no published OID, so Carnet names it by
# the ITU-T X.667 OID derived from its identifier system's URI (2.25.<UUID v5 as an integer>),
# as the demo's CDA documents already do.
FR_NIR_OID: Final = identifiers.FR_NIR.removeprefix("urn:oid:")
LU_MATRICULE_OID: Final = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, identifiers.LU_MATRICULE).int}"
ASSIGNING_AUTHORITIES: Final = {
    FR_NIR_OID: identifiers.FR_NIR,
    LU_MATRICULE_OID: identifiers.LU_MATRICULE,
}
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
# Terminologies FHIR names by URL rather than by OID (http://hl7.org/fhir/R4/terminologies-systems.html).
_SYSTEMS_BY_OID: Final = {
    "2.16.840.1.113883.6.1": "http://loinc.org",
    "2.16.840.1.113883.6.96": "http://snomed.info/sct",
    "2.16.840.1.113883.5.25": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
}
_OIDS_BY_SYSTEM: Final = {system: oid for oid, system in _SYSTEMS_BY_OID.items()}
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?$")


def is_oid(value: str) -> bool:
    """Whether ``value`` is a dotted OID (ISO/IEC 8824)."""
    return bool(_OID.match(value))


def master_identifier(unique_id: str) -> str:
    """The ``masterIdentifier`` value of an XDS ``uniqueId``."""
    unique_id = unique_id.strip()
    return f"urn:oid:{unique_id}" if is_oid(unique_id) else unique_id


def unique_id(master: str) -> str:
    """The XDS ``uniqueId`` of a ``masterIdentifier`` value."""
    return master.removeprefix("urn:oid:")


def entry_uuid(value: uuid.UUID) -> str:
    """An ``entryUUID`` (``urn:uuid:...``) of a Carnet id."""
    return f"urn:uuid:{value}"


def parse_entry_uuid(value: str) -> uuid.UUID | None:
    """The UUID of ``urn:uuid:...``; None for a symbolic id (which the registry replaces)."""
    if not value.startswith("urn:uuid:"):
        return None
    try:
        return uuid.UUID(value.removeprefix("urn:uuid:"))
    except ValueError:
        return None


@dataclass(frozen=True)
class PatientIdentifier:
    """A patient's national identifier read from an XDS ``patientId`` (CX)."""

    system: str
    value: str


def parse_patient_id(cx: str) -> PatientIdentifier | None:
    """The identifier in ``value^^^&<OID>&ISO``, or None when its authority is not one Carnet
    holds dossiers under (``ASSIGNING_AUTHORITIES``) or the value is not a CX."""
    value, _, rest = cx.strip().partition("^^^")
    authority = rest.split("^", 1)[0].split("&")
    if not value or len(authority) < 2:
        return None
    system = ASSIGNING_AUTHORITIES.get(authority[1].strip())
    return PatientIdentifier(system, value) if system else None


def patient_cx(system: str, value: str) -> str:
    """The CX of a national identifier (``value^^^&OID&ISO``)."""
    oid = next(o for o, s in ASSIGNING_AUTHORITIES.items() if s == system)
    return f"{value}^^^&{oid}&ISO"


def code_system(coding_scheme: str) -> str:
    """The FHIR ``system`` of an XDS ``codingScheme``."""
    scheme = coding_scheme.strip()
    if scheme in _SYSTEMS_BY_OID:
        return _SYSTEMS_BY_OID[scheme]
    return f"urn:oid:{scheme}" if is_oid(scheme) else scheme


def coding_scheme(system: str) -> str:
    """The XDS ``codingScheme`` of a FHIR ``system``."""
    if system in _OIDS_BY_SYSTEM:
        return _OIDS_BY_SYSTEM[system]
    return system.removeprefix("urn:oid:")


def parse_time(value: str) -> dt.datetime | None:
    """An XDS ``DTM`` as a UTC instant (missing parts are the start of the period); None if
    it is not one."""
    match = _DTM.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second = (
        int(part) if part else None for part in match.groups()
    )
    try:
        return dt.datetime(
            year or 1, month or 1, day or 1, hour or 0, minute or 0, second or 0, tzinfo=dt.UTC
        )
    except ValueError:
        return None


def format_time(value: dt.datetime) -> str:
    """An instant as an XDS ``DTM`` in UTC, to the second."""
    return value.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
