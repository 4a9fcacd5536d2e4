"""XDS.b requests as a Document Source sends them: SOAP 1.2 envelopes, plain or MTOM.

Submissions come from the NIST XDS Toolkit's testkit (``nist-xds-toolkit/``, see its README):
``nist_submission`` fills a template's placeholders as the toolkit does at run time — the test's
patient id, fresh uniqueIds, ``$name$`` values from earlier steps — converts the classic tests'
ebRIM 2.1 to 3.0 (what the toolkit does for ``<XDSb/>``) and attaches the documents.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from lxml import etree
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.xds import mapping
from conftest import DATASETS
from factories.auth import Served, bearer

NIST = DATASETS / "nist-xds-toolkit"
# The payload the toolkit attaches to 11966, 11981, 11983, 11986, 12375 and 12376.
MY_DOCUMENT = b"This is my document.\n\nIt is great!\n\n"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XDSB = "urn:ihe:iti:xds-b:2007"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
XOP = "http://www.w3.org/2004/08/xop/include"
PROVIDE = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
RETRIEVE = "urn:ihe:iti:2007:RetrieveDocumentSet"
_RIM21 = "urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1"
_RS21 = "urn:oasis:names:tc:ebxml-regrep:registry:xsd:2.1"
_SHORT_TYPES = {
    "HasMember": "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember",
    **{
        kind: f"urn:ihe:iti:2007:AssociationType:{kind}"
        for kind in ("RPLC", "APND", "XFRM", "XFRM_RPLC", "signs")
    },
}
_UNIQUE_IDS = {
    "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",  # DocumentEntry
    "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8",  # SubmissionSet
    "urn:uuid:75df8f67-9973-4fbe-a900-df66cefecc5a",  # Folder
}
_PATIENT_IDS = {
    "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",
    "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a",
}
_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"


def patient_cx(matricule: str) -> str:
    """The XDS patientId of a Luxembourg matricule."""
    return f"{matricule}^^^&{mapping.LU_MATRICULE_OID}&ISO"


def nist_submission(
    name: str,
    *,
    patient: str | None,
    documents: dict[str, bytes] | None = None,
    values: dict[str, str] | None = None,
    catalogue_type: bool = False,
) -> etree._Element:
    """The ``ProvideAndRegisterDocumentSetRequest`` of a NIST template, filled.

    ``patient`` replaces every patientId (None keeps the template's, as ``<NoPatientId/>``
    does); every uniqueId becomes a fresh OID; ``values`` fills ``$name$`` placeholders.
    ``catalogue_type`` recodes the typeCode to a type of Carnet's catalogue (LOINC 11502-2):
    a national registry accepts only its affinity domain's codes.
    """
    text = (NIST / name).read_text(encoding="utf-8")
    for key, value in (values or {}).items():
        text = text.replace(f"${key}$", xml_escape(value, {'"': "&quot;"}))
    root = etree.fromstring(text.encode())
    if root.tag == f"{{{_RS21}}}SubmitObjectsRequest":
        root = _from_ebrim21(root)
    if root.tag == f"{{{LCM}}}SubmitObjectsRequest":
        wrapper = etree.Element(
            f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": XDSB}
        )
        wrapper.append(root)
        root = wrapper
    for identifier in root.iter(f"{{{RIM}}}ExternalIdentifier"):
        scheme = identifier.get("identificationScheme")
        if scheme in _UNIQUE_IDS:
            identifier.set("value", new_oid())
        elif scheme in _PATIENT_IDS and patient is not None:
            identifier.set("value", patient)
    if catalogue_type:
        for classification in root.iter(f"{{{RIM}}}Classification"):
            if classification.get("classificationScheme") == _TYPE_CODE:
                classification.set("nodeRepresentation", "11502-2")
                for coded in classification.iter(f"{{{RIM}}}Value"):
                    coded.text = "2.16.840.1.113883.6.1"
    for document_id, content in (documents or {}).items():
        document = etree.SubElement(root, f"{{{XDSB}}}Document", id=document_id)
        document.text = base64.b64encode(content).decode()
    return root


def new_oid() -> str:
    """A fresh uniqueId (a UUID-derived OID)."""
    return f"2.25.{uuid.uuid4().int}"


def _from_ebrim21(request: etree._Element) -> etree._Element:
    """The toolkit's ebRIM 2.1 → 3.0 step: namespaces, the object list, association types."""
    submission = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = etree.SubElement(submission, f"{{{RIM}}}RegistryObjectList")
    listing = request.find(f"{{{_RIM21}}}LeafRegistryObjectList")
    assert listing is not None
    for element in listing:
        if not isinstance(element.tag, str) or etree.QName(element).localname == "ObjectRef":
            continue
        converted = _renamed(element)
        if etree.QName(converted).localname == "Association":
            kind = converted.get("associationType", "")
            converted.set("associationType", _SHORT_TYPES.get(kind, kind))
        objects.append(converted)
    return submission


def _renamed(element: etree._Element) -> etree._Element:
    copy = etree.Element(f"{{{RIM}}}{etree.QName(element).localname}", dict(element.attrib))
    copy.text = element.text
    for child in element:
        if isinstance(child.tag, str):
            copy.append(_renamed(child))
    if etree.QName(copy).localname == "ExternalIdentifier" and copy.get("registryObject") is None:
        parent = element.getparent()
        if parent is not None and parent.get("id"):
            copy.set("registryObject", parent.get("id", ""))
    return copy


def envelope(
    body: etree._Element, action: str, *, headers: list[etree._Element] | None = None
) -> bytes:
    """A SOAP 1.2 envelope with WS-Addressing around ``body``."""
    root = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP, "a": WSA})
    header = etree.SubElement(root, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP}}}mustUnderstand": "1"}).text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(
        etree.SubElement(header, f"{{{WSA}}}ReplyTo"), f"{{{WSA}}}Address"
    ).text = "http://www.w3.org/2005/08/addressing/anonymous"
    for extra in headers or []:
        header.append(extra)
    etree.SubElement(root, f"{{{SOAP}}}Body").append(body)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def plain(body: etree._Element, action: str) -> tuple[bytes, str]:
    """A plain SOAP 1.2 request: its bytes and content type."""
    return envelope(body, action), f'application/soap+xml; charset=UTF-8; action="{action}"'


def mtom(body: etree._Element, action: str) -> tuple[bytes, str]:
    """An MTOM request: every ``xdsb:Document``'s base64 text moved to a binary MIME part."""
    parts: list[tuple[str, bytes]] = []
    for index, document in enumerate(body.iter(f"{{{XDSB}}}Document"), start=1):
        content_id = f"doc{index}@example.org"
        parts.append((content_id, base64.b64decode(document.text or "")))
        document.text = None
        include = etree.SubElement(document, f"{{{XOP}}}Include", nsmap={"xop": XOP})
        include.set("href", f"cid:{content_id.replace('@', '%40')}")
    boundary = f"uuid:{uuid.uuid4()}"
    chunks = [
        f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
        'type="application/soap+xml"\r\nContent-Transfer-Encoding: binary\r\n'
        "Content-ID: <root.message@example.org>\r\n\r\n".encode(),
        envelope(body, action),
    ]
    for content_id, data in parts:
        chunks.append(
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{content_id}>\r\n\r\n".encode()
        )
        chunks.append(data)
    chunks.append(f"\r\n--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
        f'start="<root.message@example.org>"; start-info="application/soap+xml"; action="{action}"'
    )
    return b"".join(chunks), content_type


def retrieve_request(*unique_ids: str, repository: str) -> etree._Element:
    """An ITI-43 ``RetrieveDocumentSetRequest`` for ``unique_ids``."""
    request = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
    for unique_id in unique_ids:
        item = etree.SubElement(request, f"{{{XDSB}}}DocumentRequest")
        etree.SubElement(item, f"{{{XDSB}}}RepositoryUniqueId").text = repository
        etree.SubElement(item, f"{{{XDSB}}}DocumentUniqueId").text = unique_id
    return request


def document_unique_ids(request: etree._Element) -> list[str]:
    """The DocumentEntries' uniqueIds of a submission, in order."""
    return [
        identifier.get("value", "")
        for identifier in request.iter(f"{{{RIM}}}ExternalIdentifier")
        if identifier.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
    ]


def entry_ids(request: etree._Element, tag: str = "ExtrinsicObject") -> list[str]:
    """The ids of a submission's objects of one kind."""
    return [element.get("id", "") for element in request.iter(f"{{{RIM}}}{tag}")]


def set_ids(request: etree._Element, ids: dict[str, str]) -> None:
    """Rename objects (ids and every reference to them), as the toolkit gives urn:uuid ids."""
    for element in request.iter():
        for attribute in (
            "id",
            "classifiedObject",
            "registryObject",
            "sourceObject",
            "targetObject",
        ):
            value = element.get(attribute)
            if value in ids:
                element.set(attribute, ids[value])


def path_of(name: str) -> Path:
    """A NIST file's path."""
    return NIST / name


# --- an XDS.b Document Source over HTTP, and reading its answers ------------------------------


@dataclass
class Source:
    """An XDS.b Document Source and Consumer of a laboratory, and a patient with a dossier."""

    served: Served
    session: Session
    clock: FrozenClock
    lab: Actor
    patient: Actor
    matricule: str

    def reader(self) -> dict[str, str]:
        """The patient's token: a feeding system publishes but reads nothing on its own."""
        return bearer(self.served, self.session, self.patient, self.clock, "patient/*.rs")

    @property
    def cx(self) -> str:
        return patient_cx(self.matricule)

    def headers(
        self, actor: Actor | None = None, scope: str = "system/DocumentReference.cru"
    ) -> dict[str, str]:
        return bearer(self.served, self.session, actor or self.lab, self.clock, scope)

    def send(
        self,
        body: etree._Element,
        action: str = PROVIDE,
        *,
        packaging: str = "plain",
        headers: dict[str, str] | None = None,
    ) -> Any:
        data, content_type = (mtom if packaging == "mtom" else plain)(body, action)
        endpoint = "/xds/repository"
        return self.served.client.post(
            endpoint,
            content=data,
            headers={
                "Content-Type": content_type,
                **(headers if headers is not None else self.headers()),
            },
        )


def registry_status(response: Any) -> tuple[str, list[tuple[str, str]]]:
    """The RegistryResponse's status and its errors (code, location), from a SOAP answer."""
    assert response.status_code == 200, response.text
    root = etree.fromstring(root_part(response))
    registry = next(root.iter(f"{{{RS}}}RegistryResponse"))
    errors = [
        (e.get("errorCode", ""), e.get("location", ""))
        for e in registry.iter(f"{{{RS}}}RegistryError")
    ]
    return registry.get("status", ""), errors


def root_part(response: Any) -> bytes:
    """The SOAP envelope of an answer, plain or the root part of an MTOM one."""
    content_type = response.headers["content-type"]
    if not content_type.startswith("multipart/related"):
        return bytes(response.content)
    return response_parts(response)[0][1]


def response_parts(response: Any) -> list[tuple[str, bytes]]:
    """An MTOM answer's MIME parts: (Content-ID, bytes), the envelope first."""
    head = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + response.content)
    found = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found.append((str(part["Content-ID"] or "").strip("<>"), payload))
    return found
