"""Receiving an HL7 v2 message from a feeding system: recognise it, find the patient, publish.

``receive`` runs inside the way in's transaction (one message, one transaction) and either
stores everything the message brings — one report document per OBR group, its structured
results, the record of the message — or raises ``MessageRefused`` having stored nothing the
way in will commit. In order:

1. the header: ORU^R01, MDM^T02 or MDM^T10, a control id, production, HL7 2.3 to 2.5.1
   (else AR);
2. the sender: an active feeding system for MSH-3/MSH-4, with its certificate (else AR);
3. a message already accepted from this sender with this control id is answered AA again;
4. every segment read and checked (else AE naming the field);
5. the patient, by PID-3 whose assigning authority the sender maps to a national identifier
   system (else AE, audited); their dossier must be active (else AE, audited);
6. each OBR group: published as a report (LOINC 11502-2, a PDF in the patient's language), or
   replacing the current report of the same order (a final after a preliminary, a correction),
   or withdrawing it (a cancellation) — through the documents services, as ITI-65 does;
   an MDM's one document (``mdm``, ``clinical_documents``): published, or replacing the one
   TXA-13 names, as its organisation's, with the checks every PDF or CDA document gets.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.access.errors import AccessError
from carnet.audit.models import AuditAction
from carnet.audit.service import Refusal
from carnet.catalogue import LOINC_SYSTEM
from carnet.clock import Clock
from carnet.directory import service as directory
from carnet.documents.errors import DocumentNotCurrent, DuplicateDocument, InvalidDocument
from carnet.documents.metadata import DocumentMetadata
from carnet.errors import InvalidValue
from carnet.feeds import service as feeds
from carnet.feeds.errors import UnknownSender
from carnet.feeds.models import FeedingSystem, FeedMessage
from carnet.laboratory import clinical_documents, publishing
from carnet.laboratory.errors import AckCode, ErrorCode, MessageRefused
from carnet.laboratory.mdm import read_notification
from carnet.laboratory.message import Message, check_header
from carnet.laboratory.models import LabReport, LabResult
from carnet.laboratory.oru import Order, PatientIdentifier, ResultReport, read_results
from carnet.laboratory.rendering import LAB_REPORT_CODE, ReportView, render_pdf, title
from carnet.notifications.messages import language_for
from carnet.patients import service as patients
from carnet.patients.errors import DossierNotActive, InvalidIdentifier, PatientNotFound
from carnet.patients.models import DossierState
from carnet.storage import DocumentStore

log = logging.getLogger(__name__)

ACCEPTED = frozenset({("ORU", "R01"), ("MDM", "T02"), ("MDM", "T10")})
# Stable document identifiers: the same OBR group of the same message is one document, even
# if two copies of the message race (the second then fails on the identifier, and is answered
# from the first's record).
_DOCUMENTS = uuid.UUID("8c5d1a52-58d4-4b0e-9b1e-2f6f4b8f0c11")
# Where the documents service's refusals point in an ORU message.
_FIELDS = {
    "created_at": "OBR-22",
    "service_start": "OBR-7",
    "service_end": "OBR-7",
    "title": "OBR-4",
    "language": "PID-15",
    "content": "OBX-5",
}


@dataclass(frozen=True)
class Credentials:
    """How the sender reached Carnet: the certificate its connection presented, if any.

    ``certificate_required``: a system pinned to a certificate is recognised only with it (the
    MLLP listener); an operator's file import vouches for the sender instead.
    """

    certificate_sha256: str | None = None
    certificate_required: bool = True
    network_address: str | None = None


@dataclass(frozen=True)
class Accepted:
    """What an accepted message did: the ACK's text and the documents it touched."""

    text: str
    document_ids: tuple[uuid.UUID, ...]
    # A resend of a message already accepted: nothing was stored this time.
    repeated: bool = False


def receive(
    session: Session,
    store: DocumentStore,
    message: Message,
    credentials: Credentials,
    *,
    clock: Clock,
) -> Accepted:
    """Store what the message brings, or raise ``MessageRefused`` (the caller rolls back).

    See the module's docstring for the order of checks. A refusal carries its ``refusal`` for
    the audit trail when it concerns a patient (or a patient sought and not found).
    """
    check_header(message, ACCEPTED)
    system = _sender(session, message, credentials)
    control_id = message.header.control_id
    remembered = feeds.recall(session, system, control_id)
    if remembered is not None:
        return _repeated(remembered)
    if message.header.message_code == "MDM":
        return _receive_document(session, store, message, system, credentials, clock=clock)
    report = read_results(message)
    actor = feeds.actor_of(system, network_address=credentials.network_address)
    patient_id = _patient(session, system, actor, report.identifiers)
    language = language_for(patients.get_patient(session, patient_id).language)
    laboratory = directory.get_organisation(session, system.organisation_id).name
    touched: list[uuid.UUID] = []
    stored = withdrawn = 0
    for order in report.orders:
        with _refusals_named(actor, patient_id, _FIELDS, default="OBR", current="OBR-25"):
            document_id, kind = _apply(
                session,
                store,
                _Context(system, actor, patient_id, message, report, language, laboratory),
                order,
                clock=clock,
            )
        if document_id is not None:
            touched.append(document_id)
            stored += kind == "stored"
            withdrawn += kind == "withdrawn"
    text = _summary(stored, withdrawn, len(report.orders))
    return _accepted(session, system, message, text, touched, clock=clock)


def _receive_document(
    session: Session,
    store: DocumentStore,
    message: Message,
    system: FeedingSystem,
    credentials: Credentials,
    *,
    clock: Clock,
) -> Accepted:
    """MDM^T02/T10: the one document the message carries, published or replacing its parent."""
    notified = read_notification(message)
    actor = feeds.actor_of(system, network_address=credentials.network_address)
    patient_id = _patient(session, system, actor, notified.identifiers)
    language = language_for(patients.get_patient(session, patient_id).language)
    fields = clinical_documents.fields(notified)
    try:
        with _refusals_named(actor, patient_id, fields, default="OBX-5", current="TXA-13"):
            document, replaced = clinical_documents.publish_notified(
                session,
                store,
                notified,
                system=system,
                actor=actor,
                patient_id=patient_id,
                language=language,
                clock=clock,
            )
    except DuplicateDocument as error:
        # The same message, committed by a twin meanwhile, is answered as a resend; another
        # message reusing a document number is refused (a new version is a T10).
        remembered = feeds.recall(session, system, message.header.control_id)
        if remembered is not None:
            return _repeated(remembered)
        raise MessageRefused(
            f"TXA-12: the dossier already holds document {notified.number}; a new version is "
            "sent as MDM^T10 naming it in TXA-13.",
            field="TXA-12",
            code=ErrorCode.DUPLICATE_KEY,
        ) from error
    text = "Document replaced." if replaced else "Document stored."
    return _accepted(session, system, message, text, [document.id], clock=clock)


def _accepted(
    session: Session,
    system: FeedingSystem,
    message: Message,
    text: str,
    touched: list[uuid.UUID],
    *,
    clock: Clock,
) -> Accepted:
    feeds.remember(
        session,
        system,
        control_id=message.header.control_id,
        message_type=message.header.message_type,
        ack_code=AckCode.ACCEPT.value,
        ack_text=text,
        document_ids=touched,
        clock=clock,
    )
    return Accepted(text=text, document_ids=tuple(touched))


def _repeated(remembered: FeedMessage) -> Accepted:
    return Accepted(
        text=remembered.ack_text,
        document_ids=tuple(feeds.remembered_documents(remembered)),
        repeated=True,
    )


@contextmanager
def _refusals_named(
    actor: Actor, patient_id: uuid.UUID, fields: Mapping[str, str], *, default: str, current: str
) -> Iterator[None]:
    """The documents services' refusals as ``MessageRefused`` naming the message's field:
    ``fields`` maps the metadata's names, ``current`` is the field that named a document no
    longer current. Refusals that concern the patient carry their audit record."""
    try:
        yield
    except DossierNotActive as error:
        raise _dossier_refused(actor, patient_id, error.state) from error
    except PatientNotFound as error:
        raise _patient_refused(
            actor, "Unknown patient: no dossier.", ErrorCode.UNKNOWN_KEY
        ) from error
    except AccessError as error:
        raise MessageRefused(
            "The publication was refused by the access policy.",
            field="PID-3",
            code=ErrorCode.UNKNOWN_KEY,
            refusal=error.refusal,
        ) from error
    except (InvalidDocument, InvalidValue) as error:
        field = fields.get(error.field or "", default)
        raise MessageRefused(str(error), field=field, code=ErrorCode.DATA_TYPE) from error
    except DocumentNotCurrent as error:
        raise MessageRefused(str(error), field=current, code=ErrorCode.TABLE_VALUE) from error


@dataclass(frozen=True)
class _Context:
    system: FeedingSystem
    actor: Actor
    patient_id: uuid.UUID
    message: Message
    report: ResultReport
    language: str
    laboratory: str


def _sender(session: Session, message: Message, credentials: Credentials) -> FeedingSystem:
    header = message.header
    try:
        return feeds.identify(
            session,
            facility=header.sending_facility,
            application=header.sending_application,
            certificate_sha256=credentials.certificate_sha256,
            certificate_required=credentials.certificate_required,
        )
    except UnknownSender as error:
        # Nothing of a patient was read: logged for the operators, not on any dossier's trail.
        log.warning(
            "HL7 message from an unknown sender %s / %s refused",
            header.sending_application,
            header.sending_facility,
        )
        raise MessageRefused(
            str(error),
            field=error.field or "MSH-4",
            code=ErrorCode.UNKNOWN_KEY,
            ack=AckCode.REJECT,
        ) from error


def _patient(
    session: Session,
    system: FeedingSystem,
    actor: Actor,
    identifiers: tuple[PatientIdentifier, ...],
) -> uuid.UUID:
    authorities = feeds.authorities_of(session, system)
    found: set[uuid.UUID] = set()
    mapped = False
    for identifier in identifiers:
        national = next((authorities[a] for a in identifier.authorities if a in authorities), None)
        if national is None:
            continue
        mapped = True
        try:
            patient_id = patients.find_patient_id(session, national, identifier.value)
        except InvalidIdentifier as error:
            raise _patient_refused(actor, f"PID-3: {error}", ErrorCode.DATA_TYPE) from error
        if patient_id is not None:
            found.add(patient_id)
    if not mapped:
        raise _patient_refused(
            actor,
            "PID-3 holds no identifier from an assigning authority registered for this sender "
            "(a national identifier: Luxembourg matricule, French NIR/INS).",
            ErrorCode.UNKNOWN_KEY,
        )
    if len(found) > 1:
        raise _patient_refused(
            actor, "The identifiers of PID-3 name different patients.", ErrorCode.UNKNOWN_KEY
        )
    if not found:
        raise _patient_refused(
            actor,
            "Unknown patient: no dossier holds the identifier of PID-3.",
            ErrorCode.UNKNOWN_KEY,
        )
    patient_id = found.pop()
    try:
        state = patients.get_dossier(session, patient_id).state
    except PatientNotFound as error:
        raise _patient_refused(
            actor, "Unknown patient: no dossier.", ErrorCode.UNKNOWN_KEY
        ) from error
    if state is not DossierState.ACTIVE:
        raise _dossier_refused(actor, patient_id, state.value)
    return patient_id


def _apply(
    session: Session, store: DocumentStore, context: _Context, order: Order, *, clock: Clock
) -> tuple[uuid.UUID | None, str]:
    opened = publishing.open_to_publish(session, context.actor, context.patient_id, clock=clock)
    previous = publishing.current_report(session, opened, context.system.id, order.key)
    if order.cancelled:
        if previous is None:
            return None, "nothing"
        publishing.withdraw(
            session,
            actor=context.actor,
            patient_id=context.patient_id,
            document_id=previous.document_id,
            clock=clock,
        )
        return previous.document_id, "withdrawn"
    now = clock.now()
    content = render_pdf(
        ReportView(
            order=order,
            patient_name=context.report.patient_name,
            birth_date=context.report.birth_date,
            laboratory=context.laboratory,
        ),
        language=context.language,
        printed_at=now,
    )
    control_id = context.message.header.control_id
    identifier = uuid.uuid5(_DOCUMENTS, f"{context.system.id}|{control_id}|{order.position}")
    metadata = DocumentMetadata(
        type_system=LOINC_SYSTEM,
        type_code=LAB_REPORT_CODE,
        title=title(order, context.language),
        mime_type="application/pdf",
        created_at=order.reported_at or order.observed_at or now,
        author_organisation_id=context.system.organisation_id,
        master_identifier=f"urn:uuid:{identifier}",
        language=context.language,
        service_start=order.observed_at,
        source_system=f"hl7v2:{context.system.id}",
    )
    document = publishing.publish(
        session,
        store,
        actor=context.actor,
        patient_id=context.patient_id,
        metadata=metadata,
        content=content,
        clock=clock,
        replaces=previous.document_id if previous is not None else None,
    )
    session.add(
        LabReport(
            patient_id=context.patient_id,
            document_id=document.id,
            feeding_system_id=context.system.id,
            order_key=order.key,
            service_code=order.service.code,
            service_system=order.service.system,
            service_text=order.service.text,
            result_status=order.status,
            control_id=control_id,
            received_at=now,
        )
    )
    session.add_all(
        LabResult(
            patient_id=context.patient_id,
            id=uuid.uuid4(),
            document_id=document.id,
            sequence=sequence,
            code_system=observation.code.system,
            code=observation.code.code,
            display=observation.code.text,
            value_type=observation.value_type,
            value=observation.value,
            numeric_value=observation.numeric,
            unit=observation.unit,
            reference_range=observation.reference_range,
            abnormal_flags=",".join(observation.abnormal_flags),
            result_status=observation.status,
            observed_at=observation.observed_at or order.observed_at,
        )
        for sequence, observation in enumerate(order.observations, start=1)
    )
    session.flush()
    return document.id, "stored"


def _patient_refused(actor: Actor, reason: str, code: ErrorCode) -> MessageRefused:
    return MessageRefused(
        reason,
        field="PID-3",
        code=code,
        refusal=Refusal(actor.agent, AuditAction.PUBLISH, reason, None),
    )


def _dossier_refused(actor: Actor, patient_id: uuid.UUID, state: str) -> MessageRefused:
    reason = f"the dossier is {state}: it accepts no documents"
    return MessageRefused(
        f"The patient's dossier is {state}: it accepts no documents. Nothing was stored.",
        field="PID-3",
        code=ErrorCode.RECORD_LOCKED,
        refusal=Refusal(actor.agent, AuditAction.PUBLISH, reason, patient_id),
    )


def _summary(stored: int, withdrawn: int, orders: int) -> str:
    parts = []
    if stored:
        parts.append(f"{stored} report(s) stored")
    if withdrawn:
        parts.append(f"{withdrawn} report(s) withdrawn")
    if not parts:
        parts.append(f"{orders} cancelled order(s): nothing to withdraw")
    return "; ".join(parts) + "."
