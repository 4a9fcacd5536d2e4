"""The XDS.b workloads' requests, as an XDS.b Document Source and Consumer send them.

SOAP 1.2 with WS-Addressing, the documents as MTOM/XOP parts (IHE ITI TF-2 appendix V: what
XDS.b actors send and expect), written as text — what the load generator sends must cost it
little:

- ``xds-publish``: ITI-41 Provide and Register from the laboratory's system, one 50 KB PDF with
  its own serial stamped in (the same bytes ``publish`` sends over ITI-65), with its SHA-1 and
  size, the patient named by matricule;
- ``xds-find``: ITI-18 FindDocuments, every Approved document of one patient (LeafClass);
- ``xds-retrieve``: ITI-43 of one 50 KB PDF (the bulk documents' uniqueId is
  ``urn:uuid:<document id>``), asked and answered in MTOM.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid

from carnet.xds import vocabulary as v
from carnet.xds.mapping import LU_MATRICULE_OID

SOAP_XML = "application/soap+xml"
ITI18_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI41_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI43_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
SUCCESS = v.SUCCESS.encode()
_FORMAT = "urn:ihe:iti:xds:2017:mimeTypeSufficient"
_ROOT = "<root@bench.carnet>"
_DOCUMENT = "document@bench.carnet"
_NAMESPACES = (
    'xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:a="http://www.w3.org/2005/08/addressing" '
    'xmlns:xdsb="urn:ihe:iti:xds-b:2007" '
    'xmlns:lcm="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0" '
    'xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
    'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
    'xmlns:xop="http://www.w3.org/2004/08/xop/include"'
)


def plain_content_type(action: str) -> str:
    """The Content-Type of a plain SOAP 1.2 request."""
    return f'{SOAP_XML}; charset=UTF-8; action="{action}"'


def find_documents_envelope(matricule: str) -> bytes:
    """An ITI-18 FindDocuments request (Approved documents of one patient) in its envelope."""
    return _envelope(
        ITI18_ACTION,
        '<query:AdhocQueryRequest><query:ResponseOption returnComposedObjects="true" '
        'returnType="LeafClass"/>'
        '<rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">'
        '<rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>'
        f"<rim:Value>'{_cx(matricule)}'</rim:Value></rim:ValueList></rim:Slot>"
        '<rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList>'
        "<rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value>"
        "</rim:ValueList></rim:Slot></rim:AdhocQuery></query:AdhocQueryRequest>",
    )


def provide(pdf: bytes, matricule: str) -> tuple[bytes, str]:
    """An ITI-41 request publishing ``pdf`` for the patient, in MTOM: its body and type."""
    moment = dt.datetime.now(dt.UTC)
    created = (moment - dt.timedelta(hours=2)).strftime("%Y%m%d%H%M%S")
    submitted = moment.strftime("%Y%m%d%H%M%S")
    patient = _cx(matricule)
    sha1 = hashlib.sha1(pdf, usedforsecurity=False).hexdigest()
    document = (
        _slot("creationTime", created)
        + _slot("languageCode", "fr")
        + _slot("sourcePatientId", patient)
        + _slot("hash", sha1)
        + _slot("size", str(len(pdf)))
        + '<rim:Name><rim:LocalizedString value="Bilan sanguin"/></rim:Name>'
        + _code("cl1", v.DOCUMENT_CLASS_CODE, "REPORTS", "1.3.6.1.4.1.19376.1.2.6.1")
        + _code("cl2", v.DOCUMENT_CONFIDENTIALITY_CODE, "N", v.CONFIDENTIALITY_SCHEME)
        + _code("cl3", v.DOCUMENT_FORMAT_CODE, _FORMAT, "1.3.6.1.4.1.19376.1.2.3")
        + _code("cl4", v.DOCUMENT_FACILITY_TYPE, "laboratory", v.CARNET_FACILITY_SCHEME)
        + _code("cl5", v.DOCUMENT_PRACTICE_SETTING, "laboratory", v.CARNET_PRACTICE_SETTING_SCHEME)
        + _code("cl6", v.DOCUMENT_TYPE_CODE, "11502-2", v.LOINC_OID)
        + _identifier("ei1", "Document01", v.DOCUMENT_PATIENT_ID, patient)
        + _identifier("ei2", "Document01", v.DOCUMENT_UNIQUE_ID, _oid())
    )
    submission_set = (
        _slot("submissionTime", submitted)
        + _code(
            "cl7",
            v.SUBMISSION_SET_CONTENT_TYPE,
            "laboratory",
            v.CARNET_PRACTICE_SETTING_SCHEME,
            "SubmissionSet01",
        )
        + _identifier("ei3", "SubmissionSet01", v.SUBMISSION_SET_UNIQUE_ID, _oid())
        + _identifier("ei4", "SubmissionSet01", v.SUBMISSION_SET_SOURCE_ID, "1.3.6.1.4.1.21367")
        + _identifier("ei5", "SubmissionSet01", v.SUBMISSION_SET_PATIENT_ID, patient)
    )
    body = (
        "<xdsb:ProvideAndRegisterDocumentSetRequest><lcm:SubmitObjectsRequest>"
        "<rim:RegistryObjectList>"
        '<rim:ExtrinsicObject id="Document01" mimeType="application/pdf" '
        f'objectType="{v.STABLE_DOCUMENT}">{document}</rim:ExtrinsicObject>'
        f'<rim:RegistryPackage id="SubmissionSet01">{submission_set}</rim:RegistryPackage>'
        '<rim:Classification id="cl8" classifiedObject="SubmissionSet01" '
        f'classificationNode="{v.SUBMISSION_SET_CLASSIFICATION}"/>'
        f'<rim:Association id="as1" associationType="{v.HAS_MEMBER}" '
        'sourceObject="SubmissionSet01" targetObject="Document01">'
        f"{_slot('SubmissionSetStatus', 'Original')}</rim:Association>"
        "</rim:RegistryObjectList></lcm:SubmitObjectsRequest>"
        f'<xdsb:Document id="Document01"><xop:Include href="cid:{_DOCUMENT.replace("@", "%40")}"/>'
        "</xdsb:Document></xdsb:ProvideAndRegisterDocumentSetRequest>"
    )
    return _mtom(ITI41_ACTION, _envelope(ITI41_ACTION, body), pdf)


def retrieve(document_id: uuid.UUID) -> tuple[bytes, str]:
    """An ITI-43 request for one bulk document, in MTOM (so answered in MTOM)."""
    body = (
        "<xdsb:RetrieveDocumentSetRequest><xdsb:DocumentRequest>"
        f"<xdsb:RepositoryUniqueId>{v.REPOSITORY_UNIQUE_ID}</xdsb:RepositoryUniqueId>"
        f"<xdsb:DocumentUniqueId>urn:uuid:{document_id}</xdsb:DocumentUniqueId>"
        "</xdsb:DocumentRequest></xdsb:RetrieveDocumentSetRequest>"
    )
    return _mtom(ITI43_ACTION, _envelope(ITI43_ACTION, body), None)


def check(kind: str, body: bytes, pdf: bytes) -> str | None:
    """Why one XDS answer of ``kind`` is not what the workload expects, or None if it is."""
    if SUCCESS not in body:
        return f"{kind}: not a Success: {body[:300]!r}"
    if kind == "xds-find" and b"ExtrinsicObject" not in body:
        return "xds-find: a Success without documents (the policy refused, or nothing matched)"
    if kind == "xds-retrieve" and pdf not in body:
        return f"xds-retrieve: the {len(pdf)}-byte PDF is not in the answer ({len(body)} bytes)"
    return None


def _envelope(action: str, body: str) -> bytes:
    return (
        f'<s:Envelope {_NAMESPACES}><s:Header><a:Action s:mustUnderstand="1">{action}</a:Action>'
        f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _mtom(action: str, envelope: bytes, document: bytes | None) -> tuple[bytes, str]:
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    chunks = [
        f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
        f'type="{SOAP_XML}"\r\nContent-Transfer-Encoding: binary\r\n'
        f"Content-ID: {_ROOT}\r\n\r\n".encode(),
        envelope,
    ]
    if document is not None:
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Type: application/pdf\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{_DOCUMENT}>\r\n\r\n".encode()
        )
        chunks.append(document)
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="{_ROOT}"; start-info="{SOAP_XML}"; action="{action}"'
    )
    return b"".join(chunks), content_type


def _cx(matricule: str) -> str:
    return f"{matricule}^^^&amp;{LU_MATRICULE_OID}&amp;ISO"


def _oid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def _slot(name: str, value: str) -> str:
    return (
        f'<rim:Slot name="{name}"><rim:ValueList><rim:Value>{value}</rim:Value></rim:ValueList>'
        "</rim:Slot>"
    )


def _code(
    entry_id: str, scheme: str, code: str, coding_scheme: str, classified: str = "Document01"
) -> str:
    return (
        f'<rim:Classification id="{entry_id}" classificationScheme="{scheme}" '
        f'classifiedObject="{classified}" nodeRepresentation="{code}">'
        f"{_slot('codingScheme', coding_scheme)}</rim:Classification>"
    )


def _identifier(entry_id: str, owner: str, scheme: str, value: str) -> str:
    return (
        f'<rim:ExternalIdentifier id="{entry_id}" registryObject="{owner}" '
        f'identificationScheme="{scheme}" value="{value}"/>'
    )
