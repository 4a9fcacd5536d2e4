"""The patient portal's dossier settings: activation, objection, export, closing, and acting
for someone one represents.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pyotp
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import representation as access_representation
from carnet.access.door import open_dossier
from carnet.access.models import Representation, RepresentationKind
from carnet.audit.models import AuditAction, AuditEvent
from carnet.auth import accounts
from carnet.clock import FrozenClock
from carnet.documents.models import Document
from carnet.lifecycle import service as lifecycle
from carnet.lifecycle.models import ActivationCode
from carnet.patients.models import DossierState, Patient
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import operator_actor, professional_actor
from factories.auth import PASSWORD, PatientLogin, Served, make_patient_login
from factories.directory import make_organisation, make_professional
from factories.documents import make_document
from factories.lifecycle import CODE_LIFETIME, make_invited_patient
from factories.patients import make_patient
from factories.portal import csrf_of, sign_in_patient

DOSSIER = "/portal/patient/dossier"


def _signed_in(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> PatientLogin:
    login = make_patient_login(session, clock, wrapper)
    sign_in_patient(web.client, login, clock)
    return login


def _invited_and_signed_in(
    web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
) -> tuple[PatientLogin, str]:
    """A patient whose dossier is invited, with an account and their letter's code."""
    patient = make_invited_patient(session, clock)
    secret = accounts.create_patient_account(
        session, patient_id=patient.id, password=PASSWORD, key_wrapper=wrapper, clock=clock
    )
    letter = lifecycle.issue_invitation(
        session,
        open_dossier(session, operator_actor(), patient.id, purposes.ISSUE_INVITATION, clock=clock),
        lifetime=CODE_LIFETIME,
    )
    login = PatientLogin(patient, patient.identifiers[0].value, pyotp.TOTP(secret))
    sign_in_patient(web.client, login, clock)
    return login, letter.code


def _state(session: Session, patient: Patient) -> DossierState:
    session.refresh(patient.dossier)
    return patient.dossier.state


def _publish(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    patient: Patient,
    title: str,
) -> Document:
    organisation = make_organisation(session, clock)
    doctor = make_professional(session, clock, organisation_id=organisation.id)
    return make_document(
        session, store, clock, actor=professional_actor(doctor), patient_id=patient.id, title=title
    )


class TestActivation:
    def test_an_invited_patient_is_pointed_to_activation(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _invited_and_signed_in(web, session, clock, wrapper)
        home = web.client.get("/portal/patient")
        assert home.status_code == 200
        assert "Invited: not active yet" in home.text
        assert 'href="/portal/patient/dossier#activation"' in home.text
        assert "Without an answer it opens by itself on Jul 1, 2026." in home.text
        settings = web.client.get(DOSSIER)
        assert 'id="activation-code"' in settings.text
        assert "Close the dossier" not in settings.text

    def test_the_letters_code_activates_the_dossier_and_home_welcomes_the_patient(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login, code = _invited_and_signed_in(web, session, clock, wrapper)
        page = web.client.get(DOSSIER)
        typed = f"{code[:4].lower()} {code[4:8]}-{code[8:]}"
        answer = web.client.post(
            f"{DOSSIER}/activate",
            data={"csrf": csrf_of(page.text), "code": typed},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/patient"
        assert _state(session, login.patient) is DossierState.ACTIVE
        home = web.client.get("/portal/patient")
        assert "Your dossier is active. Welcome!" in home.text
        assert "Hello, Léa Weber" in home.text
        assert "There is no document in the dossier yet." in home.text
        history = web.client.get(DOSSIER)
        assert "invited → active" in history.text

    def test_a_wrong_code_is_explained_and_counts_against_the_letter(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login, _code = _invited_and_signed_in(web, session, clock, wrapper)
        page = web.client.get(DOSSIER)
        answer = web.client.post(
            f"{DOSSIER}/activate", data={"csrf": csrf_of(page.text), "code": "ABCD-EFGH-JKMN"}
        )
        assert answer.status_code == 422
        assert "This activation code is not valid" in answer.text
        assert 'aria-invalid="true"' in answer.text
        assert _state(session, login.patient) is DossierState.INVITED
        [row] = session.scalars(
            select(ActivationCode).where(ActivationCode.patient_id == login.patient.id)
        )
        session.refresh(row)
        assert row.failed_attempts == 1

    def test_an_invited_patient_may_object_and_later_open_the_dossier(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login, _code = _invited_and_signed_in(web, session, clock, wrapper)
        page = web.client.get(DOSSIER)
        opposed = web.client.post(f"{DOSSIER}/oppose", data={"csrf": csrf_of(page.text)})
        assert "Your objection is recorded" in opposed.text
        assert _state(session, login.patient) is DossierState.OPPOSED
        home = web.client.get("/portal/patient")
        assert home.status_code == 200
        assert "You objected to this dossier" in home.text
        for path in ("/portal/patient/documents", "/portal/patient/access"):
            assert web.client.get(path).status_code == 200
        reopened = web.client.post(f"{DOSSIER}/reopen", data={"csrf": csrf_of(opposed.text)})
        assert "Your dossier is open again." in reopened.text
        assert _state(session, login.patient) is DossierState.ACTIVE


class TestExport:
    def test_downloads_the_dossier_as_a_zip(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        document = _publish(session, store, clock, login.patient, "Bilan sanguin")
        document_content = store.get(document.content_key)
        page = web.client.get(DOSSIER)
        answer = web.client.post(f"{DOSSIER}/export", data={"csrf": csrf_of(page.text)})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/zip"
        assert (
            answer.headers["content-disposition"] == 'attachment; filename="carnet-2026-06-01.zip"'
        )
        assert answer.headers["cache-control"] == "no-store"
        with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
            bundle = json.loads(archive.read("bundle.json"))
            files = [name for name in archive.namelist() if name.startswith("documents/")]
            contents = [archive.read(name) for name in files]
        kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
        assert "Patient" in kinds
        [reference] = [
            entry["resource"]
            for entry in bundle["entry"]
            if entry["resource"]["resourceType"] == "DocumentReference"
        ]
        assert reference["content"][0]["attachment"]["url"] == files[0]
        assert contents == [document_content]
        assert session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == login.patient.id, AuditEvent.action == AuditAction.EXPORT
            )
        ).first()


class TestClose:
    def test_closing_needs_the_confirmation(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        page = web.client.get(DOSSIER)
        assert "I understand professionals keep the documents they wrote" in page.text
        refused = web.client.post(f"{DOSSIER}/close", data={"csrf": csrf_of(page.text)})
        assert refused.status_code == 422
        assert "Tick the box to confirm" in refused.text
        assert _state(session, login.patient) is DossierState.ACTIVE
        closed = web.client.post(
            f"{DOSSIER}/close", data={"csrf": csrf_of(refused.text), "understood": "yes"}
        )
        assert closed.status_code == 200
        assert "Your dossier is closed." in closed.text
        assert _state(session, login.patient) is DossierState.CLOSED
        assert "Open the dossier again" in closed.text
        home = web.client.get("/portal/patient")
        assert "This dossier is closed" in home.text

    def test_closing_without_the_csrf_token_is_refused(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        login = _signed_in(web, session, clock, wrapper)
        answer = web.client.post(f"{DOSSIER}/close", data={"understood": "yes"})
        assert answer.status_code == 403
        assert _state(session, login.patient) is DossierState.ACTIVE


class TestActingFor:
    def _parent_and_child(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> tuple[PatientLogin, Patient]:
        parent = _signed_in(web, session, clock, wrapper)
        child = make_patient(session, clock, given="Noah", birth_date=dt.date(2015, 3, 1))
        access_representation.record_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            parent.patient.id,
            kind=RepresentationKind.PARENT,
        )
        return parent, child

    def test_a_parent_acts_for_their_child_and_comes_back(
        self,
        web: Served,
        session: Session,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        store: FilesystemDocumentStore,
    ) -> None:
        parent, child = self._parent_and_child(web, session, clock, wrapper)
        _publish(session, store, clock, child, "Vaccins de Noah")
        _publish(session, store, clock, parent.patient, "Bilan de Léa")
        page = web.client.get(DOSSIER)
        assert "Act for Noah Weber" in page.text
        switched = web.client.post(
            f"{DOSSIER}/acting-for", data={"csrf": csrf_of(page.text), "patient": str(child.id)}
        )
        assert switched.status_code == 200
        assert "You are acting for Noah Weber, born Mar 1, 2015" in switched.text
        assert "Dossier of Noah Weber" in switched.text
        timeline = web.client.get("/portal/patient/documents")
        assert "Vaccins de Noah" in timeline.text
        assert "Bilan de Léa" not in timeline.text
        assert "You are acting for Noah Weber" in timeline.text
        # What the parent does there is recorded as done on the child's behalf.
        assert session.scalars(
            select(AuditEvent).where(
                AuditEvent.chain_id == child.id,
                AuditEvent.agent_subject == f"Patient/{parent.patient.id}",
                AuditEvent.on_behalf_of == child.id,
                AuditEvent.action == AuditAction.SEARCH,
            )
        ).first()
        back = web.client.post(f"{DOSSIER}/own", data={"csrf": csrf_of(timeline.text)})
        assert "Hello, Léa Weber" in back.text
        assert "You are acting for" not in back.text
        assert "Bilan de Léa" in web.client.get("/portal/patient/documents").text

    def test_nobody_else_can_be_chosen(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _signed_in(web, session, clock, wrapper)
        stranger = make_patient(session, clock, given="Paul")
        page = web.client.get(DOSSIER)
        answer = web.client.post(
            f"{DOSSIER}/acting-for", data={"csrf": csrf_of(page.text), "patient": str(stranger.id)}
        )
        assert answer.status_code == 404
        home = web.client.get("/portal/patient")
        assert "Hello, Léa Weber" in home.text

    def test_an_ended_representation_brings_the_parent_back_to_their_own_dossier(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        _parent, child = self._parent_and_child(web, session, clock, wrapper)
        page = web.client.get(DOSSIER)
        web.client.post(
            f"{DOSSIER}/acting-for", data={"csrf": csrf_of(page.text), "patient": str(child.id)}
        )
        [link] = session.scalars(
            select(Representation).where(Representation.patient_id == child.id)
        )
        access_representation.revoke_representation(
            session,
            open_dossier(
                session, operator_actor(), child.id, purposes.RECORD_REPRESENTATION, clock=clock
            ),
            link.id,
        )
        home = web.client.get("/portal/patient")
        assert home.status_code == 200
        assert "You no longer act for that person" in home.text
        assert "Hello, Léa Weber" in home.text
        assert "You are acting for" not in home.text
