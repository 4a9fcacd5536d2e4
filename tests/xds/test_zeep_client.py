"""Every XDS.b transaction driven by an independent SOAP client: zeep, generated from the WSDL
Carnet serves at ``/xds/?wsdl``, over a real socket (uvicorn in a thread).

zeep builds the SOAP 1.2 envelopes and the WS-Addressing headers itself (its ``WsAddressing``
plugin, from the WSDL's ``wsaw:Action``), sends them with ``requests`` and reads the answers,
MTOM/XOP ones included (zeep decodes ``xop:Include`` into the element's base64 text). zeep does
not *send* MTOM: the MTOM request is zeep's own envelope repackaged by a small transport
(``MtomTransport``) the way an MTOM-capable stack does on the wire.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import uvicorn
import zeep
import zeep.wsa
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carnet.access.actors import Actor
from carnet.app import create_app
from carnet.auth.tokens import Principal, TokenAuthority, issue_access_token
from carnet.clock import FrozenClock
from carnet.documents.models import Document, DocumentStatus
from carnet.platform import Platform
from carnet.settings import Settings
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.xds import mapping
from carnet.xds import vocabulary as v
from carnet.xds.vocabulary import REPOSITORY_UNIQUE_ID
from factories.actors import patient_actor, system_actor
from factories.directory import make_organisation
from factories.patients import make_matricule, make_patient
from factories.xds import (
    LCM,
    MY_DOCUMENT,
    RIM,
    RS,
    XDSB,
    XOP,
    document_unique_ids,
    nist_submission,
    patient_cx,
    retrieve_request,
)
from factories.xds_query import APPROVED, FIND_DOCUMENTS, adhoc

SINGLE = "ReposAcceptanceTest-1111__SubmitSingleDoc__single_doc.xml"
REPOSITORY = ("DocumentRepository_Service", "DocumentRepository_Port_Soap12")
REGISTRY = ("DocumentRegistry_Service", "DocumentRegistry_Port_Soap12")
PROVIDE = "DocumentRepository_ProvideAndRegisterDocumentSet-b"
RETRIEVE = "DocumentRepository_RetrieveDocumentSet"
STORED_QUERY = "DocumentRegistry_RegistryStoredQuery"
UPDATE = "DocumentRegistry_UpdateDocumentSet"
LAB_SCOPE = "system/DocumentReference.cru"
READER_SCOPE = "patient/*.rs"
# Binary, with CR LF and NUL inside. It does not end with a line break: zeep (4.3.x) strips CR
# and LF from both ends of a binary MIME part it reads (python-zeep issues #1249 and #1481, open),
# so an MTOM answer's document ending in "%%EOF\r\n" would reach a zeep caller two bytes short.
# Carnet sends the bytes unchanged (tests/xds/test_provide_retrieve.py checks it byte for byte).
PDF = b"%PDF-1.4\r\n%\xe2\xe3\xcf\xd3\r\n1 0 obj<<>>endobj\n\x00\xff\r\n\r\n%%EOF"


class MtomTransport(zeep.Transport):
    """zeep's transport, sending each ``xdsb:Document``'s bytes as a binary MIME part (XOP)."""

    def post_xml(self, address: str, envelope: etree._Element, headers: dict[str, str]) -> Any:
        parts: list[tuple[str, bytes]] = []
        for number, document in enumerate(envelope.iter(f"{{{XDSB}}}Document"), start=1):
            content_id = f"document{number}@zeep.example"
            parts.append((content_id, base64.b64decode(document.text or "")))
            document.text = None
            include = etree.SubElement(document, f"{{{XOP}}}Include", nsmap={"xop": XOP})
            include.set("href", f"cid:{content_id.replace('@', '%40')}")
        boundary = f"uuid:{uuid.uuid4()}"
        action = headers.get("Content-Type", "").partition("action=")[2].strip('"')
        chunks = [
            f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; "
            'type="application/soap+xml"\r\nContent-Transfer-Encoding: binary\r\n'
            "Content-ID: <root@zeep.example>\r\n\r\n".encode(),
            etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
        ]
        for content_id, data in parts:
            chunks.append(
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Transfer-Encoding: binary\r\nContent-ID: <{content_id}>\r\n\r\n".encode()
            )
            chunks.append(data)
        chunks.append(f"\r\n--{boundary}--\r\n".encode())
        headers = dict(headers)
        headers["Content-Type"] = (
            f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; '
            f'start="<root@zeep.example>"; start-info="application/soap+xml"; action="{action}"'
        )
        return self.post(address, b"".join(chunks), headers)  # type: ignore[no-untyped-call]


@dataclass
class Live:
    """Carnet listening on a real port, and the people of the test."""

    base_url: str
    app: Any
    session: Session
    clock: FrozenClock
    lab: Actor
    patient: Actor
    matricule: str

    def token(self, actor: Actor, scope: str) -> str:
        """A Carnet access token for ``actor``, signed by the served app's authority."""
        authority: TokenAuthority = self.app.state.authority
        principal = Principal(
            kind=actor.kind,
            subject=str(actor.person_id or actor.professional_id or actor.subject),
            assurance=actor.assurance,
            person_id=actor.person_id,
            professional_id=actor.professional_id,
            organisation_id=actor.organisation_id,
            profession=actor.profession,
        )
        return issue_access_token(
            self.session, authority, principal, scope=scope, client_id="zeep", clock=self.clock
        ).token

    def client(self, actor: Actor | None, scope: str = "", *, mtom: bool = False) -> zeep.Client:
        """A zeep client generated from the served WSDL, sending ``actor``'s bearer token."""
        http = requests.Session()
        http.trust_env = False  # the server is on this machine: no proxy from the environment
        if actor is not None:
            http.headers["Authorization"] = f"Bearer {self.token(actor, scope)}"
        kind = MtomTransport if mtom else zeep.Transport
        transport = kind(session=http, timeout=60)  # type: ignore[no-untyped-call]
        return zeep.Client(  # type: ignore[no-untyped-call]
            f"{self.base_url}/xds/?wsdl",
            transport=transport,
            plugins=[zeep.wsa.WsAddressingPlugin()],
        )

    @property
    def cx(self) -> str:
        return patient_cx(self.matricule)


@pytest.fixture
def live(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Live]:
    """Carnet served by uvicorn on 127.0.0.1, its sessions joined to the test's transaction."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    platform = Platform(
        settings=Settings(public_url=base_url),
        engine=session.get_bind().engine,
        sessions=sessionmaker(
            bind=session.connection(),
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        ),
        store=store,
        clock=clock,
        key_wrapper=wrapper,
    )
    app = create_app(platform=platform)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    lab = system_actor(make_organisation(session, clock), scopes="system/DocumentReference.cru")
    try:
        yield Live(base_url, app, session, clock, lab, patient_actor(patient), matricule)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        listening.close()


def call(client: zeep.Client, where: tuple[str, str], operation: str, body: etree._Element) -> Any:
    """Call ``operation`` with ``body``'s children and attributes as its open content."""
    service = client.bind(*where)
    return service[operation](_value_1=list(body), _attr_1=dict(body.attrib))


def status(answer: Any) -> tuple[str, list[tuple[str, str]]]:
    """A RegistryResponse's status and errors (code, location), as zeep returned it.

    zeep knows ``rs:RegistryResponse`` from the WSDL and hands it over as an object (its
    attributes in ``_attr_1``, its open content in ``_value_1``); the other ebRIM and XDS.b
    elements come as lxml elements. ITI-43's response holds the RegistryResponse as a child.
    """
    if answer["_attr_1"] is None:
        (answer,) = [c for c in answer["_value_1"] if not isinstance(c, etree._Element)]
    listing = etree.Element("listing")
    for child in answer["_value_1"] or []:
        listing.append(child)
    return answer["_attr_1"]["status"], _errors(listing)


def _errors(element: etree._Element) -> list[tuple[str, str]]:
    return [
        (error.get("errorCode", ""), error.get("location", ""))
        for error in element.iter(f"{{{RS}}}RegistryError")
    ]


def submission(live: Live, content: bytes, mime_type: str = "text/plain") -> etree._Element:
    request = nist_submission(SINGLE, patient=live.cx, documents={"myDocId1": content})
    for entry in request.iter(f"{{{RIM}}}ExtrinsicObject"):
        entry.set("mimeType", mime_type)
    return request


def retrieved(answer: Any) -> dict[str, tuple[str, bytes]]:
    """ITI-43's documents by uniqueId: (mimeType, bytes)."""
    found: dict[str, tuple[str, bytes]] = {}
    for response in answer["_value_1"]:
        if (
            not isinstance(response, etree._Element)
            or response.tag != f"{{{XDSB}}}DocumentResponse"
        ):
            continue
        found[response.findtext(f"{{{XDSB}}}DocumentUniqueId") or ""] = (
            response.findtext(f"{{{XDSB}}}mimeType") or "",
            base64.b64decode(response.findtext(f"{{{XDSB}}}Document") or ""),
        )
    return found


def find_documents(live: Live) -> etree._Element:
    """An ITI-18 FindDocuments (LeafClass) for the test's patient, approved documents."""
    return adhoc(
        FIND_DOCUMENTS,
        {
            "$XDSDocumentEntryPatientId": f"'{live.cx}'",
            "$XDSDocumentEntryStatus": APPROVED,
        },
    )


def deprecation(live: Live, document_id: uuid.UUID) -> etree._Element:
    """An ITI-57 request: the document's availability status from Approved to Deprecated."""
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = etree.SubElement(request, f"{{{RIM}}}RegistryObjectList")
    package = etree.SubElement(objects, f"{{{RIM}}}RegistryPackage", id="SubmissionSet01")
    etree.SubElement(
        package,
        f"{{{RIM}}}Classification",
        classifiedObject="SubmissionSet01",
        classificationNode=v.SUBMISSION_SET_CLASSIFICATION,
        id="c1",
    )
    for scheme, value in (
        (v.SUBMISSION_SET_PATIENT_ID, live.cx),
        (v.SUBMISSION_SET_UNIQUE_ID, f"2.25.{uuid.uuid4().int}"),
        (v.SUBMISSION_SET_SOURCE_ID, "1.3.6.1.4.1.21367.4"),
    ):
        etree.SubElement(
            package,
            f"{{{RIM}}}ExternalIdentifier",
            identificationScheme=scheme,
            value=value,
            registryObject="SubmissionSet01",
            id=f"ei{len(package)}",
        )
    association = etree.SubElement(
        objects,
        f"{{{RIM}}}Association",
        id="Update01",
        associationType=v.UPDATE_AVAILABILITY_STATUS,
        sourceObject="SubmissionSet01",
        targetObject=mapping.entry_uuid(document_id),
    )
    for name, value in (("OriginalStatus", v.APPROVED), ("NewStatus", v.DEPRECATED)):
        slot = etree.SubElement(association, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(
            etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value"
        ).text = value
    return request


def test_the_wsdl_generates_a_client_offline(live: Live) -> None:
    client = live.client(live.lab, LAB_SCOPE)
    operations = {
        name
        for service in client.wsdl.services.values()
        for port in service.ports.values()
        for name in port.binding._operations
    }
    assert operations == {PROVIDE, RETRIEVE, STORED_QUERY, UPDATE}
    addresses = {
        port.binding_options["address"]
        for service in client.wsdl.services.values()
        for port in service.ports.values()
    }
    assert addresses == {f"{live.base_url}/xds/repository", f"{live.base_url}/xds/registry"}


def test_publish_find_retrieve_and_deprecate_inline(live: Live) -> None:
    request = submission(live, MY_DOCUMENT)
    (unique_id,) = document_unique_ids(request)
    lab = live.client(live.lab, LAB_SCOPE)
    assert status(call(lab, REPOSITORY, PROVIDE, request)) == (v.SUCCESS, [])
    (document,) = live.session.scalars(select(Document)).all()
    assert (document.master_identifier, document.size) == (f"urn:oid:{unique_id}", len(MY_DOCUMENT))

    reader = live.client(live.patient, READER_SCOPE)
    found = call(reader, REGISTRY, STORED_QUERY, find_documents(live))
    assert found["_attr_1"]["status"] == v.SUCCESS
    (entry,) = [e for part in found["_value_1"] for e in part.iter(f"{{{RIM}}}ExtrinsicObject")]
    assert entry.get("id") == mapping.entry_uuid(document.id)
    assert unique_id in [
        identifier.get("value") for identifier in entry.iterfind(f"{{{RIM}}}ExternalIdentifier")
    ]
    # MHD names the same entry: DocumentReference.identifier carries the entryUUID.
    mhd = requests.get(
        f"{live.base_url}/fhir/DocumentReference",
        params={"patient": f"Patient/{live.patient.person_id}"},
        headers={"Authorization": f"Bearer {live.token(live.patient, READER_SCOPE)}"},
        timeout=60,
    ).json()
    (resource,) = [item["resource"] for item in mhd["entry"]]
    assert resource["identifier"] == [
        {"use": "official", "system": "urn:ietf:rfc:3986", "value": entry.get("id")}
    ]

    answer = call(
        reader, REPOSITORY, RETRIEVE, retrieve_request(unique_id, repository=REPOSITORY_UNIQUE_ID)
    )
    assert status(answer) == (v.SUCCESS, [])
    assert retrieved(answer) == {unique_id: ("text/plain", MY_DOCUMENT)}

    updated = call(lab, REGISTRY, UPDATE, deprecation(live, document.id))
    assert status(updated) == (v.SUCCESS, [])
    live.session.expire_all()
    live.session.refresh(document)
    assert document.status is DocumentStatus.ENTERED_IN_ERROR
    again = call(reader, REGISTRY, STORED_QUERY, find_documents(live))
    assert not [e for e in again["_value_1"] or [] if list(e.iter(f"{{{RIM}}}ExtrinsicObject"))]


def test_mtom_publication_and_retrieval_carry_the_bytes_unchanged(live: Live) -> None:
    request = submission(live, PDF, mime_type="application/pdf")
    (unique_id,) = document_unique_ids(request)
    lab = live.client(live.lab, LAB_SCOPE, mtom=True)
    assert status(call(lab, REPOSITORY, PROVIDE, request)) == (v.SUCCESS, [])
    # Asked in MTOM, Carnet answers in MTOM; zeep reads the XOP part back into the element.
    reader = live.client(live.patient, READER_SCOPE, mtom=True)
    answer = call(
        reader, REPOSITORY, RETRIEVE, retrieve_request(unique_id, repository=REPOSITORY_UNIQUE_ID)
    )
    assert status(answer) == (v.SUCCESS, [])
    assert retrieved(answer) == {unique_id: ("application/pdf", PDF)}
    inline = call(
        live.client(live.patient, READER_SCOPE),
        REPOSITORY,
        RETRIEVE,
        retrieve_request(unique_id, repository=REPOSITORY_UNIQUE_ID),
    )
    assert retrieved(inline) == {unique_id: ("application/pdf", PDF)}


def test_refusals_reach_a_generated_client(live: Live) -> None:
    lab = live.client(live.lab, LAB_SCOPE)
    unknown = patient_cx(make_matricule())
    stranger = nist_submission(SINGLE, patient=unknown, documents={"myDocId1": MY_DOCUMENT})
    answer = call(lab, REPOSITORY, PROVIDE, stranger)
    assert status(answer) == (v.FAILURE, [("XDSUnknownPatientId", unknown)])
    missing = call(
        live.client(live.patient, READER_SCOPE),
        REPOSITORY,
        RETRIEVE,
        retrieve_request("1.2.404", repository=REPOSITORY_UNIQUE_ID),
    )
    assert status(missing) == (v.FAILURE, [("XDSMissingDocument", "1.2.404")])
    # No token: a SOAP 1.2 Fault, which zeep raises as such.
    anonymous = live.client(None)
    with pytest.raises(zeep.exceptions.Fault) as fault:
        call(anonymous, REPOSITORY, PROVIDE, submission(live, MY_DOCUMENT))
    assert fault.value.message == "An access token is required."
    assert [code.localname for code in fault.value.subcodes] == ["FailedAuthentication"]
