"""The NIST XDS Toolkit's remaining ITI-41 submissions, run as their testplans say.

The toolkit registers these through ITI-42 (``<RegisterTransaction>``); Carnet is a repository
and registry in one and serves ITI-41 only, so each step is sent as ITI-41 with the document
attached — what a Document Source in front of Carnet sends for the same metadata. Where the
toolkit gives a ``hash``/``size`` of a document it does not ship, the slots are dropped (the
repository computes them, ITI TF-2 3.41.4.1.3); the catalogue recodes the typeCode as in
``test_provide_retrieve.py``.

* 11966 — a single document, plain text: Success.
* 11994 — XFRM of a document (Success), and of a document since replaced (Failure:
  ``XDSRegistryDeprecatedDocumentError``).
* 12004 — the same DocumentEntry (same uniqueId) sent again: the testplan expects Success,
  Carnet answers ``XDSDuplicateUniqueIdInRegistry`` (see ``test_12004``); with another hash,
  ``XDSNonIdenticalHash`` as the testplan expects.
* 12084 — two DocumentEntries sharing one uniqueId in one submission: Failure.

And the README's copy-paste request (``docs/examples/iti41-provide.xml``), sent as its curl does.
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from sqlalchemy import select

from carnet.documents.models import Document, DocumentStatus
from carnet.xds import mapping
from carnet.xds import vocabulary as v
from factories.xds import (
    MY_DOCUMENT,
    RIM,
    Source,
    document_unique_ids,
    new_oid,
    nist_submission,
    registry_status,
)

RPLC = "ReposAcceptanceTest-1111__SubmitRplc__single_doc.xml"
README_REQUEST = Path(__file__).resolve().parents[2] / "docs" / "examples" / "iti41-provide.xml"


def toolkit(
    source: Source, name: str, documents: dict[str, bytes], **values: str
) -> etree._Element:
    """A toolkit submission for the source's patient, with Carnet's catalogue type."""
    request = nist_submission(
        name,
        patient=source.cx,
        documents=documents,
        values={"patientid": source.cx, **values},
        catalogue_type=True,
    )
    for slot in list(request.iter(f"{{{RIM}}}Slot")):
        if slot.get("name") in ("hash", "size"):
            parent = slot.getparent()
            assert parent is not None
            parent.remove(slot)
    for entry in request.iter(f"{{{RIM}}}ExtrinsicObject"):
        entry.set("mimeType", "text/plain")  # the toolkit's payload is text
    return request


def with_unique_id(request: etree._Element, unique_id: str) -> etree._Element:
    """Every DocumentEntry of ``request`` given ``unique_id`` (the toolkit's ``NoAssignUids``)."""
    for identifier in request.iter(f"{{{RIM}}}ExternalIdentifier"):
        if identifier.get("identificationScheme") == v.DOCUMENT_UNIQUE_ID:
            identifier.set("value", unique_id)
    return request


def test_11966_a_single_document(source: Source) -> None:
    request = toolkit(source, "11966__submit__single_doc.xml", {"Document01": MY_DOCUMENT})
    (unique_id,) = document_unique_ids(request)
    assert registry_status(source.send(request)) == (v.SUCCESS, [])
    (document,) = source.session.scalars(select(Document)).all()
    assert document.master_identifier == mapping.master_identifier(unique_id)


def test_11994_transform_and_the_transform_of_a_replaced_document(source: Source) -> None:
    single = "11966__submit__single_doc.xml"
    xfrm = "11994__xfrm__metadata.xml"
    assert registry_status(source.send(toolkit(source, single, {"Document01": b"one"})))[0] == (
        v.SUCCESS
    )
    (original,) = source.session.scalars(select(Document)).all()
    transform = toolkit(
        source,
        xfrm,
        {"Document01": b"one, transformed"},
        xfrm_doc_uuid=mapping.entry_uuid(original.id),
    )
    assert registry_status(source.send(transform)) == (v.SUCCESS, [])
    # submit_copy, then replaced: its XFRM must fail (the testplan's step xfrm_rplc).
    submit_copy = toolkit(source, single, {"Document01": b"two"})
    (copy_uid,) = document_unique_ids(submit_copy)
    assert registry_status(source.send(submit_copy))[0] == v.SUCCESS
    copy = source.session.scalars(
        select(Document).where(Document.master_identifier == mapping.master_identifier(copy_uid))
    ).one()
    replacement = toolkit(
        source, RPLC, {"myDocId1": b"two, corrected"}, original_doc_uuid=mapping.entry_uuid(copy.id)
    )
    assert registry_status(source.send(replacement)) == (v.SUCCESS, [])
    source.session.refresh(copy)
    assert copy.status is DocumentStatus.SUPERSEDED
    before = len(source.session.scalars(select(Document)).all())
    refused = toolkit(
        source, xfrm, {"Document01": b"two, transformed"}, xfrm_doc_uuid=mapping.entry_uuid(copy.id)
    )
    status, errors = registry_status(source.send(refused))
    assert (status, [code for code, _ in errors]) == (
        v.FAILURE,
        ["XDSRegistryDeprecatedDocumentError"],
    )
    assert len(source.session.scalars(select(Document)).all()) == before


def test_12004_the_same_document_sent_again(source: Source) -> None:
    unique_id = new_oid()
    first = with_unique_id(
        toolkit(source, "12004__submit__single_doc2.xml", {"Document01": MY_DOCUMENT}), unique_id
    )
    assert registry_status(source.send(first)) == (v.SUCCESS, [])
    # resubmit_doc: the testplan expects Success. Carnet keeps one entry per uniqueId in a
    # dossier (as MHD answers 409 to a second masterIdentifier) and says so: the sender learns
    # that this very document is already filed, under the uniqueId it sent; nothing is written.
    again = with_unique_id(
        toolkit(source, "12004__submit__single_doc2.xml", {"Document01": MY_DOCUMENT}), unique_id
    )
    assert registry_status(source.send(again)) == (
        v.FAILURE,
        [("XDSDuplicateUniqueIdInRegistry", unique_id)],
    )
    # resubmit_doc_diff_hash: as the testplan expects.
    other = with_unique_id(
        toolkit(source, "12004__submit__single_doc3.xml", {"Document01": b"other bytes"}),
        unique_id,
    )
    assert registry_status(source.send(other)) == (
        v.FAILURE,
        [("XDSNonIdenticalHash", unique_id)],
    )
    assert len(source.session.scalars(select(Document)).all()) == 1


def test_12084_one_unique_id_for_two_documents(source: Source) -> None:
    request = toolkit(
        source,
        "12084__submit__two_doc.xml",
        {"Document01": MY_DOCUMENT, "Document02": b"second"},
    )
    with_unique_id(request, new_oid())
    status, errors = registry_status(source.send(request))
    assert status == v.FAILURE
    assert errors
    assert source.session.scalars(select(Document)).all() == []


def test_the_readmes_request(source: Source) -> None:
    text = (
        README_REQUEST.read_text(encoding="utf-8")
        .replace("MATRICULE", source.matricule)
        .replace("DOCUMENT_UID", new_oid())
        .replace("SET_UID", new_oid())
    )
    answer = source.served.client.post(
        "/xds/repository",
        content=text.encode(),
        headers={
            "Content-Type": 'application/soap+xml; charset=UTF-8; action="urn:ihe:iti:2007:'
            'ProvideAndRegisterDocumentSet-b"',
            **source.headers(scope="system/DocumentReference.c"),
        },
    )
    assert registry_status(answer) == (v.SUCCESS, []), answer.text
    (document,) = source.session.scalars(select(Document)).all()
    assert (document.title, document.type_code, document.size) == ("Blood count", "11502-2", 20)
