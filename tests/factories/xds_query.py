"""ITI-18 stored queries built and read as a registry consumer would: requests and counts."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lxml import etree
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.clock import Clock
from carnet.documents import publication
from carnet.documents.metadata import DocumentMetadata, SubmissionSetMetadata
from carnet.documents.models import Document, SubmissionSet
from carnet.patients.models import Patient
from carnet.storage import DocumentStore
from carnet.xds import mapping, stored_query
from carnet.xds import vocabulary as v
from factories.documents import lab_metadata

RIM = v.RIM
QUERY = v.QUERY
RS = v.RS
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"
APPROVED = f"('{v.APPROVED}')"
APPROVED_OR_DEPRECATED = f"('{v.APPROVED}', '{v.DEPRECATED}')"


def quoted(*values: str) -> str:
    """A multi-valued parameter: ``('a', 'b')``."""
    return "(" + ", ".join(f"'{value}'" for value in values) + ")"


def adhoc(
    query_id: str, slots: Mapping[str, str | Sequence[str]], *, return_type: str = "LeafClass"
) -> etree._Element:
    """An ``AdhocQueryRequest`` for ``query_id``; each slot value is one ``Value`` (or several)."""
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    option = etree.SubElement(request, f"{{{QUERY}}}ResponseOption")
    option.set("returnComposedObjects", "true")
    option.set("returnType", return_type)
    query = etree.SubElement(request, f"{{{RIM}}}AdhocQuery")
    query.set("id", query_id)
    for name, values in slots.items():
        slot = etree.SubElement(query, f"{{{RIM}}}Slot")
        slot.set("name", name)
        listing = etree.SubElement(slot, f"{{{RIM}}}ValueList")
        for value in [values] if isinstance(values, str) else values:
            etree.SubElement(listing, f"{{{RIM}}}Value").text = value
    return request


def patient_cx(patient: Patient) -> str:
    """The patient's id as an XDS consumer sends it (their Luxembourg matricule)."""
    identifier = patient.identifiers[0]
    return mapping.patient_cx(identifier.system, identifier.value)


@dataclass(frozen=True)
class Answer:
    """An ``AdhocQueryResponse`` as a consumer reads it."""

    element: etree._Element

    @property
    def status(self) -> str:
        """Success or Failure (the last word of the status URN)."""
        return str(self.element.get("status", "")).rsplit(":", 1)[-1]

    @property
    def errors(self) -> list[tuple[str, str, str]]:
        """(errorCode, severity's last word, location) of each RegistryError."""
        return [
            (
                str(error.get("errorCode")),
                str(error.get("severity", "")).rsplit(":", 1)[-1],
                str(error.get("location", "")),
            )
            for error in self.element.iter(f"{{{RS}}}RegistryError")
        ]

    @property
    def counts(self) -> Counter[str]:
        """How many documents, submission sets, folders, associations and object refs."""
        found: Counter[str] = Counter()
        listing = self.element.find(f"{{{RIM}}}RegistryObjectList")
        for child in [] if listing is None else listing:
            name = etree.QName(child).localname
            if name == "ExtrinsicObject":
                found["documents"] += 1
            elif name == "RegistryPackage":
                nodes = {
                    c.get("classificationNode") for c in child.iter(f"{{{RIM}}}Classification")
                }
                found["folders" if v.FOLDER_CLASSIFICATION in nodes else "submission_sets"] += 1
            elif name == "Association":
                found["associations"] += 1
            elif name == "ObjectRef":
                found["refs"] += 1
        return found

    def ids(self, tag: str) -> list[str]:
        """The ``id`` of each top-level object named ``tag`` (e.g. ExtrinsicObject)."""
        return [
            str(e.get("id"))
            for e in self.element.iterfind(f"{{{RIM}}}RegistryObjectList/{{{RIM}}}{tag}")
        ]

    def unique_ids(self) -> list[str]:
        """The uniqueId of each document in the answer."""
        return [
            str(identifier.get("value"))
            for identifier in self.element.iter(f"{{{RIM}}}ExternalIdentifier")
            if identifier.get("identificationScheme") == v.DOCUMENT_UNIQUE_ID
        ]


def ask(session: Session, actor: Actor, request: etree._Element, clock: Clock) -> Answer:
    """Run a stored query through the handler as the router would."""
    return Answer(stored_query.handle(session, actor, request, clock=clock))


def submit(
    session: Session,
    store: DocumentStore,
    clock: Clock,
    *,
    actor: Actor,
    patient_id: uuid.UUID,
    documents: Sequence[DocumentMetadata] | None = None,
) -> tuple[SubmissionSet, list[Document]]:
    """A submission set of ``documents`` (one lab report by default), as MHD ITI-65 would."""
    dossier = open_dossier(session, actor, patient_id, purposes.PUBLISH_DOCUMENTS, clock=clock)
    metadata = documents if documents is not None else [lab_metadata(clock)]
    return publication.submit(
        session,
        dossier,
        store,
        submission_set=SubmissionSetMetadata(source_id="1.2.3.4", title="Envoi"),
        documents=[(m, f"Hémoglobine {uuid.uuid4()}".encode()) for m in metadata],
    )
