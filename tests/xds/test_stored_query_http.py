"""ITI-18 over SOAP 1.2 at ``/xds/registry``: the NIST XDS Toolkit's stored-query testplans, MHD
documents found by XDS, strangers, and a SAML-authenticated consumer.

The registry is filled as the toolkit's test 12346 fills it (single_doc, doc_w_fol,
two_doc_w_fol, doc_for_rplc, rplc — through ITI-41), then each testplan's query file is sent as
the toolkit sends it and the testplan's ``ExpectedContents`` counts are compared.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as StdET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pytest
from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.audit.models import AuditAction, AuditEvent, AuditOutcome
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from carnet.xds import vocabulary as v
from factories.actors import patient_actor, professional_actor, system_actor
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.mhd import by_identifier, provide_bundle
from factories.patients import make_matricule, make_patient
from factories.xds import (
    MY_DOCUMENT,
    NIST,
    PROVIDE,
    entry_ids,
    envelope,
    nist_submission,
    patient_cx,
    plain,
    set_ids,
)
from factories.xds_query import APPROVED, FIND_DOCUMENTS, adhoc
from factories.xua import assertion, identity_provider, security_header

STEPS = ("single_doc", "doc_w_fol", "two_doc_w_fol", "doc_for_rplc", "rplc")
TESTPLANS = (
    "11897__leafclass",
    "11897__classcode_scheme_mismatch",
    "11898__simple",
    "11901__uniqueid",
    "11906__uniqueid",
    "11907__uniqueid",
    "11909__uniqueid",
    "15803__all",
)
_COUNTED = {
    "Documents": "ExtrinsicObject",
    "SubmissionSets": "SubmissionSet",
    "Folders": "Folder",
    "Associations": "Association",
}


@dataclass
class Registry:
    """Carnet served, a patient's dossier filled by a laboratory's Document Source."""

    served: Served
    session: Session
    clock: FrozenClock
    patient: Actor
    lab: Actor
    cx: str
    matricule: str
    # Each 12346 step's object ids (Document01, SubmissionSet01, Folder) → uniqueId.
    unique_ids: dict[str, dict[str, str]] = field(default_factory=dict)
    # Each step's entryUUIDs, by symbolic id.
    uuids: dict[str, dict[str, str]] = field(default_factory=dict)

    def token(self, actor: Actor | None = None, scope: str = "patient/*.rs") -> dict[str, str]:
        return bearer(self.served, self.session, actor or self.patient, self.clock, scope)

    def post(
        self, body: etree._Element, action: str, endpoint: str, headers: dict[str, str]
    ) -> Any:
        data, content_type = plain(body, action)
        return self.served.client.post(
            endpoint, content=data, headers={"Content-Type": content_type, **headers}
        )

    def query(
        self, request: etree._Element, headers: dict[str, str] | None = None
    ) -> etree._Element:
        """The AdhocQueryResponse to ``request`` sent to the registry endpoint."""
        response = self.post(request, v.ITI18_ACTION, "/xds/registry", headers or self.token())
        assert response.status_code == 200, response.text
        found = next(etree.fromstring(response.content).iter(f"{{{v.QUERY}}}AdhocQueryResponse"))
        return found


@pytest.fixture
def registry(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Registry]:
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    lab = system_actor(make_organisation(session, clock), scopes="system/DocumentReference.cru")
    with serve(session, store, clock, wrapper) as served:
        yield Registry(
            served, session, clock, patient_actor(patient), lab, patient_cx(matricule), matricule
        )


def _fill_as_12346(registry: Registry) -> None:
    """The five submissions of the toolkit's test 12346, through ITI-41."""
    for step in STEPS:
        (path,) = NIST.glob(f"12346__{step}__*.xml")
        values = {"patientid": registry.cx}
        if step == "rplc":
            values["rplc_doc_uuid"] = registry.uuids["doc_for_rplc"]["Document01"]
        names = entry_ids(nist_submission(path.name, patient=None, values=values))
        request = nist_submission(
            path.name,
            patient=registry.cx,
            values=values,
            documents=dict.fromkeys(names, MY_DOCUMENT),
            catalogue_type=True,
        )
        # The toolkit attaches a plain-text file to entries typed text/xml; Carnet checks that
        # content is what its MIME type says, so the entries say text/plain.
        for entry in request.iter(f"{{{v.RIM}}}ExtrinsicObject"):
            entry.set("mimeType", "text/plain")
        # The toolkit gives each object a urn:uuid entryUUID before sending (as Carnet keeps).
        symbolic = [
            *names,
            *entry_ids(request, "RegistryPackage"),
            *entry_ids(request, "Association"),
        ]
        ids = {
            name: f"urn:uuid:{uuid.uuid4()}"
            for name in symbolic
            if name and not name.startswith("urn:uuid:")
        }
        set_ids(request, ids)
        registry.uuids[step] = ids
        registry.unique_ids[step] = {
            _symbolic(ids, identifier.get("registryObject", "")): identifier.get("value", "")
            for identifier in request.iter(f"{{{v.RIM}}}ExternalIdentifier")
            if identifier.get("identificationScheme")
            in (v.DOCUMENT_UNIQUE_ID, v.SUBMISSION_SET_UNIQUE_ID, v.FOLDER_UNIQUE_ID)
        }
        response = registry.post(
            request,
            PROVIDE,
            "/xds/repository",
            registry.token(registry.lab, "system/DocumentReference.cru"),
        )
        assert response.status_code == 200, response.text
        errors = [
            dict(e.attrib)
            for e in etree.fromstring(response.content).iter(f"{{{v.RS}}}RegistryError")
        ]
        assert errors == [], (step, errors)


def _symbolic(ids: dict[str, str], entry: str) -> str:
    return next((name for name, value in ids.items() if value == entry), entry)


def _counts(response: etree._Element) -> dict[str, int]:
    found = {"ExtrinsicObject": 0, "SubmissionSet": 0, "Folder": 0, "Association": 0}
    listing = response.find(f"{{{v.RIM}}}RegistryObjectList")
    for child in [] if listing is None else listing:
        name = etree.QName(child).localname
        if name == "RegistryPackage":
            nodes = {c.get("classificationNode") for c in child.iter(f"{{{v.RIM}}}Classification")}
            name = "Folder" if v.FOLDER_CLASSIFICATION in nodes else "SubmissionSet"
        if name in found:
            found[name] += 1
    return found


@pytest.mark.parametrize("testplan", TESTPLANS)
def test_nist_stored_query_testplans(registry: Registry, testplan: str) -> None:
    _fill_as_12346(registry)
    plan = StdET.parse(NIST / f"{testplan}__testplan.xml").getroot()
    step = plan.find("TestStep")
    assert step is not None
    transaction = step.find("StoredQueryTransaction")
    assert transaction is not None
    query_file = transaction.findtext("MetadataFile", "")
    text = (NIST / f"{testplan}__{query_file}").read_text(encoding="utf-8")
    for use in transaction.iter("UseId"):
        source = use.get("testdir", "").rsplit("/", 1)[-1]
        if use.get("section") == "AssignedPatientId":
            value = registry.cx
        else:
            value = registry.unique_ids[source][use.get("id", "")]
        text = text.replace(use.get("symbol", ""), xml_escape(value))
    response = registry.query(etree.fromstring(text.encode()))
    expected_status = step.findtext("ExpectedStatus", "").strip()
    assert response.get("status", "").endswith(f":{expected_status}"), etree.tostring(response)
    counts = _counts(response)
    contents = transaction.find("ExpectedContents")
    assert contents is not None
    for expected in contents:
        if expected.tag == "None":
            assert counts == dict.fromkeys(counts, 0)
        else:
            assert counts[_COUNTED[expected.tag]] == int(expected.get("count", "-1")), (
                expected.tag,
                counts,
            )


def test_an_mhd_document_is_found_by_iti18(registry: Registry) -> None:
    bundle = provide_bundle(by_identifier(registry.matricule))
    response = registry.served.client.post(
        "/fhir",
        json=bundle,
        headers={
            "Content-Type": "application/fhir+json",
            **registry.token(registry.lab, "system/DocumentReference.cru"),
        },
    )
    assert response.status_code == 200, response.text
    found = registry.query(
        adhoc(
            FIND_DOCUMENTS,
            {"$XDSDocumentEntryPatientId": f"'{registry.cx}'", "$XDSDocumentEntryStatus": APPROVED},
        )
    )
    assert _counts(found)["ExtrinsicObject"] == 1


def test_a_strangers_query_finds_nothing_and_is_audited(registry: Registry) -> None:
    _fill_as_12346(registry)
    stranger = make_professional(registry.session, registry.clock, family="Inconnu")
    request = adhoc(
        FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": f"'{registry.cx}'", "$XDSDocumentEntryStatus": APPROVED},
    )
    found = registry.query(request, registry.token(professional_actor(stranger), "user/*.rs"))
    assert found.get("status") == v.SUCCESS
    assert _counts(found) == {
        "ExtrinsicObject": 0,
        "SubmissionSet": 0,
        "Folder": 0,
        "Association": 0,
    }
    refused = registry.session.scalars(
        select(AuditEvent).where(
            AuditEvent.agent_professional_id == stranger.id,
            AuditEvent.outcome == AuditOutcome.DENIED,
        )
    ).all()
    assert [e.action for e in refused] == [AuditAction.SEARCH]


def test_a_saml_authenticated_consumer(registry: Registry, tmp_path: Any) -> None:
    _fill_as_12346(registry)
    idp = identity_provider(registry.clock.now())
    bundle = tmp_path / "idps.pem"
    bundle.write_bytes(idp.certificate_pem)
    registry.served.platform.settings.xua_trusted_certs = bundle
    doctor = make_professional(registry.session, registry.clock)
    signed = assertion(
        idp, registry.clock.now(), subject=doctor.identifier_value, qualifier="1.2.250.1.71.4.2.1"
    )
    request = adhoc(
        FIND_DOCUMENTS,
        {"$XDSDocumentEntryPatientId": f"'{registry.cx}'", "$XDSDocumentEntryStatus": APPROVED},
    )
    data = envelope(request, v.ITI18_ACTION, headers=[security_header(signed)])
    response = registry.served.client.post(
        "/xds/registry",
        content=data,
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
    )
    # A professional without any basis on this dossier: nothing, as for a token.
    assert response.status_code == 200, response.text
    assert b"RegistryObjectList" in response.content
    assert b"ExtrinsicObject" not in response.content
    # A forged assertion is a SOAP Fault naming why.
    forged = assertion(
        identity_provider(registry.clock.now(), name="rogue"),
        registry.clock.now(),
        subject=doctor.identifier_value,
        qualifier="1.2.250.1.71.4.2.1",
    )
    data = envelope(request, v.ITI18_ACTION, headers=[security_header(forged)])
    response = registry.served.client.post(
        "/xds/registry",
        content=data,
        headers={"Content-Type": "application/soap+xml; charset=UTF-8"},
    )
    assert response.status_code == 401
    assert b"identity provider Carnet trusts" in response.content
