"""The dossier export file — a FHIR R4 Bundle, the original files and the patient's rules and
essential data in one zip — and its import.

``build_export_zip`` is what ``carnet export`` writes and what an HTTP ``$export`` operation
serves; ``import_export_zip`` is ``carnet import``: it re-creates the dossier in a Carnet that
does not hold the patient yet, through the services, with the same documents and hashes, the
same essential data and rules, and the access history kept as imported.

The zip holds:

    bundle.json             a Bundle of type collection: the Patient, the Organizations,
                            Practitioners and PractitionerRoles the dossier names (authors,
                            custodians, grantees, blocked and treating doctors), a
                            DocumentReference per document (current and superseded), shaped as
                            the FHIR API serves them, and an AuditEvent per event of the
                            dossier's trail, as the patient reads it (``history``)
    documents/<id><.ext>    each document's original bytes; the DocumentReference's
                            ``content[0].attachment.url`` names the file, ``attachment.hash``
                            is its SHA-1 (FHIR R4) and an extension carries its SHA-256
                            (``documents``)
    essentials.json         the live essential data (``essentials``)
    access-rules.json       the patient's rules in force: grants, blocks, treating doctor,
                            standing choices, masks (``rules``)

It sits with the ways in because it speaks FHIR (``carnet.fhir.mapping``); the lifecycle domain
gathers the dossier (``lifecycle.export.collect_export``, policy-checked and audited).
"""

from carnet.exports.archive import ImportReport, build_export_zip, import_export_zip
from carnet.exports.fields import BUNDLE, IMPORT_CLIENT, MASKED_EXTENSION, SHA256_EXTENSION
from carnet.exports.rules import RestoredRules

__all__ = [
    "BUNDLE",
    "IMPORT_CLIENT",
    "MASKED_EXTENSION",
    "SHA256_EXTENSION",
    "ImportReport",
    "RestoredRules",
    "build_export_zip",
    "import_export_zip",
]
