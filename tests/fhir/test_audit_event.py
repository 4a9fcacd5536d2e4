"""The audit trail as the patient reads it: ``GET /fhir/AuditEvent``, and no access unrecorded.

A scripted day of activity — publications, consultations, a denied access, an emergency access,
a revoked grant — must appear in the patient's AuditEvent search, in order, complete, and with
nothing from anyone else's dossier. If the trail cannot be written, nothing is served (503).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from carnet.access import care as access_care
from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.actors import Actor
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.directory.models import OrganisationKind, Profession
from carnet.documents import publication
from carnet.fhir.ids import document_resource_id
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import (
    operator_actor,
    patient_actor,
    professional_actor,
    security_officer_actor,
    system_actor,
)
from factories.auth import Served, bearer, serve
from factories.directory import make_organisation, make_professional
from factories.documents import lab_metadata
from factories.patients import make_patient


@dataclass
class Day:
    served: Served
    session: Session
    clock: FrozenClock
    actors: dict[str, Actor]
    patient_id: uuid.UUID
    other_id: uuid.UUID
    document_ids: list[uuid.UUID]

    def get(self, who: str, path: str, scope: str = "user/*.rs", **params: Any) -> Any:
        self.clock.advance(dt.timedelta(minutes=5))
        headers = bearer(self.served, self.session, self.actors[who], self.clock, scope)
        return self.served.client.get(path, params=params, headers=headers)

    def at(self, hour: int) -> None:
        today = self.clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
        self.clock._at = today + dt.timedelta(hours=hour)


@pytest.fixture
def day(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Day]:
    patient = make_patient(session, clock)
    other = make_patient(session, clock, given="Zoe")
    lab = make_organisation(session, clock)
    hospital = make_organisation(session, clock, kind=OrganisationKind.HOSPITAL, name="CHL")
    actors = {
        "patient": patient_actor(patient),
        "other": patient_actor(other),
        "lab": system_actor(lab),
        "gp": professional_actor(make_professional(session, clock, family="Generalist")),
        "pharmacist": professional_actor(
            make_professional(session, clock, profession=Profession.PHARMACIST)
        ),
        "emergency": professional_actor(
            make_professional(
                session,
                clock,
                profession=Profession.EMERGENCY_PHYSICIAN,
                organisation_id=hospital.id,
            )
        ),
        "officer": security_officer_actor(),
        "operator": operator_actor(),
    }
    with serve(session, store, clock, wrapper) as served:
        yield Day(served, session, clock, actors, patient.id, other.id, [])


def _publish(day: Day, patient_id: uuid.UUID) -> uuid.UUID:
    document = publication.add_document(
        day.session,
        open_dossier(
            day.session, day.actors["lab"], patient_id, purposes.PUBLISH_DOCUMENTS, clock=day.clock
        ),
        day.served.platform.store,
        metadata=lab_metadata(day.clock),
        content=f"result {uuid.uuid4()}".encode(),
    )
    return document.id


def _script(day: Day) -> list[tuple[str, str, str]]:
    """Run the day; return what the patient's trail must show: (actor, action, outcome)."""
    s, c, p = day.session, day.clock, day.patient_id
    gp, pharmacist, emergency = (
        day.actors[k].professional_id for k in ("gp", "pharmacist", "emergency")
    )
    day.at(7)
    first = _publish(day, p)
    second = _publish(day, p)
    _publish(day, day.other_id)  # someone else's dossier: must not show
    day.at(8)
    access_rules.grant_access(
        s,
        open_dossier(s, day.actors["patient"], p, purposes.GRANT_ACCESS, clock=c),
        level=GrantLevel.NORMAL,
        professional_id=gp,
    )
    access_rules.grant_access(
        s,
        open_dossier(s, day.actors["other"], day.other_id, purposes.GRANT_ACCESS, clock=c),
        level=GrantLevel.NORMAL,
        professional_id=gp,
    )
    day.at(9)
    assert day.get("gp", "/fhir/DocumentReference", patient=f"Patient/{p}").json()["total"] == 2
    assert day.get("gp", f"/fhir/Binary/{document_resource_id(p, first)}").status_code == 200
    assert (
        day.get("gp", "/fhir/DocumentReference", patient=f"Patient/{day.other_id}").status_code
        == 200
    )
    day.at(11)
    denied = day.get("pharmacist", f"/fhir/Binary/{document_resource_id(p, second)}")
    assert denied.status_code == 404
    day.at(14)
    access_care.break_glass(
        s,
        open_dossier(s, day.actors["emergency"], p, purposes.BREAK_GLASS, clock=c),
        reason="Found unconscious at the station",
    )
    assert (
        day.get("emergency", "/fhir/DocumentReference", patient=f"Patient/{p}").json()["total"] == 2
    )
    day.at(18)
    (grant,) = access_rules.access_overview(
        s, open_dossier(s, day.actors["patient"], p, purposes.READ_ACCESS_RULES, clock=c)
    ).grants
    access_rules.revoke_grant(
        s, open_dossier(s, day.actors["patient"], p, purposes.REVOKE_ACCESS, clock=c), grant.id
    )
    day.at(19)
    assert day.get("gp", "/fhir/DocumentReference", patient=f"Patient/{p}").json()["total"] == 0
    gp_ref, ph_ref, em_ref = (f"Practitioner/{x}" for x in (gp, pharmacist, emergency))
    me = f"Patient/{p}"
    lab = day.actors["lab"].subject
    return [
        (lab, "publish", "allowed"),
        (lab, "publish", "allowed"),
        (me, "grant", "allowed"),
        (gp_ref, "search", "allowed"),
        (gp_ref, "retrieve", "allowed"),
        (ph_ref, "retrieve", "denied"),
        (em_ref, "break-glass", "allowed"),
        (em_ref, "search", "allowed"),
        (me, "access-overview", "allowed"),
        (me, "revoke", "allowed"),
        # No basis any more, shown nothing: an attempt, not a consultation (and no notice).
        (gp_ref, "search", "denied"),
    ]


def _trail(bundle: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows = []
    for entry in bundle["entry"]:
        event = entry["resource"]
        who = event["agent"][0]["who"]
        rows.append(
            (
                who.get("reference") or who["display"],
                event["subtype"][0]["code"],
                "allowed" if event["outcome"] == "0" else "denied",
            )
        )
    return rows


def test_the_patient_sees_the_whole_day_in_order(day: Day) -> None:
    expected = _script(day)
    response = day.get("patient", "/fhir/AuditEvent", patient=f"Patient/{day.patient_id}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    bundle = response.json()
    assert _trail(bundle) == expected
    assert bundle["total"] == len(expected)
    for entry in bundle["entry"]:
        entities = entry["resource"].get("entity", [])
        assert entities[0]["what"]["reference"] == f"Patient/{day.patient_id}"
    glass = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["subtype"][0]["code"] == "break-glass"
    )
    assert glass["outcomeDesc"] == "Found unconscious at the station"
    assert glass["purposeOfEvent"][0]["coding"][0]["code"] == "BTG"
    denied = next(e["resource"] for e in bundle["entry"] if e["resource"]["outcome"] != "0")
    assert denied["agent"][0]["network"]["address"] == "testclient"


def test_searches_by_agent_date_and_action(day: Day) -> None:
    _script(day)
    me = {"patient": f"Patient/{day.patient_id}"}
    gp = f"Practitioner/{day.actors['gp'].professional_id}"
    by_gp = day.get("patient", "/fhir/AuditEvent", agent=gp, **me).json()
    assert [row[1] for row in _trail(by_gp)] == ["search", "retrieve", "search"]
    reads = day.get("patient", "/fhir/AuditEvent", action="R", **me).json()
    assert {row[1] for row in _trail(reads)} == {"retrieve", "access-overview"}
    morning = day.get(
        "patient", "/fhir/AuditEvent", date=["ge2026-06-01T07:00:00", "lt2026-06-01T10:00:00"], **me
    ).json()
    assert [row[1] for row in _trail(morning)] == [
        "publish",
        "publish",
        "grant",
        "search",
        "retrieve",
    ]
    glass = day.get("patient", "/fhir/AuditEvent", subtype="break-glass", **me).json()
    assert len(glass["entry"]) == 1


def test_nobody_else_reads_the_trail(day: Day) -> None:
    _script(day)
    mine = {"patient": f"Patient/{day.patient_id}"}
    for who in ("other", "gp", "emergency", "operator"):
        bundle = day.get(who, "/fhir/AuditEvent", **mine).json()
        assert bundle["total"] == 0, who
        assert bundle["entry"] == []
    officer = day.get("officer", "/fhir/AuditEvent").json()
    patients = {
        entity["what"]["reference"]
        for entry in officer["entry"]
        for entity in entry["resource"].get("entity", [])
        if entity["what"]["reference"].startswith("Patient/")
    }
    assert patients == {f"Patient/{day.patient_id}", f"Patient/{day.other_id}"}


def test_another_patients_attempt_is_named_as_such_and_not_identified_to_the_patient(
    day: Day,
) -> None:
    p = day.patient_id
    assert day.get("other", "/fhir/DocumentReference", patient=f"Patient/{p}").json()["total"] == 0
    mine = day.get("patient", "/fhir/AuditEvent", patient=f"Patient/{p}", subtype="search").json()
    [attempt] = [entry["resource"] for entry in mine["entry"]]
    assert attempt["outcome"] != "0"
    assert attempt["agent"][0]["who"] == {"display": "another patient"}
    officer = day.get("officer", "/fhir/AuditEvent", patient=f"Patient/{p}", subtype="search")
    [seen] = [entry["resource"] for entry in officer.json()["entry"]]
    assert seen["agent"][0]["who"] == {
        "display": "another patient",
        "reference": f"Patient/{day.other_id}",
    }


def test_bad_parameters(day: Day) -> None:
    for params, field in (
        ({"date": "yesterday"}, "date"),
        ({"action": "X"}, "action"),
        ({"subtype": "dance"}, "subtype"),
        ({"agent": "Practitioner/nobody"}, "agent"),
    ):
        response = day.get(
            "patient", "/fhir/AuditEvent", patient=f"Patient/{day.patient_id}", **params
        )
        assert response.status_code == 422, params
        assert response.json()["issue"][0]["expression"] == [field]


def test_nothing_is_served_when_the_trail_cannot_be_written(day: Day) -> None:
    first = _publish(day, day.patient_id)
    access_rules.grant_access(
        day.session,
        open_dossier(
            day.session,
            day.actors["patient"],
            day.patient_id,
            purposes.GRANT_ACCESS,
            clock=day.clock,
        ),
        level=GrantLevel.NORMAL,
        professional_id=day.actors["gp"].professional_id,
    )
    # The audit store fails: any insert into it is refused.
    if day.session.get_bind().dialect.name == "postgresql":
        day.session.execute(
            text(
                "CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'audit store down'; END $$ LANGUAGE plpgsql"
            )
        )
        day.session.execute(
            text(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                "FOR EACH ROW EXECUTE FUNCTION audit_down()"
            )
        )
    else:
        day.session.execute(
            text(
                "CREATE TRIGGER audit_down BEFORE INSERT ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit store down'); END"
            )
        )
    retrieved = day.get("gp", f"/fhir/Binary/{document_resource_id(day.patient_id, first)}")
    assert retrieved.status_code == 503
    assert b"result" not in retrieved.content
    assert retrieved.json()["issue"][0]["code"] == "transient"
    searched = day.get("gp", "/fhir/DocumentReference", patient=f"Patient/{day.patient_id}")
    assert searched.status_code == 503
    refused = day.get("pharmacist", f"/fhir/Binary/{document_resource_id(day.patient_id, first)}")
    assert refused.status_code == 503
