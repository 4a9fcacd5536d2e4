"""The dossier's essential data in the export file: ``essentials.json``.

One entry per live fact the patient may see: its category, text and structured parts, when it
was recorded and by whom (``Practitioner/<id>`` in the bundle, or the patient side). On import
each fact is recorded again through ``essentials.service.record_facts``, by a stand-in for
whoever recorded it (the professional, or the patient for the patient side and their
representative), so the policy, validation and audit run as for any recording. The facts are
dated by the import (the service stamps them now); the original date is kept in the file.
"""

from __future__ import annotations

import uuid
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.door import open_dossier
from carnet.access.scopes import parse_scopes
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.errors import CarnetError
from carnet.essentials.service import NewFact, RecordedFact, record_facts
from carnet.exports.fields import (
    instant,
    patient_stand_in,
    professional_stand_in,
    read_json,
    reference_to,
    referenced,
)
from carnet.lifecycle.errors import InvalidExportFile

ESSENTIALS = "essentials.json"
# Each category is recorded as the FHIR resource it is exchanged as: the stand-ins may create
# any of them, the policy then decides who records what.
_RECORD_SCOPES = parse_scopes("user/*.c")[0]


def essentials_file(facts: Sequence[RecordedFact]) -> dict[str, Any]:
    """The facts as ``essentials.json`` holds them, oldest first."""
    return {
        "facts": [
            {
                "category": fact.category.value,
                "text": fact.text,
                "details": dict(fact.details),
                "recordedAt": instant(fact.recorded_at),
                "recordedBy": fact.author_role,
                "author": reference_to("Practitioner", fact.author_professional_id),
            }
            for fact in sorted(facts, key=lambda fact: (fact.recorded_at, str(fact.id)))
        ]
    }


def import_essentials(
    session: Session,
    archive: zipfile.ZipFile,
    *,
    patient_id: uuid.UUID,
    professionals: Mapping[str, uuid.UUID],
    clock: Clock,
) -> int:
    """Record the exported facts again, each author's at once; how many were recorded."""
    found = read_json(archive, ESSENTIALS)
    entries = (found or {}).get("facts") or []
    if not isinstance(entries, list):
        raise InvalidExportFile(f"{ESSENTIALS}: facts is not a list.", field=ESSENTIALS)
    by_author: dict[uuid.UUID | None, list[NewFact]] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidExportFile(
                f"{ESSENTIALS}: facts[{index}] is not an object.", field=ESSENTIALS
            )
        author = referenced(entry.get("author"), "Practitioner", professionals, ESSENTIALS)
        by_author.setdefault(author, []).append(
            NewFact(
                category=str(entry.get("category", "")),
                text=str(entry.get("text", "")),
                details=entry.get("details") or {},
            )
        )
    recorded = 0
    # The professionals' first: a blood group a laboratory found outweighs the patient's own.
    for author, facts in sorted(by_author.items(), key=lambda item: item[0] is None):
        actor = (
            patient_stand_in(patient_id, _RECORD_SCOPES)
            if author is None
            else professional_stand_in(directory.get_professional(session, author), _RECORD_SCOPES)
        )
        try:
            dossier = open_dossier(
                session, actor, patient_id, purposes.RECORD_ESSENTIALS, clock=clock
            )
            # One blood group per call: the live one is the only one exported anyway.
            recorded += len(record_facts(session, dossier, facts))
        except CarnetError as error:
            raise InvalidExportFile(
                f"{ESSENTIALS}: a fact was refused: {error}", field=ESSENTIALS
            ) from error
    return recorded
