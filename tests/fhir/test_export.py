"""``GET /fhir/Patient/{id}/$export-dossier``: the patient takes their whole dossier away."""

from __future__ import annotations

import io
import json
import zipfile

from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import bearer, serve
from factories.directory import make_professional
from factories.documents import make_document
from factories.patients import make_patient


def test_the_patient_exports_and_others_cannot(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> None:
    patient = make_patient(session, clock)
    doctor = professional_actor(make_professional(session, clock))
    make_document(
        session, store, clock, actor=doctor, patient_id=patient.id, content=b"exported bytes"
    )
    me = patient_actor(patient)
    with serve(session, store, clock, wrapper) as served:
        path = f"/fhir/Patient/{patient.id}/$export-dossier"
        response = served.client.get(
            path, headers=bearer(served, session, me, clock, "patient/*.rs")
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["cache-control"] == "no-store"
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        contents = [archive.read(name) for name in archive.namelist()]
        assert b"exported bytes" in contents
        bundles = [json.loads(c) for c in contents if c.startswith(b"{") and b'"resourceType"' in c]
        assert any(b.get("resourceType") == "Bundle" for b in bundles)
        refused = served.client.get(
            path, headers=bearer(served, session, doctor, clock, "user/*.rs")
        )
        assert refused.status_code == 404
        statement = served.client.get("/fhir/metadata").json()
        patient_support = next(
            r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"
        )
        assert any(op["name"] == "export-dossier" for op in patient_support["operation"])
