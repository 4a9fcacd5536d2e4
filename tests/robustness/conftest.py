"""A served Carnet with real accounts and real tokens, for hostile input on every route.

Tokens are signed by the app's own authority for a patient, a professional and a laboratory's
feeding system, so each request passes authentication and reaches the code that reads its input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from carnet.access.actors import Actor
from carnet.clock import FrozenClock
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor, system_actor
from factories.auth import Served, bearer, cheap_password_hashing, serve
from factories.directory import make_organisation, make_professional
from factories.mhd import provide_bundle
from factories.patients import make_matricule, make_patient

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PUBLISH_SCOPE = "system/DocumentReference.cru"


@dataclass
class Target:
    """Carnet served over the test's transaction, and who may call it."""

    served: Served
    session: Session
    clock: FrozenClock
    store: FilesystemDocumentStore
    patient: Actor
    professional: Actor
    lab: Actor
    matricule: str

    def headers(self, actor: Actor, scope: str) -> dict[str, str]:
        """An Authorization header for ``actor`` with ``scope``."""
        return bearer(self.served, self.session, actor, self.clock, scope)

    def publish(self, bundle: dict[str, Any] | bytes) -> Any:
        """POST an ITI-65 bundle as the laboratory."""
        content = bundle if isinstance(bundle, bytes) else None
        return self.served.client.post(
            "/fhir",
            content=content,
            json=None if content is not None else bundle,
            headers={**FHIR_JSON, **self.headers(self.lab, PUBLISH_SCOPE)},
        )

    def bundle(self, **document_changes: Any) -> dict[str, Any]:
        """A valid bundle for the patient, with ``document_changes`` on its DocumentReference."""
        return provide_bundle(f"Patient/{self.patient.person_id}", **document_changes)


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap_password_hashing(monkeypatch)


@pytest.fixture
def target(
    session: Session, store: FilesystemDocumentStore, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> Iterator[Target]:
    """A patient, a general practitioner and a laboratory, and Carnet serving them."""
    matricule = make_matricule()
    patient = make_patient(session, clock, matricule=matricule)
    organisation = make_organisation(session, clock)
    professional = make_professional(session, clock, organisation_id=organisation.id)
    with serve(session, store, clock, wrapper) as served:
        yield Target(
            served=served,
            session=session,
            clock=clock,
            store=store,
            patient=patient_actor(patient),
            professional=professional_actor(professional),
            lab=system_actor(organisation, scopes=PUBLISH_SCOPE),
            matricule=matricule,
        )
