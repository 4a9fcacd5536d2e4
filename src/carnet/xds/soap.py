"""SOAP 1.2 envelopes with WS-Addressing, plain or packaged as MTOM/XOP.

IHE ITI TF-2 appendix V (Web Services for IHE transactions): SOAP 1.2, WS-Addressing 1.0
(``wsa:Action``, ``wsa:MessageID``, ``wsa:RelatesTo`` with ``mustUnderstand``), and for the
transactions that carry documents (ITI-41, ITI-43) MTOM/XOP: a ``multipart/related`` body whose
root part is the envelope and whose other parts are the documents, referenced from the XML by
``xop:Include href="cid:..."``. Carnet also reads an envelope sent as plain
``application/soap+xml`` with the documents inline in base64, and answers in the packaging it
was asked in.

XML is read with a hardened lxml parser: no DTD, no entity expansion, no network, no huge
trees; a document type declaration is refused outright (the billion-laughs and XXE attacks live
there). Sizes are checked before anything is parsed (``MessageTooLarge``); every problem is a
``SoapFault`` the router words as a SOAP 1.2 Fault, never a stack trace.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import unquote

from lxml import etree

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
SOAP_XML = "application/soap+xml"
XOP_XML = "application/xop+xml"
_ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
# A submission rarely carries more than a handful of documents; a thousand parts is an attack.
MAX_PARTS = 200
# The envelope itself (metadata, not content): documents travel as MTOM parts or inline base64,
# whose share of the envelope is bounded by the body limit the router checks first.
_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_blank_text=False,
)


class SoapFault(Exception):
    """A message Carnet cannot process: answered as a SOAP 1.2 Fault.

    ``code`` is ``Sender`` (the caller's message is at fault: HTTP 400) or ``Receiver``;
    ``subcode`` a qualified name such as ``wsa:ActionNotSupported``.
    """

    def __init__(
        self, reason: str, *, code: str = "Sender", subcode: str | None = None, status: int = 400
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.subcode = subcode
        self.status = status


@dataclass(frozen=True)
class Envelope:
    """A received SOAP 1.2 envelope: its header blocks, body element and WS-Addressing fields.

    ``attachments`` maps each MTOM part's Content-ID (without angle brackets) to its bytes;
    ``mtom`` says whether the message came packaged as MTOM (and so wants its answer that way).
    """

    header: etree._Element | None
    body: etree._Element
    action: str
    message_id: str | None
    attachments: Mapping[str, bytes] = field(default_factory=dict)
    mtom: bool = False

    def attachment(self, content_id: str) -> bytes | None:
        """The bytes of the MTOM part named ``cid:<content_id>``, or None."""
        key = content_id.removeprefix("cid:")
        # RFC 2392: a cid URL is URL-encoded; senders differ on whether they encode "@".
        return self.attachments.get(key, self.attachments.get(unquote(key)))


def read_message(content_type: str, body: bytes) -> Envelope:
    """Parse a request body (plain SOAP 1.2 or MTOM multipart/related) into an ``Envelope``."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/related":
        root, attachments = _read_multipart(content_type, body)
        envelope = parse_envelope(root)
        return Envelope(
            envelope.header,
            envelope.body,
            envelope.action,
            envelope.message_id,
            attachments=attachments,
            mtom=True,
        )
    if media in (SOAP_XML, "text/xml", "application/xml"):
        return parse_envelope(body)
    raise SoapFault(
        f"Send a SOAP 1.2 envelope ({SOAP_XML}) or an MTOM message (multipart/related), "
        f"not {media or 'no content type'}.",
        status=415,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse XML with the hardened parser; refuse a DTD; ``SoapFault`` when malformed."""
    try:
        tree = etree.fromstring(data, _PARSER).getroottree()
    except etree.XMLSyntaxError as error:
        raise SoapFault(f"The message is not well-formed XML: {error.msg}.") from None
    if tree.docinfo.doctype:
        raise SoapFault("A document type declaration (DTD) is not accepted.")
    return tree.getroot()


def parse_envelope(data: bytes) -> Envelope:
    """A SOAP 1.2 envelope's parts; WS-Addressing ``Action`` is required (IHE ITI TF-2 V.3.2)."""
    root = parse_xml(data)
    if root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope":
        raise SoapFault(
            "SOAP 1.1 is not supported: IHE XDS.b uses SOAP 1.2.",
            subcode="env:VersionMismatch",
        )
    if root.tag != f"{{{SOAP}}}Envelope":
        raise SoapFault("The message is not a SOAP 1.2 envelope.")
    header = root.find(f"{{{SOAP}}}Header")
    body = root.find(f"{{{SOAP}}}Body")
    payload = body[0] if body is not None and len(body) else None
    if payload is None:
        raise SoapFault("The SOAP Body is empty.")
    action = _header_text(header, "Action")
    if not action:
        raise SoapFault(
            "The WS-Addressing Action header is missing.",
            subcode="wsa:MessageAddressingHeaderRequired",
        )
    return Envelope(header, payload, action, _header_text(header, "MessageID"))


def _header_text(header: etree._Element | None, name: str) -> str | None:
    if header is None:
        return None
    found = header.find(f"{{{WSA}}}{name}")
    return (found.text or "").strip() if found is not None else None


def _read_multipart(content_type: str, body: bytes) -> tuple[bytes, dict[str, bytes]]:
    """The root part (the envelope, with XOP includes resolved later) and the other parts."""
    # The stdlib MIME parser reads the whole multipart; the body's size was bounded before.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise SoapFault("The multipart/related message has no parts (check its boundary).")
    parts = list(_parts(message))
    if not parts:
        raise SoapFault("The multipart/related message has no parts.")
    if len(parts) > MAX_PARTS:
        raise SoapFault(f"The message has more than {MAX_PARTS} MIME parts.")
    start = _param(message, "start")
    by_id: dict[str, bytes] = {}
    root: bytes | None = None
    for index, part in enumerate(parts):
        content_id = (part.get("Content-ID") or "").strip().strip("<>")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        if root is None and (
            (start and content_id == start.strip("<>")) or (not start and index == 0)
        ):
            root = data
        elif content_id:
            by_id[content_id] = data
    if root is None:
        raise SoapFault("The multipart/related message has no root part (its start parameter).")
    return root, by_id


def _parts(message: Message) -> list[Message]:
    payload = message.get_payload()
    return (
        [part for part in payload if isinstance(part, Message)] if isinstance(payload, list) else []
    )


def _param(message: Message, name: str) -> str | None:
    value = message.get_param(name)
    return value if isinstance(value, str) else None


def resolve_xop(element: etree._Element, envelope: Envelope) -> bytes:
    """The bytes an element carries: its ``xop:Include`` part, or its inline base64 text."""
    include = element.find(f"{{{XOP}}}Include")
    if include is not None:
        href = include.get("href") or ""
        data = envelope.attachment(href)
        if data is None:
            raise SoapFault(f"The xop:Include names a MIME part that is not there: {href!r}.")
        return data
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SoapFault("A document's inline content is not valid base64.") from None


@dataclass
class Reply:
    """An answer to send: its body bytes, content type and HTTP status."""

    body: bytes
    content_type: str
    status: int = 200


def reply(
    payload: etree._Element,
    *,
    action: str,
    relates_to: str | None,
    attachments: Mapping[str, bytes] | None = None,
    mtom: bool = False,
    status: int = 200,
) -> Reply:
    """A SOAP 1.2 answer around ``payload``; MTOM when asked for (or when carrying parts).

    ``attachments`` maps Content-IDs already referenced from ``payload`` by ``xop:Include`` to
    their bytes; sent as binary MIME parts (ITI TF-2 V.3.2.2, W3C XOP).
    """
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP, "a": WSA})
    header = etree.SubElement(envelope, f"{{{SOAP}}}Header")
    action_element = etree.SubElement(header, f"{{{WSA}}}Action")
    action_element.set(f"{{{SOAP}}}mustUnderstand", "1")
    action_element.text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    etree.SubElement(envelope, f"{{{SOAP}}}Body").append(payload)
    xml = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
    if not (mtom or attachments):
        return Reply(xml, f'{SOAP_XML}; charset=UTF-8; action="{action}"', status)
    return _multipart(xml, action, attachments or {}, status)


def _multipart(xml: bytes, action: str, attachments: Mapping[str, bytes], status: int) -> Reply:
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    start = f"root.message@carnet.{uuid.uuid4().hex[:8]}"
    chunks = [
        f"--{boundary}\r\n"
        f'Content-Type: {XOP_XML}; charset=UTF-8; type="{SOAP_XML}"\r\n'
        "Content-Transfer-Encoding: binary\r\n"
        f"Content-ID: <{start}>\r\n\r\n".encode("ascii"),
        xml,
    ]
    for content_id, data in attachments.items():
        chunks.append(
            f"\r\n--{boundary}\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{content_id}>\r\n\r\n".encode("ascii")
        )
        chunks.append(data)
    chunks.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="{XOP_XML}"; '
        f'start="<{start}>"; start-info="{SOAP_XML}"; action="{action}"'
    )
    return Reply(b"".join(chunks), content_type, status)


def fault(error: SoapFault, *, relates_to: str | None = None) -> Reply:
    """A SOAP 1.2 Fault (W3C SOAP 1.2 part 1, 5.4) for ``error``."""
    body = etree.Element(f"{{{SOAP}}}Fault", nsmap={"s": SOAP, "a": WSA})
    code = etree.SubElement(body, f"{{{SOAP}}}Code")
    etree.SubElement(code, f"{{{SOAP}}}Value").text = f"s:{error.code}"
    if error.subcode:
        prefix, _, local = error.subcode.partition(":")
        namespaces = {"wsa": WSA, "env": SOAP, "wsse": _WSSE}
        subcode = etree.SubElement(code, f"{{{SOAP}}}Subcode")
        value = etree.SubElement(
            subcode, f"{{{SOAP}}}Value", nsmap={prefix: namespaces.get(prefix, WSA)}
        )
        value.text = f"{prefix}:{local}"
    reason = etree.SubElement(body, f"{{{SOAP}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = error.reason
    return reply(body, action=f"{WSA}/fault", relates_to=relates_to, status=error.status)


_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


def reply_to_is_anonymous(envelope: Envelope) -> bool:
    """Whether the caller waits for the answer on this connection (the only way Carnet answers).

    IHE requires synchronous web services; a ``wsa:ReplyTo`` naming another address asks for
    an asynchronous answer Carnet does not send.
    """
    if envelope.header is None:
        return True
    address = envelope.header.find(f"{{{WSA}}}ReplyTo/{{{WSA}}}Address")
    return address is None or (address.text or "").strip() in ("", _ANONYMOUS)
