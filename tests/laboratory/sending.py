"""What the laboratory and feeds tests share: a registered laboratory, messages to send.

The dataset messages carry foreign patient ids (US MPIs, UUIDs): ``addressed_to`` rewrites
PID-3 to a test patient's Luxembourg matricule under the authority ``CNS``, which the test's
feeding system maps to the matricule system.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.clock import Clock
from carnet.directory.models import Organisation
from carnet.documents.models import Document
from carnet.feeds import service as feeds
from carnet.feeds.models import FeedingSystem
from carnet.laboratory.intake import Accepted, Credentials, receive
from carnet.laboratory.message import read
from carnet.laboratory.models import LabResult
from carnet.patients.models import Patient
from carnet.storage import DocumentStore
from conftest import DATASETS

AUTHORITY = "CNS"
FILE = Credentials(certificate_required=False)
HL7_FOLDERS = ("cdc-prime-reportstream-hl7v2", "node-hl7-complete-hl7v2", "ms-fhir-converter/hl7v2")


def matricule_of(patient: Patient) -> str:
    """The test patient's Luxembourg matricule."""
    return patient.identifiers[0].value


def dataset_files() -> list[Path]:
    """Every HL7 v2 file of the three datasets."""
    return sorted(
        path for folder in HL7_FOLDERS for path in (DATASETS / folder).iterdir() if path.is_file()
    )


def register_lab(
    session: Session, clock: Clock, organisation: Organisation, facility: str, **options: object
) -> FeedingSystem:
    """A feeding system for ``organisation`` sending as ``facility``, mapping CNS to matricules."""
    return feeds.register(
        session,
        organisation_id=organisation.id,
        sending_facility=facility,
        clock=clock,
        authorities={AUTHORITY: "lu-matricule"},
        **options,  # type: ignore[arg-type]
    )


def set_field(text: str, segment: str, number: int, value: str) -> str:
    """``text`` with field ``number`` of every ``segment`` set to ``value`` (raw HL7)."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    separator = "|"
    for index, raw in enumerate(lines):
        line = raw.lstrip("\ufeff")
        if line.startswith("MSH"):
            separator = line[3]
        if line[:3] != segment:
            continue
        fields = line.split(separator)
        # MSH-1 is the separator itself: MSH's fields are shifted by one in the split.
        position = number - 1 if segment == "MSH" else number
        while len(fields) <= position:
            fields.append("")
        fields[position] = value
        lines[index] = separator.join(fields)
    return "\r".join(lines)


def addressed_to(text: str, matricule: str) -> str:
    """The message with PID-3 naming the test patient by matricule, under authority CNS."""
    return set_field(text, "PID", 3, f"{matricule}^^^{AUTHORITY}^NI")


def facility_of(text: str) -> str:
    """MSH-4's namespace id (or the whole field) as the message gives it."""
    msh = next(line for line in text.replace("\n", "\r").split("\r") if "MSH" in line[:4])
    msh = msh.lstrip("\ufeff")
    fields = msh.split(msh[3])
    return fields[3].split("^")[0] if len(fields) > 3 else ""


def send(session: Session, store: DocumentStore, clock: Clock, text: str) -> Accepted:
    """Receive ``text`` as ``carnet hl7 import`` does, in the test's transaction."""
    return receive(session, store, read(text), FILE, clock=clock)


def documents_of(session: Session, patient_id: uuid.UUID) -> list[Document]:
    """The dossier's documents, oldest first."""
    return list(
        session.scalars(
            select(Document)
            .where(Document.patient_id == patient_id)
            # Under a frozen clock a replacement is submitted at the same instant: after.
            .order_by(Document.submitted_at, Document.replaces_id.is_not(None))
        )
    )


def results_count(session: Session, patient_id: uuid.UUID) -> int:
    """How many structured results the dossier holds."""
    return (
        session.scalar(
            select(func.count()).select_from(LabResult).where(LabResult.patient_id == patient_id)
        )
        or 0
    )


NIST_LEAD = (
    "MSH|^~\\&|LAB APP|Central Lab|CARNET|CARNET|20260520110702+0200||ORU^R01^ORU_R01|{control}|"
    "P|2.5.1\r"
    "PID|1||{matricule}^^^CNS^NI||Weber^Lea||19800517|F\r"
    "ORC|RE||ORD-{order}\r"
    "OBR|1|PLC-{order}|ORD-{order}|10368-9^Lead BldC-mCnc^LN|||20260515103000+0200|||||||||||||||"
    "20260516180000+0200|||{status}\r"
    "OBX|1|NM|10368-9^Lead BldC-mCnc^LN||{value}|ug/dL^microgram per deciliter^UCUM|<9|{flag}|||"
    "{obx_status}|||20260515103000+0200\r"
    "OBX|2|NM|718-7^Hemoglobin^LN||13.2|g/dL|12-16|N|||{obx_status}|||20260515103000+0200\r"
)


def lead_report(
    matricule: str,
    *,
    control: str = "MSG-1",
    order: str = "1",
    status: str = "F",
    value: str = "50",
    flag: str = "H",
    obx_status: str | None = None,
) -> str:
    """A small ORU^R01 from "Central Lab": a blood lead result and a haemoglobin."""
    return NIST_LEAD.format(
        control=control,
        matricule=matricule,
        order=order,
        status=status,
        value=value,
        flag=flag,
        obx_status=obx_status or status,
    )


def document_notification(
    matricule: str,
    content: bytes,
    *,
    control: str = "MDM-1",
    event: str = "T02",
    document_type: str = "CN",
    number: str = "DOC-1^^1.2.250.1.999.1^ISO",
    parent: str = "",
    created: str = "20260530100000+0200",
    completion: str = "AU",
    confidentiality: str = "",
    kind: str = "Application^PDF",
    encoding: str = "Base64",
    data: str | None = None,
    pieces: int = 1,
) -> str:
    """An MDM^T02 (or T10) from "Central Lab" carrying ``content`` in OBX of type ED.

    ``data`` replaces the encoded content as written; ``pieces`` splits it over that many OBX
    segments of the same observation, as senders of large documents do.
    """
    written = base64.b64encode(content).decode() if data is None else data
    size = -(-len(written) // pieces) or 1
    chunks = [written[i : i + size] for i in range(0, len(written), size)] or [""]
    observations = "".join(
        f"OBX|{index}|ED|11488-4^Consult note^LN|1|"
        + (f"^{kind}^{encoding}^{chunk}" if index == 1 else f"^^^^{chunk}")
        + "||||||F\r"
        for index, chunk in enumerate(chunks, start=1)
    )
    return (
        "MSH|^~\\&|DOCS|Central Lab|CARNET|CARNET|20260601110702+0200||"
        f"MDM^{event}^MDM_T02|{control}|P|2.5.1\r"
        f"EVN|{event}|20260601110702+0200\r"
        f"PID|1||{matricule}^^^CNS^NI||Weber^Lea||19800517|F\r"
        "PV1|1|O\r"
        f"TXA|1|{document_type}|AP|{created}||{created}||||||{number}|{parent}||||"
        f"{completion}|{confidentiality}|AV\r" + observations
    )
