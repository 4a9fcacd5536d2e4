"""What a stored document may do once served on the portal's origin: only passive types are
shown inline, everything else leaves as a sandboxed download; and the headers every portal
page carries (``form-action``, HSTS over https).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from carnet.access import purposes
from carnet.access import rules as access_rules
from carnet.access.door import open_dossier
from carnet.access.models import GrantLevel
from carnet.clock import FrozenClock
from carnet.documents.models import Document
from carnet.storage import FilesystemDocumentStore, MasterKeyWrapper
from factories.actors import patient_actor, professional_actor
from factories.auth import Served, make_patient_login, make_professional_login
from factories.directory import make_professional
from factories.documents import make_document
from factories.portal import csrf_of, sign_in_patient, sign_in_professional

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
HTML = b"<html><body><script>fetch('/portal/patient/access')</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
XHTML_IN_XML = (
    b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml">'
    b"<script>alert(1)</script></html>"
)
ACTIVE = [
    ("text/html", HTML),
    ("application/xhtml+xml", XHTML_IN_XML),
    ("image/svg+xml", SVG),
    ("application/xml", XHTML_IN_XML),
    ("text/xml", XHTML_IN_XML),
]


def _publish(
    session: Session,
    store: FilesystemDocumentStore,
    clock: FrozenClock,
    patient_id: uuid.UUID,
    mime_type: str,
    content: bytes,
) -> Document:
    author = professional_actor(make_professional(session, clock, family="Kieffer"))
    return make_document(
        session,
        store,
        clock,
        actor=author,
        patient_id=patient_id,
        content=content,
        mime_type=mime_type,
    )


def _assert_sandboxed_download(answer: Any) -> None:
    headers = answer.headers
    assert headers["content-disposition"].startswith("attachment;")
    policy = [part.strip() for part in headers["content-security-policy"].split(";")]
    assert "sandbox" in policy
    assert "allow-scripts" not in headers["content-security-policy"]
    assert "allow-same-origin" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


class TestThePatientPortal:
    @pytest.mark.parametrize(("mime_type", "content"), ACTIVE, ids=[m for m, _ in ACTIVE])
    def test_active_content_is_only_a_sandboxed_download(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        mime_type: str,
        content: bytes,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        document = _publish(session, store, clock, login.patient.id, mime_type, content)
        url = f"/portal/patient/documents/{document.id}/content"

        answer = web.client.get(url)

        assert answer.status_code == 200
        assert answer.content == content
        _assert_sandboxed_download(answer)
        viewer = web.client.get(f"/portal/patient/documents/{document.id}")
        assert f'<iframe src="{url}"' not in viewer.text
        assert f'<img src="{url}"' not in viewer.text

    def test_a_true_image_is_shown_inline_in_a_sandbox(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        document = _publish(session, store, clock, login.patient.id, "image/png", PNG)
        url = f"/portal/patient/documents/{document.id}/content"

        answer = web.client.get(url)

        assert answer.headers["content-disposition"].startswith("inline;")
        assert answer.headers["content-security-policy"].endswith("; sandbox")
        viewer = web.client.get(f"/portal/patient/documents/{document.id}")
        assert f'<img src="{url}"' in viewer.text

    def test_a_pdf_is_framed_without_a_sandbox_its_viewer_would_refuse(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
    ) -> None:
        login = make_patient_login(session, clock, wrapper)
        sign_in_patient(web.client, login, clock)
        document = _publish(session, store, clock, login.patient.id, "application/pdf", PDF)

        answer = web.client.get(f"/portal/patient/documents/{document.id}/content")

        assert answer.headers["content-disposition"].startswith("inline;")
        assert "sandbox" not in answer.headers["content-security-policy"]
        assert "default-src 'none'" in answer.headers["content-security-policy"]


class TestUploadedImages:
    def _upload(self, web: Served, name: str, content: bytes, mime_type: str) -> Any:
        form = web.client.get("/portal/patient/documents/new")
        return web.client.post(
            "/portal/patient/documents/new",
            data={
                "csrf": csrf_of(form.text),
                "type": "patient-provided",
                "title": "Photo",
                "date": "2026-05-20",
            },
            files={"file": (name, content, mime_type)},
            follow_redirects=False,
        )

    def test_an_image_named_after_another_type_is_stored_as_what_it_is(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_patient(web.client, make_patient_login(session, clock, wrapper), clock)
        jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"

        answer = self._upload(web, "photo.png", jpeg, "image/png")

        assert answer.status_code == 303
        content = web.client.get(f"{answer.headers['location']}/content")
        assert content.headers["content-type"] == "image/jpeg"

    def test_a_file_that_claims_to_be_an_image_and_is_none_is_refused_in_the_visitors_words(
        self, web: Served, session: Session, clock: FrozenClock, wrapper: MasterKeyWrapper
    ) -> None:
        sign_in_patient(web.client, make_patient_login(session, clock, wrapper), clock)

        answer = self._upload(web, "photo.png", HTML, "image/png")

        assert answer.status_code == 422
        assert "This file is not the image its name says it is." in answer.text


class TestTheProfessionalPortal:
    @pytest.mark.parametrize(("mime_type", "content"), ACTIVE, ids=[m for m, _ in ACTIVE])
    def test_active_content_is_only_a_sandboxed_download(
        self,
        web: Served,
        session: Session,
        store: FilesystemDocumentStore,
        clock: FrozenClock,
        wrapper: MasterKeyWrapper,
        mime_type: str,
        content: bytes,
    ) -> None:
        login = make_professional_login(session, clock, wrapper)
        sign_in_professional(web.client, login, clock)
        patient = make_patient_login(session, clock, wrapper).patient
        access_rules.grant_access(
            session,
            open_dossier(
                session, patient_actor(patient), patient.id, purposes.GRANT_ACCESS, clock=clock
            ),
            level=GrantLevel.NORMAL,
            professional_id=login.professional.id,
        )
        document = _publish(session, store, clock, patient.id, mime_type, content)
        base = f"/portal/professional/patients/{patient.id}/documents/{document.id}"

        answer = web.client.get(f"{base}/content")

        assert answer.status_code == 200
        _assert_sandboxed_download(answer)
        viewer = web.client.get(base)
        assert f'<iframe src="{base}/content"' not in viewer.text
        assert f'<img src="{base}/content"' not in viewer.text


class TestPortalHeaders:
    def test_forms_post_only_to_carnet(self, web: Served) -> None:
        for path in ("/portal/", "/fhir/metadata"):
            policy = web.client.get(path).headers["content-security-policy"]
            assert "form-action 'self'" in policy, path

    def test_no_hsts_over_plain_http(self, web: Served) -> None:
        assert "strict-transport-security" not in web.client.get("/portal/").headers

    def test_hsts_when_the_request_came_over_https(self, web: Served) -> None:
        secure = TestClient(web.client.app, base_url="https://testserver")
        with secure:
            answer = secure.get("/portal/")
        assert answer.headers["strict-transport-security"] == "max-age=31536000"

    def test_hsts_when_carnet_is_published_at_an_https_address(self, web: Served) -> None:
        # Behind a proxy that ends TLS, the request reaches Carnet over http.
        settings = web.platform.settings
        web.platform.settings = settings.model_copy(update={"public_url": "https://carnet.example"})
        try:
            answer = web.client.get("/portal/")
        finally:
            web.platform.settings = settings
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
