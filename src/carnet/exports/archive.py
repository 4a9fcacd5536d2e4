"""Writing the export file, and importing one: the zip as a whole.

Each part of the dossier has its own module (``parties``, ``documents``, ``essentials``,
``rules``, ``history``); this one puts them in the zip, and on import takes them out in the
order the services need (the directory before what names it, documents before their masks).
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from carnet.access.actors import Actor, ActorKind
from carnet.access.door import OpenedDossier
from carnet.audit import service as audit_trail
from carnet.audit.models import AuditAction
from carnet.clock import Clock
from carnet.exports.documents import document_resource, file_name, import_documents
from carnet.exports.essentials import ESSENTIALS, essentials_file, import_essentials
from carnet.exports.fields import BUNDLE, instant, reference_id
from carnet.exports.history import AUDIT_EVENT, history_resources, imported_history
from carnet.exports.parties import (
    DirectoryIds,
    import_organisation,
    import_patient,
    import_professional,
    organization_resource,
    patient_resource,
    practitioner_resources,
)
from carnet.exports.rules import ACCESS_RULES, RestoredRules, import_rules, rules_file
from carnet.lifecycle.errors import InvalidExportFile
from carnet.lifecycle.export import DossierExport, collect_export
from carnet.storage import DocumentStore

# --- Export ------------------------------------------------------------------------------------


def build_export_zip(
    session: Session, dossier: OpenedDossier, store: DocumentStore, *, base_url: str
) -> bytes:
    """The dossier's export file, as its actor (the patient or their representative) sees it.

    Policy and audit are ``lifecycle.export.collect_export``'s, on a dossier opened to
    ``EXPORT_DOSSIER``. ``base_url`` is the FHIR base the resources are named under
    (``<CARNET_PUBLIC_URL>/fhir``). The zip is built in memory: a dossier is hundreds of
    documents of at most ``CARNET_MAX_DOCUMENT_BYTES`` each.
    """
    export = collect_export(session, dossier, store)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        entries = list(_export_entries(export, base_url))
        for exported in export.documents:
            archive.writestr(file_name(exported.document), exported.content)
        bundle = {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": instant(export.exported_at),
            "entry": [
                {"fullUrl": f"{base_url}/{r['resourceType']}/{r['id']}", "resource": r}
                for r in entries
            ],
        }
        archive.writestr(BUNDLE, _json(bundle))
        archive.writestr(ESSENTIALS, _json(essentials_file(export.essentials)))
        if export.rules is not None:
            archive.writestr(ACCESS_RULES, _json(rules_file(export.rules)))
    return buffer.getvalue()


def _export_entries(export: DossierExport, base_url: str) -> Iterator[dict[str, Any]]:
    yield patient_resource(export.patient)
    yield from (organization_resource(organisation) for organisation in export.organisations)
    for professional in export.professionals:
        yield from practitioner_resources(professional)
    for exported in export.documents:
        yield document_resource(exported, base_url)
    yield from history_resources(export.history)


def _json(content: object) -> str:
    return json.dumps(content, indent=1, ensure_ascii=False)


# --- Import ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportReport:
    """What ``import_export_zip`` created."""

    patient_id: uuid.UUID
    documents: int
    organisations_created: int
    professionals_created: int
    essentials: int = 0
    rules: RestoredRules = field(default_factory=RestoredRules)
    history_entries: int = 0

    def summary(self) -> str:
        """One line for the operator."""
        return (
            f"Imported dossier {self.patient_id}: {self.documents} documents, "
            f"{self.essentials} essential facts, {self.rules.grants} grants, "
            f"{self.rules.blocks} blocks, {self.rules.masks} masks, "
            f"{self.history_entries} history entries; "
            f"{self.organisations_created} organisations and {self.professionals_created} "
            "professionals added to the directory."
        )


def import_export_zip(
    session: Session,
    store: DocumentStore,
    data: bytes,
    *,
    operator: Actor,
    clock: Clock,
    max_document_bytes: int,
) -> ImportReport:
    """Re-create an exported dossier here: the patient (active), the directory entries the
    export names, the documents with their master identifiers, metadata and bytes, the
    essential data, the patient's rules in force, and the access history (kept, not replayed).

    For an operator moving a dossier into a Carnet that does not hold the patient
    (``ImportConflict`` otherwise). Each document is published through ``documents.publication``
    by a stand-in for its author — the professional, their organisation's system, or the
    patient — under the client id ``carnet-import``, so the policy, validation, encryption and
    audit all run; a replaced document is published first, then replaced by its successor.
    The SHA-256 of each file is checked against the export. The essential data and the rules
    are set again the same way (``exports.essentials``, ``exports.rules``); the history is kept
    in the import's own audit event (``exports.history``). The submission sets of the original
    publications are not carried over. Raises ``InvalidExportFile`` naming what is wrong in the
    file; the caller's transaction then writes nothing.
    """
    if operator.kind is not ActorKind.OPERATOR:
        raise InvalidExportFile("An export is imported by an operator.", field="operator")
    with _open(data) as archive:
        resources = _resources(archive)
        patient = import_patient(session, _only(resources, "Patient"), clock)
        organisations = {
            rid: import_organisation(session, resource, clock)
            for rid, resource in resources.get("Organization", {}).items()
        }
        roles = {
            reference_id(role.get("practitioner"), "Practitioner"): role
            for role in resources.get("PractitionerRole", {}).values()
        }
        professionals = {
            rid: import_professional(session, resource, roles.get(rid), organisations, clock)
            for rid, resource in resources.get("Practitioner", {}).items()
        }
        directory_ids = DirectoryIds(
            {rid: org.id for rid, (org, _) in organisations.items()},
            {rid: pro.id for rid, (pro, _) in professionals.items()},
        )
        imported = import_documents(
            session,
            store,
            archive,
            resources.get("DocumentReference", {}),
            patient=patient,
            directory_ids=directory_ids,
            clock=clock,
            max_bytes=max_document_bytes,
        )
        facts = import_essentials(
            session,
            archive,
            patient_id=patient.id,
            professionals=directory_ids.professionals,
            clock=clock,
        )
        restored = import_rules(
            session,
            archive,
            patient_id=patient.id,
            directory_ids=directory_ids,
            documents=imported,
            clock=clock,
        )
    history = imported_history(resources.get(AUDIT_EVENT, {}))
    audit_trail.record(
        session,
        agent=operator.agent,
        action=AuditAction.LIFECYCLE,
        clock=clock,
        patient_id=patient.id,
        entity_ids=imported.values(),
        details={
            "reason": "imported from a dossier export",
            "documents": len(imported),
            "essentials": facts,
            "imported_history": history,
        },
    )
    return ImportReport(
        patient_id=patient.id,
        documents=len(imported),
        organisations_created=sum(created for _, created in organisations.values()),
        professionals_created=sum(created for _, created in professionals.values()),
        essentials=facts,
        rules=restored,
        history_entries=len(history),
    )


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise InvalidExportFile(f"The file is not a zip: {error}.", field="file") from error


def _resources(archive: zipfile.ZipFile) -> dict[str, dict[str, dict[str, Any]]]:
    """The bundle's resources by type, then by id."""
    try:
        bundle = json.loads(archive.read(BUNDLE))
    except KeyError as error:
        raise InvalidExportFile(f"The zip holds no {BUNDLE}.", field="file") from error
    except ValueError as error:
        raise InvalidExportFile(f"{BUNDLE} is not JSON: {error}.", field=BUNDLE) from error
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidExportFile(f"{BUNDLE} is not a FHIR Bundle.", field=BUNDLE)
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for index, entry in enumerate(bundle.get("entry") or []):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not resource.get("id"):
            raise InvalidExportFile(
                f"Bundle.entry[{index}] has no resource with an id.", field=BUNDLE
            )
        found.setdefault(str(resource.get("resourceType")), {})[str(resource["id"])] = resource
    return found


def _only(resources: Mapping[str, Mapping[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    found = list(resources.get(kind, {}).values())
    if len(found) != 1:
        raise InvalidExportFile(
            f"The bundle holds {len(found)} {kind} resources, not one.", field=BUNDLE
        )
    return found[0]
