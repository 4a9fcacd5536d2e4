"""The CDA R2 structure Carnet relies on, checked explicitly (HL7 CDA R2, POCD_MT000040).

No maintained package installable here (PyPI, npm, Debian) ships the CDA R2 XML schema, and
Carnet does not copy the HL7 schema into its tree: so the parts of POCD_MT000040 that Carnet
reads or writes are checked here, by rule. The children of ``ClinicalDocument`` must follow the
schema's sequence with its cardinalities (below); the identifiers, codes and times Carnet reads
must carry their required attributes; there is one ``component`` holding exactly one body,
``structuredBody`` (with sections) or ``nonXMLBody`` (with its ``text``). Elements of other
namespaces (the SDTC extensions C-CDA uses) are left to their own schemas. What is not checked:
the datatypes and vocabularies of elements Carnet does not read, and the inside of sections.
"""

from __future__ import annotations

from typing import Any, Final, NoReturn

from lxml import etree

from carnet.cda.errors import CdaRefused
from carnet.cda.parsing import V3, v3

_UNBOUNDED: Final = 1_000_000
# POCD_MT000040.ClinicalDocument: the sequence of its children, each with (min, max) occurs.
HEADER_SEQUENCE: Final[tuple[tuple[str, int, int], ...]] = (
    ("realmCode", 0, _UNBOUNDED),
    ("typeId", 1, 1),
    ("templateId", 0, _UNBOUNDED),
    ("id", 1, 1),
    ("code", 1, 1),
    ("title", 0, 1),
    ("effectiveTime", 1, 1),
    ("confidentialityCode", 1, 1),
    ("languageCode", 0, 1),
    ("setId", 0, 1),
    ("versionNumber", 0, 1),
    ("copyTime", 0, 1),
    ("recordTarget", 1, _UNBOUNDED),
    ("author", 1, _UNBOUNDED),
    ("dataEnterer", 0, 1),
    ("informant", 0, _UNBOUNDED),
    ("custodian", 1, 1),
    ("informationRecipient", 0, _UNBOUNDED),
    ("legalAuthenticator", 0, 1),
    ("authenticator", 0, _UNBOUNDED),
    ("participant", 0, _UNBOUNDED),
    ("inFulfillmentOf", 0, _UNBOUNDED),
    ("documentationOf", 0, _UNBOUNDED),
    ("relatedDocument", 0, _UNBOUNDED),
    ("authorization", 0, _UNBOUNDED),
    ("componentOf", 0, 1),
    ("component", 1, 1),
)
# The CDA R2 InfrastructureRoot.typeId of every ClinicalDocument (CDA R2 §4.2.1.2).
TYPE_ID_ROOT: Final = "2.16.840.1.113883.1.3"
TYPE_ID_EXTENSION: Final = "POCD_HD000040"


def check_structure(root: Any) -> None:
    """Refuse (``CdaRefused``, reason ``structure``) a ClinicalDocument that breaks the parts of
    POCD_MT000040 Carnet relies on, naming the first element at fault."""
    _check_sequence(root)
    type_id = root.find(v3("typeId"))
    if type_id.get("root") != TYPE_ID_ROOT or type_id.get("extension") != TYPE_ID_EXTENSION:
        _refuse(
            f"typeId must be {TYPE_ID_ROOT} / {TYPE_ID_EXTENSION} (a CDA R2 document), not "
            f"{type_id.get('root')} / {type_id.get('extension')}."
        )
    _require_identifier(root.find(v3("id")), "id")
    code = root.find(v3("code"))
    if not code.get("code") or not code.get("codeSystem"):
        _refuse("The document's code needs a code and a codeSystem.")
    if not root.find(v3("effectiveTime")).get("value"):
        _refuse("effectiveTime needs a value.")
    if not root.find(v3("confidentialityCode")).get("code"):
        _refuse("confidentialityCode needs a code.")
    language = root.find(v3("languageCode"))
    if language is not None and not language.get("code"):
        _refuse("languageCode needs a code.")
    set_id, version = root.find(v3("setId")), root.find(v3("versionNumber"))
    if set_id is not None:
        _require_identifier(set_id, "setId")
    if (set_id is None) != (version is None):
        _refuse("setId and versionNumber go together: a version is a version of a set.")
    for index, target in enumerate(root.findall(v3("recordTarget")), 1):
        role = _required(target, "patientRole", f"recordTarget[{index}]")
        _require_ids(role, f"recordTarget[{index}]/patientRole")
    for index, author in enumerate(root.findall(v3("author")), 1):
        _required(author, "time", f"author[{index}]")
        assigned = _required(author, "assignedAuthor", f"author[{index}]")
        _require_ids(assigned, f"author[{index}]/assignedAuthor")
    custodian = _required(
        _required(root.find(v3("custodian")), "assignedCustodian", "custodian"),
        "representedCustodianOrganization",
        "custodian/assignedCustodian",
    )
    _require_ids(custodian, "custodian/assignedCustodian/representedCustodianOrganization")
    for index, related in enumerate(root.findall(v3("relatedDocument")), 1):
        if related.get("typeCode") not in ("RPLC", "APND", "XFRM"):
            _refuse(f"relatedDocument[{index}] has typeCode {related.get('typeCode')!r}.")
        parent = _required(related, "parentDocument", f"relatedDocument[{index}]")
        _require_ids(parent, f"relatedDocument[{index}]/parentDocument")
    _check_component(root.find(v3("component")))


def _check_sequence(root: Any) -> None:
    names = [
        etree.QName(child).localname
        for child in root
        if isinstance(child.tag, str) and etree.QName(child).namespace == V3
    ]
    position = 0
    for name, least, most in HEADER_SEQUENCE:
        count = 0
        while position < len(names) and names[position] == name:
            count += 1
            position += 1
        if count < least:
            found = names[position] if position < len(names) else "the end of the document"
            _refuse(f"ClinicalDocument needs {name} where {found} is.")
        if count > most:
            _refuse(f"ClinicalDocument has {count} {name} elements; at most {most} is allowed.")
    if position < len(names):
        _refuse(f"ClinicalDocument has {names[position]} where the CDA R2 schema allows none.")


def _check_component(component: Any) -> None:
    bodies = [
        child
        for child in component
        if isinstance(child.tag, str) and etree.QName(child).namespace == V3
    ]
    if len(bodies) != 1 or etree.QName(bodies[0]).localname not in (
        "structuredBody",
        "nonXMLBody",
    ):
        _refuse("The document's component holds exactly one structuredBody or nonXMLBody.")
    body = bodies[0]
    if etree.QName(body).localname == "nonXMLBody":
        _required(body, "text", "component/nonXMLBody")
    elif body.find(v3("component")) is None:
        _refuse("A structuredBody holds at least one component (section).")


def _required(parent: Any, name: str, where: str) -> Any:
    child = parent.find(v3(name))
    if child is None:
        _refuse(f"{where} needs {name}.")
    return child


def _require_ids(parent: Any, where: str) -> None:
    ids = parent.findall(v3("id"))
    if not ids:
        _refuse(f"{where} needs an id.")
    for element in ids:
        _require_identifier(element, f"{where}/id")


def _require_identifier(element: Any, where: str) -> None:
    # An II is a root (OID or UUID) and maybe an extension, or a nullFlavor saying it is unknown.
    if not element.get("root") and not element.get("nullFlavor"):
        _refuse(f"{where} needs a root (or a nullFlavor).")


def _refuse(message: str) -> NoReturn:
    raise CdaRefused(message, reason="structure")
