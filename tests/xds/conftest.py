"""The XDS.b tests' Document Source: a laboratory's feeding system and a patient with a dossier,
Carnet served over the test's own connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, system_actor
from factories.auth import serve
from factories.directory import make_organisation
from factories.patients import make_matricule, make_patient
from factories.xds import Source


@pytest.fixture
def source(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Source]:
    """A laboratory publishing for a patient of its own, as an XDS.b Document Source."""
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    lab = system_actor(make_organisation(session, clock), scopes="system/DocumentReference.cru")
    with serve(session, store, clock, wrapper) as served:
        yield Source(served, session, clock, lab, patient_actor(patient), matricule)
