"""The patient's access rules in the export file: ``access-rules.json``.

What is in force when the patient exports: the grants (level, grantee, since, until), the
blocks, the treating doctor, the standing choices (emergency opposition or widening, care
contacts) and the documents masked from named professionals. Professionals and organisations
are named as in the bundle (``Practitioner/<id>``, ``Organization/<id>``), documents by their
DocumentReference id. The care contacts and emergency accesses running at the export are
listed for the record: they come from care given here, so the import does not re-open them; so
are the people who act for the patient (a link with another insured person, to name again).

On import each rule is set again through ``access.rules`` by a stand-in for the patient, the
dossier opened at the door for each rule's purpose, so each change is on the new dossier's
audit trail like any the patient makes. A grant already ended by the time of the import is not
set again; a mask on a document the export does not hold is skipped.
"""

from __future__ import annotations

import dataclasses
import uuid
import zipfile
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import OpenedDossier, Purpose, open_dossier
from carnet.access.guard import Preferences
from carnet.access.models import GrantLevel
from carnet.clock import Clock
from carnet.errors import CarnetError
from carnet.exports.fields import (
    instant,
    parse_datetime,
    patient_stand_in,
    read_json,
    reference_to,
    referenced,
)
from carnet.exports.parties import DirectoryIds
from carnet.fhir.ids import document_resource_id
from carnet.lifecycle.errors import InvalidExportFile
from carnet.lifecycle.export import DossierRules

ACCESS_RULES = "access-rules.json"


def rules_file(rules: DossierRules) -> dict[str, Any]:
    """The rules in force as ``access-rules.json`` holds them."""
    overview = rules.overview
    doctor = overview.treating_doctor
    return {
        "grants": [
            {
                "level": grant.level.value,
                "professional": reference_to("Practitioner", grant.professional_id),
                "organisation": reference_to("Organization", grant.organisation_id),
                "since": instant(grant.starts_at),
                "until": instant(grant.ends_at) if grant.ends_at else None,
            }
            for grant in overview.grants
        ],
        "blocks": [
            {
                "professional": reference_to("Practitioner", block.professional_id),
                "since": instant(block.created_at),
            }
            for block in overview.blocks
        ],
        "treatingDoctor": {
            "professional": reference_to("Practitioner", doctor.professional_id),
            "since": instant(doctor.designated_at),
        }
        if doctor
        else None,
        "preferences": dataclasses.asdict(overview.preferences),
        "masks": [
            {
                "document": reference_to(
                    "DocumentReference", document_resource_id(mask.patient_id, mask.document_id)
                ),
                "professional": reference_to("Practitioner", mask.professional_id),
                "since": instant(mask.created_at),
            }
            for mask in rules.masks
        ],
        "careContacts": [
            {
                "professional": reference_to("Practitioner", contact.professional_id),
                "since": instant(contact.recorded_at),
                "until": instant(contact.window_ends_at),
            }
            for contact in overview.care_contacts
        ],
        "emergencyAccesses": [
            {
                "professional": reference_to("Practitioner", access.professional_id),
                "reason": access.reason,
                "since": instant(access.opened_at),
                "until": instant(access.expires_at),
            }
            for access in overview.emergency_accesses
        ],
        "representatives": [
            {
                "name": f"{person.given} {person.family}",
                "kind": person.kind.value,
                "since": instant(person.starts_at),
                "until": instant(person.ends_at) if person.ends_at else None,
            }
            for person in rules.representatives
        ],
    }


@dataclasses.dataclass(frozen=True)
class RestoredRules:
    """How many of each rule the import set again."""

    grants: int = 0
    blocks: int = 0
    treating_doctor: bool = False
    preferences: bool = False
    masks: int = 0


def import_rules(
    session: Session,
    archive: zipfile.ZipFile,
    *,
    patient_id: uuid.UUID,
    directory_ids: DirectoryIds,
    documents: Mapping[str, uuid.UUID],
    clock: Clock,
) -> RestoredRules:
    """Set the exported rules again on the new dossier, as its patient would."""
    found = read_json(archive, ACCESS_RULES)
    if found is None:
        return RestoredRules()
    professionals = directory_ids.professionals
    patient = patient_stand_in(patient_id, frozenset())

    def opened(purpose: Purpose) -> OpenedDossier:
        return open_dossier(session, patient, patient_id, purpose, clock=clock)

    def professional(entry: dict[str, Any]) -> uuid.UUID:
        pid = referenced(entry.get("professional"), "Practitioner", professionals, ACCESS_RULES)
        if pid is None:
            raise InvalidExportFile(
                f"{ACCESS_RULES}: a rule names no professional.", field=ACCESS_RULES
            )
        return pid

    now = clock.now()
    try:
        blocks = [professional(entry) for entry in _list(found, "blocks")]
        for pid in blocks:
            access_rules.block_professional(session, opened(purposes.BLOCK_PROFESSIONAL), pid)
        grants = 0
        for entry in _list(found, "grants"):
            ends_at = parse_datetime(entry.get("until"))
            if ends_at is not None and ends_at <= now:
                continue
            access_rules.grant_access(
                session,
                opened(purposes.GRANT_ACCESS),
                level=GrantLevel(str(entry.get("level"))),
                professional_id=referenced(
                    entry.get("professional"), "Practitioner", professionals, ACCESS_RULES
                ),
                organisation_id=referenced(
                    entry.get("organisation"),
                    "Organization",
                    directory_ids.organisations,
                    ACCESS_RULES,
                ),
                ends_at=ends_at,
            )
            grants += 1
        doctor = found.get("treatingDoctor")
        if isinstance(doctor, dict):
            access_rules.designate_treating_doctor(
                session, opened(purposes.DESIGNATE_TREATING_DOCTOR), professional(doctor)
            )
        chosen = Preferences(**(found.get("preferences") or {}))
        if chosen != Preferences():
            access_rules.set_preferences(session, opened(purposes.SET_ACCESS_PREFERENCES), chosen)
        masks = 0
        for entry in _list(found, "masks"):
            rid = str(entry.get("document", "")).removeprefix("DocumentReference/")
            if rid not in documents:
                continue
            access_rules.mask_document(
                session, opened(purposes.MASK_DOCUMENT), documents[rid], professional(entry)
            )
            masks += 1
    except (CarnetError, ValueError, TypeError) as error:
        raise InvalidExportFile(
            f"{ACCESS_RULES}: a rule was refused: {error}", field=ACCESS_RULES
        ) from error
    return RestoredRules(
        grants=grants,
        blocks=len(blocks),
        treating_doctor=isinstance(doctor, dict),
        preferences=chosen != Preferences(),
        masks=masks,
    )


def _list(found: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = found.get(name) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InvalidExportFile(
            f"{ACCESS_RULES}: {name} is not a list of objects.", field=ACCESS_RULES
        )
    return entries
